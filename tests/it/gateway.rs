//! The gateway end to end: the real `cao gateway start` against the mock upstream on 127.0.0.1:
//! forwarding with the chosen account's credentials, cooldowns, retries and switches. Tokens are
//! in [`super::gateway_tokens`], streams and shutdown in [`super::gateway_streams`], the start
//! options in [`super::gateway_options`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, Scenario, ServerErrorFault, Times};
use common::gateway::{
    assert_no_mismatch, gw, mock, mock_acc1, model_call, model_calls, send, status_file,
    two_accounts,
};
use common::{TestEnv, now_secs};

#[tokio::test(flavor = "multi_thread")]
async fn forwards_every_path_with_the_chosen_accounts_credentials() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, Some("s1")).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("event: response.completed"), "{}", a.body);
    assert!(a.body.contains("Mock reply from acc-1."));
    for path in [
        "/models?client_version=0.169.0",
        "/backend-api/wham/settings/user",
        "/backend-api/wham/usage",
    ] {
        let r = send(
            "GET",
            &format!("{}{path}", g.url),
            &[
                ("authorization", "Bearer client-own-token"),
                ("chatgpt-account-id", "client-own-account"),
            ],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{path}");
    }
    let reqs = m.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[0].session_id.as_deref(), Some("s1"));
    assert!(reqs.iter().all(|r| r.account() == Some("acc-1")));
    assert_eq!(reqs[1].path, "/models");
    assert_no_mismatch(&m);
    // Codex's workspace check is about the client's own login: it goes up with the client's own
    // credentials, untouched, and no account is chosen for it.
    let r = send(
        "GET",
        &format!("{}/backend-api/wham/accounts/check", g.url),
        &[
            ("authorization", "Bearer client-own-token"),
            ("chatgpt-account-id", "client-own-account"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let check = m.requests().pop().unwrap();
    assert_eq!(check.path, "/backend-api/wham/accounts/check");
    assert_eq!(check.header_account.as_deref(), Some("client-own-account"));
    assert_eq!(
        check.bearer_account, None,
        "the client's own (non-JWT) bearer went up"
    );
    m.clear_requests();
    let health = send("GET", &format!("{}/health", g.url), &[], b"").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.json()["accounts"], 2);
    assert_eq!(m.requests().len(), 0, "/health must not be forwarded");
    let log = g.log_when(|log| {
        log.contains("path=/responses") && log.contains("account=a1") && log.contains("status=200")
    });
    assert!(
        log.contains("path=/responses") && log.contains("account=a1") && log.contains("status=200"),
        "{log}"
    );
    assert!(!log.contains("eyJ"), "a token leaked into the log: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spent_account_is_cooled_until_its_reset_and_remembered_across_restart() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults::spent(3600)).await;
    let g = gw(&env, &m, &[]);
    for _ in 0..3 {
        let a = model_call(&g.url, None).await;
        assert_eq!(a.status, 200);
        assert!(a.body.contains("Mock reply from acc-2."));
    }
    assert_eq!(
        model_calls(&m),
        vec![
            ("acc-1".into(), 429),
            ("acc-2".into(), 200),
            ("acc-2".into(), 200),
            ("acc-2".into(), 200)
        ]
    );
    let log = g.log_when(|log| log.contains("switched=true"));
    assert!(log.contains("switched=true"), "{log}");
    let status = g.stop_with("-INT");
    assert!(
        status.success(),
        "Ctrl-C stops gracefully with exit 0: {status}"
    );
    let until = status_file(&env)["statuses"]["a1"]["cooldownUntilMs"]
        .as_i64()
        .unwrap_or(0);
    let expected = (now_secs() + 3600) * 1000;
    assert!(
        (until - expected).abs() < 10_000,
        "cooldown {until} should be the reset {expected}"
    );
    assert!(status_file(&env)["statuses"]["a1"]["lastQuotaAtMs"].is_i64());

    m.clear_requests();
    let g = gw(&env, &m, &[]);
    assert_eq!(model_call(&g.url, None).await.status, 200);
    assert_eq!(
        model_calls(&m),
        vec![("acc-2".into(), 200)],
        "the restarted gateway remembers the cooldown"
    );
    assert_no_mismatch(&m);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_account_spent_answers_like_upstream_with_the_earliest_reset() {
    let env = two_accounts();
    let m = mock(
        Scenario::default()
            .with_account("acc-1", AccountFaults::spent(900))
            .with_account("acc-2", AccountFaults::spent(300)),
    )
    .await;
    let g = gw(&env, &m, &[]);
    for round in 0..2 {
        let a = model_call(&g.url, None).await;
        assert_eq!(a.status, 429, "round {round}");
        let err = &a.json()["error"];
        assert_eq!(err["type"], "usage_limit_reached", "{}", a.body);
        let secs = err["resets_in_seconds"].as_i64().unwrap();
        assert!(
            (280..=301).contains(&secs),
            "earliest reset is acc-2's 300 s, got {secs}"
        );
        assert!((err["resets_at"].as_i64().unwrap() - (now_secs() + 300)).abs() <= 20);
    }
    assert_eq!(
        model_calls(&m).len(),
        2,
        "the second request must not ask upstream again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_then_reported_as_sent() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        server_error: Some(ServerErrorFault {
            status: 502,
            times: Some(1),
        }),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        model_calls(&m),
        vec![("acc-1".into(), 502), ("acc-1".into(), 200)]
    );

    m.clear_requests();
    m.set_faults(
        "acc-1",
        AccountFaults {
            server_error: Some(ServerErrorFault {
                status: 503,
                times: None,
            }),
            ..Default::default()
        },
    );
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 503);
    assert!(
        a.body.contains("injected server error"),
        "upstream's error body is passed on: {}",
        a.body
    );
    assert_eq!(model_calls(&m).len(), 3, "1 try + --upstream-retries 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_rate_limit_moves_on_without_a_long_cooldown_and_sessions_stick() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        rate_limited: Some(Times { times: Some(1) }),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, Some("sess-A")).await;
    assert!(a.body.contains("acc-2"), "{}", a.body);
    // A new session goes to the default again: no cooldown from a short rate limit.
    assert!(
        model_call(&g.url, Some("sess-B"))
            .await
            .body
            .contains("acc-1")
    );
    // The first session stays on its account (prompt cache), the second on its own.
    for _ in 0..2 {
        assert!(
            model_call(&g.url, Some("sess-A"))
                .await
                .body
                .contains("acc-2")
        );
        assert!(
            model_call(&g.url, Some("sess-B"))
                .await
                .body
                .contains("acc-1")
        );
    }
    assert_no_mismatch(&m);
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_upgrades_off_the_model_path_get_426_and_big_bodies_413() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &["--max-body-bytes", "1000"]);
    let ws = send(
        "GET",
        &format!("{}/models", g.url),
        &[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    )
    .await;
    assert_eq!(ws.status, 426);
    let big = send(
        "POST",
        &format!("{}/responses", g.url),
        &[("content-type", "application/json")],
        &vec![b'x'; 2000],
    )
    .await;
    assert_eq!(big.status, 413);
    assert!(big.body.contains("--max-body-bytes"));
    assert!(m.requests().is_empty());
    assert_eq!(
        send(
            "POST",
            &format!("{}/backend-api/ps/mcp", g.url),
            &[],
            &vec![b'y'; 1000]
        )
        .await
        .status,
        200
    );
    assert_eq!(m.requests()[0].body_len, 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_added_or_relogged_while_running_are_picked_up() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    let m = mock_acc1(AccountFaults::spent(600)).await;
    let g = gw(&env, &m, &[]);
    assert_eq!(model_call(&g.url, None).await.status, 429);
    env.add_logged_in("a2", "acc-2", now_secs() + 3600);
    let mut served = false;
    for _ in 0..200 {
        let a = model_call(&g.url, None).await;
        if a.status == 200 {
            assert!(a.body.contains("acc-2"));
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(served, "the new account was not picked up");
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_upstream_sets_go_back_with_the_same_account_only() {
    let env = two_accounts();
    let mut faults = AccountFaults::default();
    faults.headers.insert(
        "set-cookie".into(),
        "__cf_bm=acc1cookie; Path=/; HttpOnly".into(),
    );
    let m = mock(Scenario::default().with_account("acc-1", faults)).await;
    let g = gw(&env, &m, &[]);
    assert_eq!(model_call(&g.url, Some("x")).await.status, 200);
    assert_eq!(model_call(&g.url, Some("x")).await.status, 200);
    let reqs = m.requests();
    assert_eq!(reqs[0].cookie, None, "the client's cookie is never sent");
    assert_eq!(reqs[1].cookie.as_deref(), Some("__cf_bm=acc1cookie"));
    assert_no_mismatch(&m);
}

#[tokio::test(flavor = "multi_thread")]
async fn short_rate_limits_everywhere_are_passed_on_unless_another_pass_is_allowed() {
    let env = two_accounts();
    let once = || AccountFaults {
        rate_limited: Some(Times { times: Some(1) }),
        ..Default::default()
    };
    let scenario = Scenario::default()
        .with_account("acc-1", once())
        .with_account("acc-2", once());
    let m = mock(scenario.clone()).await;
    let g = gw(&env, &m, &["--no-app-env"]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 429);
    assert_eq!(
        a.json()["error"]["type"],
        "rate_limit_exceeded",
        "not a usage limit: passed on as upstream sent it"
    );
    drop(g);
    m.set_scenario(scenario);
    m.clear_requests();
    let g = gw(&env, &m, &["--max-retry-passes", "2"]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        model_calls(&m),
        vec![
            ("acc-1".into(), 429),
            ("acc-2".into(), 429),
            ("acc-1".into(), 200)
        ]
    );
}
