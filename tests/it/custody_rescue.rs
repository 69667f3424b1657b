//! Rotated tokens that cannot be saved (issue 11, failure mode 4), against the STRICT token
//! endpoint: the gateway, `cao status --refresh` and the embedded gateway of `cao run --gateway`
//! serve them from memory, retry the save, and when stopping write them to a rescue file (0600)
//! and exit non-zero naming it; no spent refresh token is ever presented.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use cao::mock::Scenario;
use common::gateway::model_call;

use crate::common;
use crate::custody::{
    assert_login_alive, assert_no_spent_token_presented, expired_account, gw, kill, mock,
    saved_refresh_token, wait_exit,
};

#[tokio::test(flavor = "multi_thread")]
async fn rotated_tokens_that_cannot_be_saved_are_served_retried_and_rescued_at_shutdown() {
    let env = expired_account();
    let m = mock(Scenario {
        access_token_ttl_seconds: 2,
        ..Default::default()
    })
    .await;
    let auth = env.data_dir().join("a1/auth.json");
    // Immutable before the gateway starts: its background refresh of the expired token must
    // not get a save in first.
    let Some(guard) = common::Immutable::set(&auth) else {
        eprintln!("skipping: chattr +i is not available here");
        return;
    };
    let g = gw(&env, &m);
    // Rotations whose save fails: served from memory, and the next refresh spends the newest
    // token (held in memory), not the stale one in the file.
    for _ in 0..2 {
        let a = model_call(&g.url, None).await;
        assert_eq!(a.status, 200, "{a:?}\n{}", g.log());
        tokio::time::sleep(Duration::from_millis(2100)).await;
    }
    assert_eq!(saved_refresh_token(&auth), "rt-acc-1-0");
    assert_no_spent_token_presented(&m);
    let mut g = g;
    kill(&g, "-TERM");
    let status = wait_exit(&mut g);
    drop(guard);
    assert!(
        !status.success(),
        "stopping with unsaved tokens must fail loudly"
    );
    let rescue = std::fs::read_dir(env.data_dir().join("a1"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(".rescue-"))
        .expect("a rescue file in the account dir");
    let named = rescue.display().to_string();
    let log = g.log_when(|l| l.contains(&named));
    assert!(
        log.contains(&named),
        "the message must name the rescue file: {log}"
    );
    assert_eq!(
        cao::store::fsutil::mode_of(&rescue),
        Some(0o600),
        "rescue file must be private"
    );
    assert_login_alive(&m, &rescue).await;
    assert_no_spent_token_presented(&m);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_refresh_rescues_rotated_tokens_it_cannot_save_and_fails_naming_the_file() {
    let env = expired_account();
    let m = mock(Scenario::default()).await;
    std::fs::write(
        env.data_dir().join("gateway.json"),
        serde_json::json!({"tokenUrl": m.token_url()}).to_string(),
    )
    .unwrap();
    let auth = env.data_dir().join("a1/auth.json");
    let Some(guard) = common::Immutable::set(&auth) else {
        eprintln!("skipping: chattr +i is not available here");
        return;
    };
    let mut c = env.cao();
    c.args(["status", "--refresh", "--base-url", &m.base_url(), "--json"])
        .timeout(Duration::from_secs(60));
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    drop(guard);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The expired token was rotated (spent) and the usage read with the new one...
    assert_eq!(m.refresh_count("acc-1"), 1, "{stderr}");
    assert_eq!(saved_refresh_token(&auth), "rt-acc-1-0");
    // ... and the new login, which auth.json could not take, is in a rescue file, named loudly.
    assert!(!out.status.success(), "{stderr}");
    let rescue = std::fs::read_dir(env.data_dir().join("a1"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(".rescue-"))
        .unwrap_or_else(|| panic!("a rescue file in the account dir: {stderr}"));
    assert!(
        stderr.contains(&rescue.display().to_string()) && stderr.contains("or the login is lost"),
        "{stderr}"
    );
    assert_eq!(cao::store::fsutil::mode_of(&rescue), Some(0o600));
    assert_no_spent_token_presented(&m);
    assert_login_alive(&m, &rescue).await;
}

/// The rescue file cao wrote in `dir`, if any.
fn rescue_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(".rescue-"))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_gateway_s_own_gateway_rescues_unsaveable_tokens_and_exits_non_zero() {
    let env = expired_account();
    let m = mock(Scenario::default()).await;
    let data = env.data_dir();
    std::fs::write(
        data.join("gateway.json"),
        serde_json::json!({"baseUrl": m.base_url(), "tokenUrl": m.token_url()}).to_string(),
    )
    .unwrap();
    // A stand-in for Codex that runs until the embedded gateway's background refresh of the
    // expired token has been spent (the custody ledger links the old token to the new one).
    let fake = env.dir.path().join("bin/codex");
    std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor i in $(seq 1 300); do grep -q '\"next\"' '{}' 2>/dev/null && exit 0; sleep 0.1; done\nexit 0\n",
            data.join("a1/.cao-custody.json").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let auth = data.join("a1/auth.json");
    let Some(guard) = common::Immutable::set(&auth) else {
        eprintln!("skipping: chattr +i is not available here");
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = env.cao();
    c.env_remove("CODEX_REFRESH_TOKEN_URL_OVERRIDE")
        .args(["run", "--gateway", "--gateway-url"])
        .arg(format!("http://127.0.0.1:{closed}"))
        .arg("--codex")
        .arg(&fake)
        .args(["--", "exec", "hi"])
        .timeout(Duration::from_secs(90));
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    drop(guard);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(m.refresh_count("acc-1"), 1, "{stderr}");
    assert_eq!(saved_refresh_token(&auth), "rt-acc-1-0");
    assert!(
        !out.status.success(),
        "Codex exited 0, but a login was rescued: {stderr}"
    );
    let rescue = rescue_in(&data.join("a1"))
        .unwrap_or_else(|| panic!("a rescue file in the account dir: {stderr}"));
    assert!(
        stderr.contains(&rescue.display().to_string()) && stderr.contains("or the login is lost"),
        "{stderr}"
    );
    assert_no_spent_token_presented(&m);
    assert_login_alive(&m, &rescue).await;
}
