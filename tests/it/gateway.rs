//! The gateway end to end: the real `cao gateway start` against the mock upstream on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, RefreshFault, Scenario, ServerErrorFault, Times};
use common::gateway::{
    GatewayProc, assert_no_mismatch, cao_command, eventually, get, gw, mock, mock_acc1, model_call,
    model_calls, send, status_file, two_accounts,
};
use common::{TestEnv, now_secs};
use serde_json::Value;

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
async fn access_key_is_required_when_set_and_for_any_non_loopback_bind() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let base = m.base_url();
    let refused = GatewayProc::try_start(&env, &["--bind", "0.0.0.0", "--base-url", &base])
        .err()
        .unwrap_or_default();
    assert!(refused.contains("access key"), "{refused}");
    let g = gw(&env, &m, &["--access-key", "s3cret-key-0123456789"]);
    assert_eq!(model_call(&g.url, None).await.status, 401);
    let wrong = get(&g.url, "/models", &[("x-cao-key", "s3cret-key-0123456788")]).await;
    assert_eq!(wrong.status, 401);
    let ok = get(&g.url, "/models", &[("x-cao-key", "s3cret-key-0123456789")]).await;
    assert_eq!(ok.status, 200);
    let bearer = get(
        &g.url,
        "/models",
        &[("authorization", "Bearer s3cret-key-0123456789")],
    )
    .await;
    assert_eq!(bearer.status, 200);
    assert_eq!(
        send("GET", &format!("{}/health", g.url), &[], b"")
            .await
            .status,
        200
    );
    assert_eq!(m.requests().len(), 2);
    assert_no_mismatch(&m);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_a_running_stream_finish_and_exits_zero() {
    let env = two_accounts();
    let m = mock(Scenario {
        event_delay_ms: 300,
        deltas: 4,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let url = g.url.clone();
    let call = tokio::spawn(async move { model_call(&url, None).await });
    assert!(eventually(10, || !m.requests().is_empty()));
    let status = tokio::task::spawn_blocking(move || g.stop()).await.unwrap();
    let a = call.await.unwrap();
    assert_eq!(a.status, 200);
    assert!(a.body.contains("event: response.completed"), "{}", a.body);
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_streams_end_with_an_error_after_the_idle_timeout() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        stall_after_events: Some(2),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &["--idle-timeout-ms", "300"]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("response.created"));
    assert!(!a.body.contains("response.completed"));
    assert!(
        a.body.contains("<<stream error"),
        "the stream must end with an error: {}",
        a.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disconnect_mid_stream_reaches_the_client_as_an_error() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        disconnect_after_events: Some(2),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert!(
        a.body.contains("response.created") && !a.body.contains("response.completed"),
        "{a:?}"
    );
    assert!(a.body.contains("<<stream error"), "{}", a.body);
    // The gateway is still fine afterwards.
    m.set_faults("acc-1", AccountFaults::default());
    assert_eq!(model_call(&g.url, None).await.status, 200);
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
async fn save_writes_typescript_keys_and_invalid_values_are_refused() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let g = gw(
        &env,
        &m,
        &["--save", "--cooldown-seconds", "120", "--port", &port],
    );
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(env.data_dir().join("gateway.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["cooldownSeconds"], 120);
    assert_eq!(saved["baseUrl"], m.base_url());
    assert_eq!(saved["overrideAuth"], true);
    for key in [
        "bindAddress",
        "port",
        "oauthClientId",
        "maxRetryPasses",
        "requestTimeoutMs",
        "upstreamMaxRetries",
        "upstreamRetryBaseMs",
        "upstreamRetryMaxMs",
        "upstreamRetryJitterMs",
        "tokenUrl",
    ] {
        assert!(saved.get(key).is_some(), "missing {key}");
    }
    let out = cao_command(&env)
        .args(["gateway", "status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accounts"][0]["state"], "ready");
    assert_eq!(v["config"]["cooldownSeconds"], 120);
    assert_eq!(
        v["live"]["health"]["status"], "ok",
        "the running gateway is shown: {v}"
    );
    assert_eq!(v["live"]["health"]["ready"], 2);
    // Both URLs (same port) and the CA, on /status and in `gateway status`.
    let served = &v["live"]["status"]["served"];
    assert_eq!(served["httpUrl"], g.url.as_str(), "{v}");
    assert_eq!(
        served["httpsUrl"],
        g.tls_url.clone().unwrap().as_str(),
        "{v}"
    );
    let fp = served["caFingerprint"].as_str().unwrap().to_string();
    assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
    let ca_until = served["caNotAfterMs"].as_i64().unwrap();
    let leaf_until = served["leafNotAfterMs"].as_i64().unwrap();
    assert!(
        ca_until > leaf_until && leaf_until > now_secs() * 1000,
        "{v}"
    );
    let st = get(&g.url, "/status", &[]).await;
    assert_eq!(st.json()["served"]["caFingerprint"], fp.as_str());
    let out = cao_command(&env)
        .args(["gateway", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Live: running at") && text.contains("requests,"),
        "{text}"
    );
    assert!(text.contains("*a1") && text.contains("ready"), "{text}");
    assert!(text.contains(&format!("  http       {}", g.url)), "{text}");
    assert!(
        text.contains(&format!(
            "  https      {} (same port)",
            g.tls_url.clone().unwrap()
        )),
        "{text}"
    );
    assert!(text.contains(&format!("CA         sha256 {fp}")), "{text}");
    assert!(
        text.contains("leaf expires") && text.contains("CA expires"),
        "{text}"
    );
    drop(g);
    let out = cao_command(&env)
        .args([
            "gateway",
            "start",
            "--port",
            "0",
            "--upstream-retry-base-ms",
            "500",
            "--upstream-retry-max-ms",
            "100",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream-retry-max-ms"));
    std::fs::write(env.data_dir().join("gateway.json"), r#"{"port": "4319"}"#).unwrap();
    let out = cao_command(&env)
        .args(["gateway", "start"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
async fn a_client_that_hangs_up_cancels_its_upstream_stream() {
    use http_body_util::BodyExt;
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        stall_after_events: Some(1),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let client = cao::gateway::http_client().unwrap();
    let req = http::Request::post(format!("{}/responses", g.url))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(first.data_ref().unwrap()).contains("response.created"));
    assert_eq!(m.open_streams(), 1);
    drop(body);
    drop(client);
    assert!(
        eventually(10, || m.open_streams() == 0),
        "the upstream stream must end when the client leaves"
    );
    // The gateway keeps serving.
    m.set_faults("acc-1", AccountFaults::default());
    assert_eq!(model_call(&g.url, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn passthrough_auth_keeps_the_clients_own_credentials() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &["--passthrough-auth"]);
    let own = common::jwt(serde_json::json!({
        "exp": now_secs() + 600,
        "https://api.openai.com/auth": {"chatgpt_account_id": "acc-own"}
    }));
    let bearer = format!("Bearer {own}");
    let a = send(
        "POST",
        &format!("{}/responses", g.url),
        &[
            ("authorization", &bearer),
            ("chatgpt-account-id", "acc-own"),
            ("content-type", "application/json"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(a.status, 200);
    let r = &m.requests()[0];
    assert_eq!(r.bearer_account.as_deref(), Some("acc-own"));
    assert_eq!(r.header_account.as_deref(), Some("acc-own"));
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
async fn a_slow_first_byte_waits_up_to_the_timeout_then_fails_clearly() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        first_byte_delay_ms: 400,
        ..Default::default()
    })
    .await;
    let patient = gw(&env, &m, &[]);
    assert_eq!(model_call(&patient.url, None).await.status, 200);
    drop(patient);
    m.clear_requests();
    let hasty = gw(
        &env,
        &m,
        &["--timeout-ms", "100", "--upstream-retries", "1"],
    );
    let a = model_call(&hasty.url, None).await;
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.json()["error"]["type"], "upstream_unreachable");
    assert_eq!(model_calls(&m).len(), 2, "one try and one retry");
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
