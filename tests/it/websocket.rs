//! Responses over WebSocket through the real gateway binary against the mock upstream: one
//! account per socket while healthy, deltas native, a spent account replaced mid-session
//! without the client seeing an error, and every upstream misbehaviour handled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, MockUpstream, RecordedFrame, Scenario, WsFaults};
use common::gateway::{GatewayProc, assert_no_mismatch, gw, mock, spent_after, two_accounts};
use common::ws::WsClient;

fn ws(f: WsFaults) -> AccountFaults {
    AccountFaults {
        ws: f,
        ..Default::default()
    }
}

/// Frames the mock answered with output or an error (prewarms left out), as (account, delta?, answer).
fn turns(m: &MockUpstream) -> Vec<(String, bool, String)> {
    m.ws_frames()
        .iter()
        .filter(|f| !f.prewarm)
        .map(|f| {
            (
                f.account.clone().unwrap_or_default(),
                f.previous_response_id.is_some(),
                f.answer.clone(),
            )
        })
        .collect()
}

/// Bearer and header always name the same account, never the client's own.
fn assert_frames_match(frames: &[RecordedFrame]) {
    for f in frames {
        assert_eq!(
            f.bearer_account, f.header_account,
            "mismatched credentials: {f:?}"
        );
        assert_ne!(
            f.account.as_deref(),
            Some("client-own-account"),
            "client's own account used: {f:?}"
        );
    }
}

async fn session(g: &GatewayProc, id: &str) -> WsClient {
    WsClient::connect(&g.url, id).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_session_stays_on_one_account_with_native_deltas() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-healthy").await;
    assert!(c.prewarm().await.error.is_none());
    for n in 0..4 {
        let a = c.turn(&format!("turn {n}")).await;
        assert_eq!(a.error, None, "{a:?}");
        assert_eq!(a.text, "Mock reply from acc-1.");
    }
    let frames = m.ws_frames();
    assert_eq!(frames.len(), 5, "{frames:?}");
    assert!(
        frames.iter().all(|f| f.socket == frames[0].socket),
        "one upstream socket: {frames:?}"
    );
    assert!(
        frames
            .iter()
            .skip(1)
            .all(|f| f.previous_response_id.is_some() && f.input_items == 1),
        "deltas stay deltas: {frames:?}"
    );
    assert_frames_match(&frames);
    assert_no_mismatch(&m);
    let upgrades: Vec<_> = m
        .requests()
        .into_iter()
        .filter(|r| r.path == "/responses")
        .collect();
    assert_eq!(upgrades.len(), 1, "{upgrades:?}");
    assert_eq!(upgrades[0].status, 101);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_account_mid_session_is_replaced_without_an_error_and_deltas_resume() {
    let env = two_accounts();
    let m = mock(Scenario::default().with_account("acc-1", spent_after(2))).await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-switch").await;
    c.prewarm().await;
    let mut texts = Vec::new();
    for n in 0..5 {
        let a = c.turn(&format!("turn {n}")).await;
        assert_eq!(a.error, None, "turn {n}: {a:?}");
        assert!(
            a.events.iter().all(|e| e["type"] != "error"),
            "the client never sees the limit: {a:?}"
        );
        texts.push(a.text);
    }
    assert_eq!(
        texts[..2],
        ["Mock reply from acc-1.", "Mock reply from acc-1."]
    );
    assert!(
        texts[2..].iter().all(|t| t == "Mock reply from acc-2."),
        "{texts:?}"
    );
    let t = turns(&m);
    let expected = vec![
        ("acc-1".to_string(), true, "completed".to_string()),
        ("acc-1".into(), true, "completed".into()),
        ("acc-1".into(), true, "error:usage_limit_reached".into()),
        // The same turn, expanded to a full request for the new account.
        ("acc-2".into(), false, "completed".into()),
        ("acc-2".into(), true, "completed".into()),
        ("acc-2".into(), true, "completed".into()),
    ];
    assert_eq!(t, expected);
    let frames = m.ws_frames();
    let expanded = frames
        .iter()
        .find(|f| f.account.as_deref() == Some("acc-2"))
        .unwrap();
    // turn 0, its answer, turn 1, its answer, turn 2: the whole conversation.
    assert_eq!(expanded.input_items, 5, "{expanded:?}");
    assert_frames_match(&frames);
    assert_no_mismatch(&m);
    // The cooldown is recorded like an HTTP usage limit.
    let st = common::gateway::eventually(10, || {
        common::gateway::status_file(&env)["statuses"]["a1"]["cooldownUntilMs"]
            .as_i64()
            .is_some()
    });
    assert!(st, "{}", common::gateway::status_file(&env));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_account_spent_gets_the_backends_usage_limit_frame_with_the_earliest_reset() {
    let env = two_accounts();
    let mut a1 = spent_after(0);
    a1.quota.as_mut().unwrap().resets_in_seconds = Some(7200);
    let mut a2 = spent_after(0);
    a2.quota.as_mut().unwrap().resets_in_seconds = Some(600);
    let m = mock(
        Scenario::default()
            .with_account("acc-1", a1)
            .with_account("acc-2", a2),
    )
    .await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-spent").await;
    let a = c.turn("hello").await;
    let err = a.error.expect("an error frame");
    assert_eq!(err["type"], "error");
    assert_eq!(err["status"], 429);
    assert_eq!(err["error"]["type"], "usage_limit_reached");
    let resets = err["error"]["resets_at"].as_i64().unwrap();
    let want = common::now_secs() + 600;
    assert!(
        (want - 5..=want + 5).contains(&resets),
        "earliest reset: {err}"
    );
    assert_frames_match(&m.ws_frames());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_websocket_restores_the_426() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &["--no-websocket"]);
    let err = WsClient::connect(&g.url, "s")
        .await
        .err()
        .unwrap_or_default();
    assert!(err.contains("426"), "{err}");
    assert!(m.ws_frames().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upgrade_moves_the_socket_to_the_next_account() {
    let env = two_accounts();
    let f = ws(WsFaults {
        refuse_upgrade: Some(503),
        ..Default::default()
    });
    let m = mock(Scenario::default().with_account("acc-1", f)).await;
    let g = gw(&env, &m, &["--upstream-retries", "0"]);
    let mut c = session(&g, "s-refused").await;
    let a = c.turn("hello").await;
    assert_eq!(a.error, None, "{a:?}");
    assert_eq!(a.text, "Mock reply from acc-2.");
    assert_frames_match(&m.ws_frames());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_frame_refreshes_upstream_and_never_reaches_the_client() {
    let env = two_accounts();
    let f = ws(WsFaults {
        unauthorized_turns: vec![2],
        ..Default::default()
    });
    let m = mock(Scenario::default().with_account("acc-1", f)).await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-401").await;
    for n in 0..3 {
        let a = c.turn(&format!("t{n}")).await;
        assert_eq!(a.error, None, "turn {n}: {a:?}");
        assert_eq!(a.text, "Mock reply from acc-1.");
    }
    assert_eq!(
        m.refresh_count("acc-1"),
        1,
        "upstream tokens refreshed once"
    );
    assert!(c.seen.iter().all(|e| e["status"] != 401), "{:?}", c.seen);
    let t = turns(&m);
    assert_eq!(
        t[1].2, "error:invalid_request_error",
        "the 401 frame: {t:?}"
    );
    // After the refresh, a new socket: the turn goes in full; then deltas again.
    assert_eq!(t[2], ("acc-1".into(), false, "completed".into()), "{t:?}");
    assert_eq!(t[3], ("acc-1".into(), true, "completed".into()), "{t:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_before_output_is_retried_and_the_age_limit_reconnects() {
    let env = two_accounts();
    let f = ws(WsFaults {
        overloaded_turns: vec![1],
        connection_limit_after: Some(3),
        ..Default::default()
    });
    let m = mock(Scenario::default().with_account("acc-1", f)).await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-overload").await;
    for n in 0..4 {
        let a = c.turn(&format!("t{n}")).await;
        assert_eq!(a.error, None, "turn {n}: {a:?}");
        assert!(
            a.events.iter().all(|e| e["type"] != "response.failed"),
            "{a:?}"
        );
    }
    let answers: Vec<String> = turns(&m).into_iter().map(|t| t.2).collect();
    assert!(answers.contains(&"failed".to_string()), "{answers:?}");
    assert!(
        answers.contains(&"error:websocket_connection_limit_reached".to_string()),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| *a == "completed").count(),
        4,
        "{answers:?}"
    );
    let (_, _, sockets) = m.ws_traffic();
    assert!(sockets >= 2, "a new socket after the age limit");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_close_after_output_closes_the_client_socket_so_it_retries() {
    let env = two_accounts();
    let f = ws(WsFaults {
        close_mid_turns: vec![1],
        close_after_events: 3,
        ..Default::default()
    });
    let m = mock(Scenario::default().with_account("acc-1", f)).await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-mid").await;
    let a = c.turn("hello").await;
    assert!(
        a.text.starts_with("Mock"),
        "output reached the client: {a:?}"
    );
    assert_eq!(a.error, Some(serde_json::json!({"closed": true})), "{a:?}");
    // Codex then opens a new socket and sends the turn in full: served normally.
    let mut again = session(&g, "s-mid").await;
    let b = again.turn("hello").await;
    assert_eq!(b.error, None, "{b:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reasoning_refused_by_the_next_account_is_stripped_and_the_turn_served() {
    let env = two_accounts();
    let mut a1 = spent_after(1);
    a1.ws.reasoning = true;
    let a2 = ws(WsFaults {
        reasoning: true,
        ..Default::default()
    });
    let m = mock(
        Scenario::default()
            .with_account("acc-1", a1)
            .with_account("acc-2", a2),
    )
    .await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-enc").await;
    assert_eq!(c.turn("one").await.text, "Mock reply from acc-1.");
    let b = c.turn("two").await;
    assert_eq!(b.error, None, "{b:?}");
    assert_eq!(b.text, "Mock reply from acc-2.");
    let t: Vec<String> = turns(&m)
        .into_iter()
        .map(|t| format!("{}:{}", t.0, t.2))
        .collect();
    assert_eq!(
        t,
        [
            "acc-1:completed",
            "acc-1:error:usage_limit_reached",
            "acc-2:error:invalid_encrypted_content",
            "acc-2:completed"
        ]
    );
    assert_eq!(c.turn("three").await.text, "Mock reply from acc-2.");
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_from_rate_limit_frames_reaches_status() {
    let env = two_accounts();
    let ev = serde_json::json!({"type": "codex.rate_limits", "plan_type": "plus",
        "rate_limits": {"allowed": true, "limit_reached": false,
            "primary": {"used_percent": 42, "window_minutes": 300, "reset_at": common::now_secs() + 600}}});
    let f = AccountFaults {
        rate_limit_event: Some(ev),
        ..Default::default()
    };
    let m = mock(Scenario::default().with_account("acc-1", f)).await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-usage").await;
    let a = c.turn("hello").await;
    assert!(
        a.events.iter().any(|e| e["type"] == "codex.rate_limits"),
        "passed on: {a:?}"
    );
    let st = common::gateway::get(&g.url, "/status", &[]).await;
    assert!(st.body.contains("42"), "{}", st.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_frames_stream_through_one_by_one() {
    let env = two_accounts();
    let f = ws(WsFaults {
        frame_delay_ms: 30,
        ..Default::default()
    });
    let m = mock(
        Scenario {
            deltas: 5,
            ..Scenario::default()
        }
        .with_account("acc-1", f),
    )
    .await;
    let g = gw(&env, &m, &[]);
    let mut c = session(&g, "s-slow").await;
    let a = c.turn("hello").await;
    assert_eq!(a.error, None);
    let deltas = a
        .events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .count();
    assert_eq!(deltas, 5, "every frame passed on as its own frame: {a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upgrade_passes_the_perimeter_and_the_access_key_and_turns_count_in_metrics() {
    let env = two_accounts();
    let m = mock(Scenario::default().with_account("acc-1", spent_after(1))).await;
    let key = "a-key-long-enough-for-cao";
    let g = gw(&env, &m, &["--access-key", key]);
    let no_key = WsClient::connect(&g.url, "s-no-key").await.err();
    assert!(
        no_key.as_deref().is_some_and(|e| e.contains("401")),
        "{no_key:?}"
    );
    let web_page = WsClient::connect_with(
        &g.url,
        "s-web",
        &[("x-cao-key", key), ("origin", "http://evil.example")],
    )
    .await
    .err();
    assert!(web_page.is_some(), "a web page's socket is refused");
    let foreign_host = WsClient::connect_with(
        &g.url,
        "s-host",
        &[("x-cao-key", key), ("host", "evil.example")],
    )
    .await
    .err();
    assert!(foreign_host.is_some(), "a rebinding name is refused");
    assert!(m.ws_frames().is_empty(), "nothing refused reached upstream");

    let mut c = WsClient::connect_with(&g.url, "s-key", &[("x-cao-key", key)])
        .await
        .unwrap();
    for n in 0..2 {
        let a = c.turn(&format!("turn {n}")).await;
        assert_eq!(a.error, None, "{a:?}");
    }
    assert_eq!(
        turns(&m),
        vec![
            ("acc-1".into(), false, "completed".into()),
            ("acc-1".into(), true, "error:usage_limit_reached".into()),
            ("acc-2".into(), false, "completed".into()),
        ]
    );
    assert_frames_match(&m.ws_frames());
    let wants = [
        "cao_gateway_requests_total{account=\"a1\",status=\"200\"} 1",
        "cao_gateway_requests_total{account=\"a2\",status=\"200\"} 1",
        "cao_gateway_switches_total{from=\"a1\",to=\"a2\"} 1",
    ];
    // A turn is counted once its last frame went down, so the count may trail the client.
    let url = g.url.as_str();
    common::gateway::eventually_async(10, || async move {
        let body = common::gateway::get(url, "/metrics", &[("x-cao-key", key)])
            .await
            .body;
        wants.iter().all(|w| body.contains(w))
    })
    .await;
    let metrics = common::gateway::get(&g.url, "/metrics", &[("x-cao-key", key)]).await;
    for want in wants {
        assert!(metrics.body.contains(want), "{want} in\n{}", metrics.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_path_under_the_backend_api_prefix_is_upgraded_too() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let prefixed = format!("{}/backend-api/codex", g.url);
    let mut c = WsClient::connect(&prefixed, "s-prefixed").await.unwrap();
    let a = c.turn("hello").await;
    assert_eq!(a.error, None, "{a:?}");
    assert_eq!(a.text, "Mock reply from acc-1.");
    assert_eq!(turns(&m), vec![("acc-1".into(), false, "completed".into())]);
}
