//! Token custody against the mock's STRICT token endpoint (each refresh token works once; a
//! spent one revokes the login): no process, fault or shutdown ever makes cao present a spent
//! refresh token, and the login survives wherever it could be kept. When cao refreshes (and when
//! not), also for the real Codex, is in [`super::custody_refresh`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cao::mock::{AccountFaults, MockUpstream, RefreshFault, Scenario};
use common::gateway::{Answer, GatewayProc, eventually, model_call, send};
use common::{TestEnv, now_secs};
use serde_json::Value;

pub(crate) async fn mock(scenario: Scenario) -> MockUpstream {
    MockUpstream::spawn("127.0.0.1", 0, scenario).await.unwrap()
}

pub(crate) fn gw_args(m: &MockUpstream) -> Vec<String> {
    [
        "--base-url",
        &m.base_url(),
        "--token-url",
        &m.token_url(),
        "--upstream-retry-base-ms",
        "10",
        "--upstream-retry-max-ms",
        "50",
        "--upstream-retry-jitter-ms",
        "5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(crate) fn gw_with(env: &TestEnv, m: &MockUpstream, vars: &[(&str, &str)]) -> GatewayProc {
    let args = gw_args(m);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    GatewayProc::try_start_with(env, &args, vars).unwrap_or_else(|e| panic!("gateway: {e}"))
}

pub(crate) fn gw(env: &TestEnv, m: &MockUpstream) -> GatewayProc {
    gw_with(env, m, &[])
}

/// One account a1 (acc-1) whose access token has expired: the first request must refresh.
pub(crate) fn expired_account() -> TestEnv {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() - 60);
    env
}

pub(crate) fn read_json(path: &Path) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(s.trim_end()).ok())
        .unwrap_or(Value::Null)
}

pub(crate) fn saved_refresh_token(path: &Path) -> String {
    read_json(path)["tokens"]["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The custody promise: no refresh token was ever presented after it was spent.
pub(crate) fn assert_no_spent_token_presented(m: &MockUpstream) {
    let spent = m.spent_tokens_presented();
    assert!(
        spent.is_empty(),
        "a spent refresh token was presented again (the login is revoked): {spent:?}\nall: {:?}",
        m.presented_tokens()
    );
}

/// The login in `auth` is alive: its refresh token has never been spent, and the endpoint
/// rotates it (this spends it; call last).
pub(crate) async fn assert_login_alive(m: &MockUpstream, auth: &Path) {
    let rt = saved_refresh_token(auth);
    assert!(!rt.is_empty(), "no refresh token in {}", auth.display());
    let r = refresh_at(m, &rt).await;
    assert_eq!(r.status, 200, "the saved login is dead: {}", r.body);
}

/// Present `refresh_token` to the mock's token endpoint, as a client refreshing would.
pub(crate) async fn refresh_at(m: &MockUpstream, refresh_token: &str) -> Answer {
    let body = serde_json::json!({"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "x"});
    send(
        "POST",
        &m.token_url(),
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await
}

pub(crate) fn kill(g: &GatewayProc, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, &g.child.id().to_string()])
        .status();
}

pub(crate) fn wait_exit(g: &mut GatewayProc) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = g.child.try_wait().unwrap() {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "gateway did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_on_one_data_dir_spend_each_refresh_token_once() {
    let env = expired_account();
    // Access tokens live 2 s: both gateways keep needing refreshes, often at the same moment.
    let m = mock(Scenario {
        access_token_ttl_seconds: 2,
        ..Default::default()
    })
    .await;
    let g1 = gw(&env, &m);
    let g2 = gw(&env, &m);
    for round in 0..4 {
        let (a, b) = tokio::join!(model_call(&g1.url, None), model_call(&g2.url, None));
        assert_eq!(a.status, 200, "round {round}: {a:?}\n{}", g1.log());
        assert_eq!(b.status, 200, "round {round}: {b:?}\n{}", g2.log());
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(m.refresh_count("acc-1") >= 2, "{:?}", m.presented_tokens());
    assert_no_spent_token_presented(&m);
    assert!(g1.stop().success() && g2.stop().success());
    assert_login_alive(&m, &env.data_dir().join("a1/auth.json")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2xx_without_a_usable_access_token_keeps_the_new_refresh_token() {
    for fault in [RefreshFault::NoAccessToken, RefreshFault::BadAccessToken] {
        let env = expired_account();
        let m = mock(Scenario::default().with_account(
            "acc-1",
            AccountFaults {
                refresh: fault,
                refresh_fault_times: Some(1),
                ..Default::default()
            },
        ))
        .await;
        let g = gw(&env, &m);
        // The first answer spent the token without a usable access token; the new refresh token
        // it carried was saved and spent next (never the old one again).
        let a = model_call(&g.url, None).await;
        assert_eq!(a.status, 200, "{fault:?}: {a:?}\n{}", g.log());
        assert_no_spent_token_presented(&m);
        assert_eq!(
            m.refresh_count("acc-1"),
            2,
            "{fault:?}: {:?}",
            m.presented_tokens()
        );
        assert!(g.stop().success());
        assert_login_alive(&m, &env.data_dir().join("a1/auth.json")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2xx_cut_off_counts_the_token_as_spent_and_never_resends_it() {
    let env = expired_account();
    let m = mock(Scenario::default().with_account(
        "acc-1",
        AccountFaults {
            refresh: RefreshFault::CutOff,
            refresh_fault_times: Some(1),
            ..Default::default()
        },
    ))
    .await;
    let g = gw(&env, &m);
    for _ in 0..3 {
        let a = model_call(&g.url, None).await;
        assert_ne!(a.status, 200, "{a:?}");
    }
    // One presentation only: the spent token is never sent again; the account needs a login.
    assert_eq!(m.presented_tokens().len(), 1, "{:?}", m.presented_tokens());
    assert_no_spent_token_presented(&m);
    assert!(g.stop().success());
    let st = read_json(&env.data_dir().join("account_status.json"));
    assert_eq!(st["statuses"]["a1"]["needsLogin"], true, "{st}");
    // A restart does not resend it either.
    let g = gw(&env, &m);
    let _ = model_call(&g.url, None).await;
    assert_eq!(m.presented_tokens().len(), 1, "{:?}", m.presented_tokens());
    assert!(g.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_refresh_waits_for_it_and_the_restart_keeps_the_login() {
    let env = expired_account();
    // The endpoint rotates at once and answers 1.5 s later.
    let m = mock(Scenario::default().with_account(
        "acc-1",
        AccountFaults {
            refresh_delay_ms: 1500,
            ..Default::default()
        },
    ))
    .await;
    let mut g = gw(&env, &m);
    let url = g.url.clone();
    let call = tokio::spawn(async move { model_call(&url, None).await });
    assert!(eventually(10, || !m.presented_tokens().is_empty()));
    // The client hangs up: the request ends, the refresh (its token already spent) goes on.
    call.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    kill(&g, "-INT");
    let status = wait_exit(&mut g);
    assert!(status.success(), "{status}\n{}", g.log());
    // Exited, but the test's stderr reader may not have read the last lines yet.
    let log = g.log_when(|l| l.contains("waiting for a token refresh to finish"));
    assert!(
        log.contains("waiting for a token refresh to finish"),
        "{log}"
    );
    let auth = env.data_dir().join("a1/auth.json");
    assert_ne!(
        saved_refresh_token(&auth),
        "rt-acc-1-0",
        "the answer was lost"
    );
    let g = gw(&env, &m);
    assert_eq!(model_call(&g.url, None).await.status, 200, "{}", g.log());
    assert_no_spent_token_presented(&m);
    assert!(g.stop().success());
    assert_login_alive(&m, &auth).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_between_the_answer_and_the_rename_is_recovered_from_the_prepared_file() {
    let env = expired_account();
    let m = mock(Scenario::default()).await;
    // Hold the process between "answer written to the prepared file" and "renamed".
    let mut g = gw_with(&env, &m, &[("CAO_FAULT_HOLD_BEFORE_RENAME_MS", "4000")]);
    let url = g.url.clone();
    let call = tokio::spawn(async move { model_call(&url, None).await });
    assert!(eventually(10, || m.refresh_count("acc-1") == 1));
    tokio::time::sleep(Duration::from_millis(800)).await;
    kill(&g, "-KILL");
    let _ = wait_exit(&mut g);
    let _ = call.await;
    let auth = env.data_dir().join("a1/auth.json");
    assert_eq!(
        saved_refresh_token(&auth),
        "rt-acc-1-0",
        "killed before the rename"
    );
    let g = gw(&env, &m);
    assert_eq!(model_call(&g.url, None).await.status, 200, "{}", g.log());
    assert_no_spent_token_presented(&m);
    assert_eq!(
        m.refresh_count("acc-1"),
        1,
        "the orphan was adopted, no new spend"
    );
    assert!(g.stop().success());
    let leftovers: Vec<_> = std::fs::read_dir(env.data_dir().join("a1"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".cao-auth-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_login_alive(&m, &auth).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_auth_json_is_written_through_to_its_target() {
    let env = expired_account();
    let home_codex = env.dir.path().join("home/.codex");
    std::fs::create_dir_all(&home_codex).unwrap();
    let target = home_codex.join("auth.json");
    let link = env.data_dir().join("a1/auth.json");
    std::fs::rename(&link, &target).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m);
    assert_eq!(model_call(&g.url, None).await.status, 200, "{}", g.log());
    assert!(g.stop().success());
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "auth.json was replaced by a plain file"
    );
    assert_ne!(
        saved_refresh_token(&target),
        "rt-acc-1-0",
        "the link's target kept the spent token"
    );
    assert_no_spent_token_presented(&m);
    assert_login_alive(&m, &target).await;
}

/// A small tmpfs mounted over a directory (unmounted on drop).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fill the file system holding `dir` with one file; returns it.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_account_dir_spends_nothing_until_the_result_can_be_saved() {
    let env = expired_account();
    let dir = env.data_dir().join("a1");
    let saved: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    let Some(_mount) = Tmpfs::mount(&dir, "64k") else {
        eprintln!("skipping: mount -t tmpfs is not permitted here");
        return;
    };
    for (p, bytes) in &saved {
        std::fs::write(p, bytes).unwrap();
    }
    let m = mock(Scenario::default()).await;
    // Full before the gateway starts: its background refresh of the expired token must find
    // no room either.
    let filler = fill(&dir);
    let g = gw(&env, &m);
    for _ in 0..2 {
        let a = model_call(&g.url, None).await;
        assert_ne!(a.status, 200, "{a:?}");
    }
    assert!(
        m.presented_tokens().is_empty(),
        "a refresh token was spent although its result could not be saved: {:?}",
        m.presented_tokens()
    );
    // Logged by the refresh that gave up, which may trail the answer the client got.
    let log = g.log_when(|l| l.contains("the refresh token was not sent"));
    assert!(log.contains("the refresh token was not sent"), "{log}");
    std::fs::remove_file(filler).unwrap();
    assert!(g.stop().success());
    assert_no_spent_token_presented(&m);
    assert_login_alive(&m, &dir.join("auth.json")).await;
}
