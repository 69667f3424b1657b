//! Fault injection on what the real `cao gateway start` keeps: a failing token endpoint, tokens
//! rotated twice, an unwritable data dir; no login and no cooldown lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::faults::{auth_bytes, healthy, read_json};

use std::time::Duration;

use cao::mock::{AccountFaults, RefreshFault, Scenario};
use common::gateway::{eventually, gw, mock, model_call, send, two_accounts};
use common::{TestEnv, now_secs};

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_token_endpoint_keeps_the_old_tokens_and_moves_on() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() - 60); // expired: must refresh first
    env.add_logged_in("a2", "acc-2", now_secs() + 3600);
    let before = auth_bytes(&env, "a1");
    let m = mock(Scenario::default().with_account(
        "acc-1",
        AccountFaults {
            refresh: RefreshFault::Error,
            ..Default::default()
        },
    ))
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body.contains("acc-2"),
        "served by the next account: {}",
        a.body
    );
    assert!(g.stop().success());
    // Nothing of a1 was lost or marked as needing a login for a transient failure.
    assert_eq!(before, auth_bytes(&env, "a1"));
    let st = read_json(&env.data_dir().join("account_status.json"));
    assert_ne!(st["statuses"]["a1"]["needsLogin"], true, "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_rotated_twice_keep_the_newest_refresh_token_and_never_reuse_one() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() - 60);
    // Issued access tokens live 1 s: each request needs a new refresh.
    let m = mock(Scenario {
        access_token_ttl_seconds: 1,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    for _ in 0..2 {
        let a = model_call(&g.url, None).await;
        assert_eq!(a.status, 200, "{a:?}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(g.stop().success());
    assert!(m.refresh_count("acc-1") >= 2, "{:?}", m.requests());
    let token_calls: Vec<_> = m
        .requests()
        .into_iter()
        .filter(|r| r.path == "/oauth/token")
        .collect();
    assert!(
        token_calls.iter().all(|r| r.status == 200),
        "a refresh token was sent twice (reuse) or refused: {token_calls:?}"
    );
    // auth.json holds the newest tokens: its refresh token still works exactly once.
    let auth = read_json(&env.data_dir().join("a1").join("auth.json"));
    let rt = auth["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(rt, "rt-acc-1-0");
    let body =
        serde_json::json!({"grant_type": "refresh_token", "refresh_token": rt, "client_id": "x"});
    let r = send(
        "POST",
        &m.token_url(),
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "the saved refresh token was already used: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_data_dir_neither_crashes_the_gateway_nor_loses_the_cooldown() {
    let env = two_accounts();
    let m = mock(Scenario::default().with_account("acc-1", AccountFaults::spent(3600))).await;
    let g = gw(&env, &m, &[]);
    // Tests run as root, where file modes do not stop writes. Put a directory where
    // account_status.json goes: the atomic rename onto it fails for root too.
    let status_path = env.data_dir().join("account_status.json");
    let _ = std::fs::remove_file(&status_path);
    std::fs::create_dir_all(status_path.join("blocker")).unwrap();

    let a = model_call(&g.url, Some("s1")).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains("acc-2"));
    // Give the batched writer a few chances to fail.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        healthy(&g).await,
        "gateway died on an unwritable status file"
    );
    // The cooldown is still known in memory: acc-1 is not asked again.
    let a = model_call(&g.url, Some("s2")).await;
    assert_eq!(a.status, 200);
    let asked_acc1 = m
        .requests()
        .iter()
        .filter(|r| r.is_model_call() && r.account() == Some("acc-1"))
        .count();
    assert_eq!(asked_acc1, 1, "{:?}", m.requests());

    // The disk recovers: the cooldown learned meanwhile reaches the file.
    std::fs::remove_dir_all(&status_path).unwrap();
    let cooled = eventually(20, || {
        read_json(&status_path)["statuses"]["a1"]["cooldownUntilMs"]
            .as_i64()
            .is_some_and(|u| u > (now_secs() + 3000) * 1000)
    });
    assert!(cooled, "cooldown lost: {}", read_json(&status_path));

    // A whole data dir that refuses new files (chattr +i, where the file system allows it):
    // the gateway keeps serving and stops cleanly.
    if let Some(_guard) = common::Immutable::set(&env.data_dir()) {
        let a = model_call(&g.url, Some("s3")).await;
        assert_eq!(a.status, 200);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(healthy(&g).await);
        let status = g.stop();
        assert!(status.success(), "{status}");
    } else {
        eprintln!("chattr +i not available here; skipped the immutable data dir part");
    }
    let st = read_json(&status_path);
    assert!(
        st["statuses"]["a1"]["cooldownUntilMs"].as_i64().is_some(),
        "{st}"
    );
}
