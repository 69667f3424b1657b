//! The gateway's token refreshes end to end (the real `cao gateway start` against the mock
//! upstream on 127.0.0.1): one refresh for many requests, on a 401 and before expiry, a lost login
//! and a failing token endpoint told apart, rotated tokens never lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, RefreshFault, Scenario};
use common::gateway::{
    assert_no_mismatch, cao_command, eventually, gw, mock, mock_acc1, model_call, model_calls,
    send, status_file, two_accounts,
};
use common::{TestEnv, now_secs};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn forty_concurrent_requests_with_an_expired_token_cause_exactly_one_refresh() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() - 60);
    let auth_path = env.data_dir().join("a1/auth.json");
    let mut auth: Value =
        serde_json::from_str(&std::fs::read_to_string(&auth_path).unwrap()).unwrap();
    auth["codex_future_field"] = serde_json::json!({"keep": true});
    std::fs::write(&auth_path, auth.to_string()).unwrap();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let url = g.url.clone();
            tokio::spawn(async move { model_call(&url, Some(&format!("s{i}"))).await })
        })
        .collect();
    for c in calls {
        let a = c.await.unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
    }
    assert_eq!(m.refresh_count("acc-1"), 1);
    assert_eq!(
        m.requests()
            .iter()
            .filter(|r| r.path == "/oauth/token")
            .count(),
        1
    );
    assert!(
        model_calls(&m)
            .iter()
            .all(|(a, s)| a == "acc-1" && *s == 200),
        "no call went out with the expired token"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&auth_path).unwrap()).unwrap();
    assert_ne!(
        saved["tokens"]["refresh_token"], "rt-acc-1-0",
        "the rotated refresh token is saved"
    );
    assert!(
        saved["tokens"]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt-acc-1-")
    );
    assert_eq!(
        saved["codex_future_field"]["keep"], true,
        "unknown fields survive"
    );
    assert_ne!(saved["last_refresh"], "2026-11-01T00:00:00Z");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&auth_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_no_mismatch(&m);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_refreshes_once_and_retries_the_same_account() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        unauthorized: true,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200);
    assert!(
        a.body.contains("acc-1"),
        "served by acc-1 after the refresh: {}",
        a.body
    );
    assert_eq!(m.refresh_count("acc-1"), 1);
    assert_eq!(
        model_calls(&m),
        vec![("acc-1".into(), 401), ("acc-1".into(), 200)]
    );
    // Non-model paths use the refreshed token too.
    assert_eq!(
        send("GET", &format!("{}/models", g.url), &[], b"")
            .await
            .status,
        200
    );
    assert_eq!(m.refresh_count("acc-1"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_refresh_marks_needs_login_moves_on_and_never_retries() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        unauthorized: true,
        refresh: RefreshFault::Reused,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    for _ in 0..3 {
        let a = model_call(&g.url, None).await;
        assert_eq!(a.status, 200);
        assert!(a.body.contains("acc-2"));
    }
    let token_calls = m
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth/token")
        .count();
    assert_eq!(token_calls, 1, "no retry storm against the token endpoint");
    assert!(eventually(
        15,
        || status_file(&env)["statuses"]["a1"]["needsLogin"] == true
    ));
    let out = cao_command(&env)
        .args(["gateway", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("needs-login"), "{text}");
    // A new login (`cao add a1` rewrites auth.json) is picked up without a restart.
    m.set_faults("acc-1", AccountFaults::default());
    std::thread::sleep(std::time::Duration::from_millis(20));
    common::write_account(&env.data_dir(), "a1", "acc-1", now_secs() + 3600);
    // A new login carries a new refresh token (the rejected one again is the same dead login).
    let auth_path = env.data_dir().join("a1/auth.json");
    let relogged = std::fs::read_to_string(&auth_path)
        .unwrap()
        .replace("rt-acc-1-0", "rt-acc-1-900");
    std::fs::write(&auth_path, relogged).unwrap();
    let mut back = false;
    for _ in 0..200 {
        if model_call(&g.url, None).await.body.contains("acc-1") {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "the re-logged account serves again");
    assert!(eventually(15, || status_file(&env)["statuses"]["a1"]
        .get("needsLogin")
        .is_none()));
    drop(g);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_rotated_by_someone_else_are_used_instead_of_refreshing_again() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() - 60);
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    // Codex (or another cao) refreshed meanwhile: auth.json holds fresh tokens.
    common::write_account(&env.data_dir(), "a1", "acc-1", now_secs() + 3600);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        m.refresh_count("acc-1"),
        0,
        "the rotated login is adopted, not refreshed"
    );
    assert!(m.requests().iter().all(|r| r.path != "/oauth/token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_about_to_expire_is_refreshed_before_use() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 120);
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    assert_eq!(model_call(&g.url, None).await.status, 200);
    assert_eq!(model_call(&g.url, None).await.status, 200);
    assert_eq!(m.refresh_count("acc-1"), 1);
    assert_eq!(
        m.requests()[0].path,
        "/oauth/token",
        "refreshed before the first call"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_token_endpoint_is_not_a_lost_login_and_not_hammered() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() - 60);
    env.add_logged_in("a2", "acc-2", now_secs() + 3600);
    let m = mock_acc1(AccountFaults {
        refresh: RefreshFault::Error,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    for _ in 0..3 {
        let a = model_call(&g.url, None).await;
        assert_eq!(a.status, 200);
        assert!(a.body.contains("acc-2"));
    }
    assert_eq!(
        m.requests()
            .iter()
            .filter(|r| r.path == "/oauth/token")
            .count(),
        1,
        "the account rests briefly instead of retrying the refresh on every request"
    );
    assert!(
        model_calls(&m).iter().all(|(a, _)| a == "acc-2"),
        "no call with the expired token"
    );
    assert!(eventually(15, || {
        status_file(&env)["statuses"]["a1"]["cooldownUntilMs"].is_i64()
    }));
    assert_ne!(status_file(&env)["statuses"]["a1"]["needsLogin"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_hanging_up_mid_refresh_does_not_lose_the_rotated_token() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() - 60);
    let m = mock_acc1(AccountFaults {
        refresh_delay_ms: 1500,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let gone = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        model_call(&g.url, None),
    )
    .await;
    assert!(
        gone.is_err(),
        "the client gave up before the refresh finished"
    );
    let auth_path = env.data_dir().join("a1/auth.json");
    let saved = || {
        std::fs::read_to_string(&auth_path)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .is_some_and(|v| v["tokens"]["refresh_token"] != "rt-acc-1-0")
    };
    assert!(
        eventually(10, saved),
        "the rotated tokens were saved anyway"
    );
    assert_eq!(model_call(&g.url, None).await.status, 200);
    assert_eq!(m.refresh_count("acc-1"), 1);
}
