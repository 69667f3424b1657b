//! Keepalive frames while the gateway switches accounts on a Responses WebSocket: Codex's idle
//! timer (codex-rs `run_websocket_response_stream`) counts text frames, not pings, so a switch
//! that takes longer than `--ws-keepalive-ms` must show Codex `{"type":"codex.keepalive"}`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, Scenario, WsFaults};
use common::gateway::{gw, mock, spent_after, two_accounts};
use common::ws::WsClient;

/// acc-1 spent after one turn; acc-2's handshake takes `handshake_ms` and each of its frames
/// `frame_ms`.
fn slow_switch(handshake_ms: u64, frame_ms: u64) -> Scenario {
    let a1 = spent_after(1);
    let a2 = AccountFaults {
        ws: WsFaults {
            handshake_delay_ms: handshake_ms,
            frame_delay_ms: frame_ms,
            ..Default::default()
        },
        ..Default::default()
    };
    Scenario::default()
        .with_account("acc-1", a1)
        .with_account("acc-2", a2)
}

fn keepalives(raw: &[String]) -> usize {
    raw.iter()
        .filter(|t| t.as_str() == cao::policy::ws::KEEPALIVE)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_switch_sends_keepalive_text_frames_and_the_turn_completes() {
    let env = two_accounts();
    // The new account's handshake alone is 8 keepalive intervals; its first frames are slow too
    // (held until the first output, so Codex would hear nothing meanwhile either).
    let m = mock(slow_switch(2_000, 600)).await;
    let g = gw(&env, &m, &["--ws-keepalive-ms", "250"]);
    let mut c = WsClient::connect(&g.url, "s-keepalive").await.unwrap();
    let first = c.turn("one").await;
    assert_eq!(first.text, "Mock reply from acc-1.");
    let before = c.raw.len();
    let second = c.turn("two").await;
    assert_eq!(second.error, None, "{second:?}");
    assert_eq!(second.text, "Mock reply from acc-2.");
    let turn_raw = &c.raw[before..];
    // Exactly the gateway's frame, byte for byte.
    assert_eq!(cao::policy::ws::KEEPALIVE, r#"{"type":"codex.keepalive"}"#);
    let n = keepalives(turn_raw);
    assert!(n >= 2, "keepalives while switching: {turn_raw:?}");
    // All of them before the response's first frame (nothing else was there to show).
    let first_event = turn_raw
        .iter()
        .position(|t| t.as_str() != cao::policy::ws::KEEPALIVE)
        .unwrap();
    assert_eq!(first_event, n, "{turn_raw:?}");
    assert!(
        turn_raw[first_event].contains("response.created"),
        "{turn_raw:?}"
    );
    // The switch itself was invisible: no error frame, and the turn moved to acc-2 in full.
    assert!(c.seen.iter().all(|e| e["type"] != "error"), "{:?}", c.seen);
    let answers: Vec<String> = m
        .ws_frames()
        .iter()
        .map(|f| format!("{}:{}", f.account.as_deref().unwrap_or("-"), f.answer))
        .collect();
    assert_eq!(
        answers,
        [
            "acc-1:completed",
            "acc-1:error:usage_limit_reached",
            "acc-2:completed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keepalive_interval_is_an_option_saved_with_the_others() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &["--ws-keepalive-ms", "1234", "--save"]);
    drop(g);
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.data_dir().join("gateway.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["wsKeepaliveMs"], 1234, "{saved}");
    let bad = common::gateway::GatewayProc::try_start(&env, &["--ws-keepalive-ms", "0"]);
    assert!(bad.is_err(), "0 is refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn keepalives_do_not_keep_a_silent_upstream_waiting_past_the_idle_timeout() {
    let env = two_accounts();
    // acc-1 accepts the request and then says nothing for a minute.
    let silent = AccountFaults {
        ws: WsFaults {
            frame_delay_ms: 60_000,
            ..Default::default()
        },
        ..Default::default()
    };
    let m = mock(Scenario::default().with_account("acc-1", silent)).await;
    let g = gw(
        &env,
        &m,
        &["--ws-keepalive-ms", "200", "--idle-timeout-ms", "1000"],
    );
    let mut c = WsClient::connect(&g.url, "s-silent").await.unwrap();
    let a = c.turn("hello").await;
    // The gateway gives up on the silent socket (and its reconnects) within its idle timeout
    // each time, and says so, instead of keeping Codex on keepalives for the whole minute.
    let err = a.error.expect("an error frame");
    assert_eq!(err["error"]["code"], "upstream_closed", "{err}");
    assert!(keepalives(&c.raw) >= 1, "{:?}", c.raw);
}
