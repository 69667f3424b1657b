//! When cao refreshes a login, against the mock's STRICT token endpoint: not on every request
//! for short-lived tokens, in the background before expiry, and for the real Codex under `cao run`
//! through cao's broker, one custodian with the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::custody::{
    assert_login_alive, assert_no_spent_token_presented, expired_account, gw, mock,
};

use std::path::Path;
use std::time::Duration;

use cao::mock::{MockUpstream, Scenario, Verdict};
use common::codex::route_args;
use common::gateway::{eventually, model_call};
use common::{TestEnv, now_secs};

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_access_tokens_are_not_refreshed_on_every_request() {
    let env = expired_account();
    // Two-minute tokens: under Codex's 5-minute margin.
    let m = mock(Scenario {
        access_token_ttl_seconds: 120,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m);
    for _ in 0..10 {
        assert_eq!(model_call(&g.url, None).await.status, 200);
    }
    assert_eq!(m.refresh_count("acc-1"), 1, "{:?}", m.presented_tokens());
    assert!(g.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_refreshes_in_the_background_before_expiry() {
    let env = TestEnv::new();
    // Valid for 5 more minutes: inside the 10-minute proactive margin, outside the request one.
    env.add_logged_in("a1", "acc-1", now_secs() + 300);
    let m = mock(Scenario {
        access_token_ttl_seconds: 4,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m);
    // No request at all: the background refreshes (each 4-second token at half its life).
    assert!(
        eventually(15, || m.refresh_count("acc-1") >= 2),
        "{:?}\n{}",
        m.presented_tokens(),
        g.log()
    );
    assert_no_spent_token_presented(&m);
    assert!(
        m.presented_tokens()
            .iter()
            .all(|p| p.verdict == Verdict::Rotated)
    );
    let p = &m.presented_tokens()[0];
    assert_eq!(p.refresh_reason.as_deref(), Some("proactive_expiry"));
    // cao's own refreshes introduce themselves as Codex does (tests/it/identity.rs holds these
    // to the real binary).
    assert_eq!(
        p.originator.as_deref(),
        Some(cao::codex::identity::ORIGINATOR)
    );
    assert_eq!(
        p.user_agent,
        Some(cao::codex::identity::user_agent()),
        "{p:?}"
    );
    assert!(g.stop().success());
}

/// `cao run --codex <real codex> -- <route to mock> exec "say hi"`, run off the async runtime.
async fn cao_run_exec(env: &TestEnv, codex: &Path, m: &MockUpstream) -> std::process::Output {
    let mut c = env.cao();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    c.current_dir(&work)
        .env_remove("CODEX_REFRESH_TOKEN_URL_OVERRIDE")
        .args(["run", "--no-fallback", "--codex"])
        .arg(codex)
        .arg("--")
        .args(route_args(&m.base_url()))
        .args(["exec", "--skip-git-repo-check", "say hi"])
        .timeout(Duration::from_secs(120));
    // The real token URL cao uses: the saved gateway tokenUrl (here the mock's).
    let saved = serde_json::json!({"tokenUrl": m.token_url()});
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::fs::write(env.data_dir().join("gateway.json"), saved.to_string()).unwrap();
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_codex_under_cao_run_refreshes_through_cao_s_broker() {
    let Some(codex) = common::real_codex() else {
        return;
    };
    let env = expired_account();
    let m = mock(Scenario {
        reply: "Hello from {account}.".into(),
        ..Scenario::default()
    })
    .await;
    let out = cao_run_exec(&env, &codex, &m).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{:?}",
        m.presented_tokens()
    );
    assert!(stdout.contains("Hello from acc-1"), "{stdout}\n{stderr}");
    // Codex's expired token was refreshed by cao on Codex's behalf, saying what Codex said.
    let presented = m.presented_tokens();
    assert_eq!(presented.len(), 1, "{presented:?}");
    let p = &presented[0];
    assert!(
        p.user_agent
            .as_deref()
            .unwrap_or("")
            .starts_with("codex_exec/0.171.0"),
        "{p:?}"
    );
    assert_eq!(p.originator.as_deref(), Some("codex_exec"));
    assert!(p.refresh_reason.is_some(), "{p:?}");
    assert_no_spent_token_presented(&m);
    assert_login_alive(&m, &env.data_dir().join("a1/auth.json")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_and_the_real_codex_under_cao_run_share_one_custodian() {
    let Some(codex) = common::real_codex() else {
        return;
    };
    let env = expired_account();
    // Access tokens live 3 s: the gateway and Codex both keep needing refreshes.
    let m = mock(Scenario {
        reply: "Hello from {account}.".into(),
        access_token_ttl_seconds: 3,
        ..Scenario::default()
    })
    .await;
    let g = gw(&env, &m);
    let url = g.url.clone();
    let traffic = tokio::spawn(async move {
        for _ in 0..6 {
            let _ = model_call(&url, None).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let out = cao_run_exec(&env, &codex, &m).await;
    let _ = traffic.await;
    assert!(
        out.status.success(),
        "{}\n{}\n{:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        m.presented_tokens()
    );
    assert_no_spent_token_presented(&m);
    assert!(g.stop().success());
    assert_login_alive(&m, &env.data_dir().join("a1/auth.json")).await;
}
