//! permessage-deflate (RFC 7692) on the gateway's WebSocket transport, real gateway binary
//! against the mock upstream: each hop negotiates on its own (Codex to gateway, gateway to
//! backend), the client's own offer never goes upstream, and a side that does not offer or
//! refuses the extension gets an uncompressed socket that works as before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, MockUpstream, RecordedSocket, Scenario, WsFaults};
use cao::policy::ws_deflate;
use common::gateway::{GatewayProc, assert_no_mismatch, gw, mock, spent_after, two_accounts};
use common::ws::WsClient;

/// A long, compressible user message (the size of a real first turn's context).
fn long_message() -> String {
    "Please look at the failing test in src/gateway/ws.rs and fix it; run cargo test after. "
        .repeat(400)
}

/// What the gateway itself offers upstream (never the client's offer).
fn gateway_offer() -> String {
    ws_deflate::render(&ws_deflate::offer(cao::net::ws::socket::UPSTREAM))
}

fn only_socket(m: &MockUpstream) -> RecordedSocket {
    let socks = m.ws_sockets();
    assert_eq!(socks.len(), 1, "{socks:?}");
    socks[0].clone()
}

async fn metrics(g: &GatewayProc) -> String {
    common::gateway::get(&g.url, "/metrics", &[]).await.body
}

#[tokio::test(flavor = "multi_thread")]
async fn deflate_is_negotiated_on_both_legs_and_the_upstream_gets_compressed_frames() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let mut c = WsClient::connect(&g.url, "s-deflate").await.unwrap();
    // The gateway's 101 to the client: deflate, no context kept either way on this hop.
    assert_eq!(
        c.headers["sec-websocket-extensions"],
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    assert!(c.ws.deflate().is_some());
    assert!(c.prewarm().await.error.is_none());
    let long = long_message();
    let a = c.turn(&long).await;
    assert_eq!(a.error, None, "{a:?}");
    assert_eq!(a.text, "Mock reply from acc-1.");
    for n in 0..3 {
        let a = c.turn(&format!("turn {n}")).await;
        assert_eq!(a.error, None, "{a:?}");
        assert_eq!(a.text, "Mock reply from acc-1.");
    }
    // Upstream: the gateway's own offer, accepted by the mock.
    let s = only_socket(&m);
    assert_eq!(
        s.offered.as_deref(),
        Some(gateway_offer().as_str()),
        "{s:?}"
    );
    assert_eq!(s.deflate.as_deref(), Some("permessage-deflate"), "{s:?}");
    assert!(
        s.wire_bytes_in < s.text_bytes_in,
        "compressed on the wire: {s:?}"
    );
    let frames = m.ws_frames();
    assert_eq!(frames.len(), 5, "{frames:?}");
    // The long turn arrived whole (the gateway inflated the client's frame and deflated it
    // again for its own hop), and took a fraction of its size on the wire.
    let big = &frames[1];
    assert!(big.bytes > long.len(), "{big:?}");
    assert!(big.wire_bytes * 4 < big.bytes as u64, "{big:?}");
    assert!(
        frames
            .iter()
            .skip(2)
            .all(|f| f.previous_response_id.is_some()),
        "deltas stay deltas: {frames:?}"
    );
    assert_no_mismatch(&m);
    let text = metrics(&g).await;
    for side in ["codex", "upstream"] {
        assert!(
            text.contains(&format!(
                "cao_gateway_websocket_sockets_total{{side=\"{side}\",deflate=\"yes\"}} 1"
            )),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_offers_nothing_gets_an_uncompressed_socket_and_upstream_still_compresses() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let mut c = WsClient::connect_opts(&g.url, "s-plain", &[], false)
        .await
        .unwrap();
    assert!(!c.headers.contains_key("sec-websocket-extensions"));
    assert!(c.ws.deflate().is_none());
    c.prewarm().await;
    for msg in [long_message(), "and now the docs".to_string()] {
        let a = c.turn(&msg).await;
        assert_eq!(a.error, None, "{a:?}");
        assert_eq!(a.text, "Mock reply from acc-1.");
    }
    // The hops are independent: upstream negotiated for itself.
    let s = only_socket(&m);
    assert_eq!(s.deflate.as_deref(), Some("permessage-deflate"), "{s:?}");
    assert!(s.wire_bytes_in < s.text_bytes_in, "{s:?}");
    let text = metrics(&g).await;
    assert!(
        text.contains("cao_gateway_websocket_sockets_total{side=\"codex\",deflate=\"no\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_refuses_deflate_is_used_uncompressed_and_a_switch_still_works() {
    let env = two_accounts();
    let refuse = WsFaults {
        refuse_deflate: true,
        ..Default::default()
    };
    let spent = AccountFaults {
        ws: refuse.clone(),
        ..spent_after(2)
    };
    let other = AccountFaults {
        ws: refuse,
        ..Default::default()
    };
    let m = mock(
        Scenario::default()
            .with_account("acc-1", spent)
            .with_account("acc-2", other),
    )
    .await;
    let g = gw(&env, &m, &[]);
    let mut c = WsClient::connect(&g.url, "s-refused").await.unwrap();
    // Codex's hop still compresses: the gateway answers for itself.
    assert!(c.ws.deflate().is_some());
    c.prewarm().await;
    let mut texts = Vec::new();
    for n in 0..4 {
        let msg = if n == 0 {
            long_message()
        } else {
            format!("turn {n}")
        };
        let a = c.turn(&msg).await;
        assert_eq!(a.error, None, "turn {n}: {a:?}");
        texts.push(a.text);
    }
    assert_eq!(
        texts,
        [
            "Mock reply from acc-1.",
            "Mock reply from acc-1.",
            "Mock reply from acc-2.",
            "Mock reply from acc-2."
        ]
    );
    let socks = m.ws_sockets();
    assert!(socks.len() >= 2, "{socks:?}");
    for s in &socks {
        // Offered, declined, and framed plainly (the wire carries the text plus headers).
        assert_eq!(
            s.offered.as_deref(),
            Some(gateway_offer().as_str()),
            "{s:?}"
        );
        assert_eq!(s.deflate, None, "{s:?}");
        assert!(s.wire_bytes_in > s.text_bytes_in, "{s:?}");
    }
    assert_no_mismatch(&m);
    let text = metrics(&g).await;
    assert!(
        text.contains("cao_gateway_websocket_sockets_total{side=\"upstream\",deflate=\"no\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_the_context_budget_upstream_sockets_compress_each_message_alone() {
    use cao::net::ws::socket::{CONTEXT_SOCKETS, UPSTREAM_POOLED};
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let mut clients = Vec::new();
    for n in 0..CONTEXT_SOCKETS + 3 {
        let mut c = WsClient::connect(&g.url, &format!("s-many-{n}"))
            .await
            .unwrap();
        assert_eq!(c.turn(&long_message()).await.error, None);
        clients.push(c);
    }
    let pooled = ws_deflate::render(&ws_deflate::offer(UPSTREAM_POOLED));
    let offers: Vec<String> = m
        .ws_sockets()
        .iter()
        .map(|s| s.offered.clone().unwrap_or_default())
        .collect();
    assert_eq!(offers.len(), CONTEXT_SOCKETS + 3, "{offers:?}");
    // Held open at once: the first ones keep their context, the rest do not.
    assert!(
        offers[..CONTEXT_SOCKETS]
            .iter()
            .all(|o| *o == gateway_offer()),
        "{offers:?}"
    );
    assert!(
        offers[CONTEXT_SOCKETS..].iter().all(|o| *o == pooled),
        "{offers:?}"
    );
    for s in m.ws_sockets() {
        assert!(s.wire_bytes_in < s.text_bytes_in, "{s:?}");
    }
    // A closed socket gives its place back (once the gateway has seen it go).
    drop(clients.remove(0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut again = Vec::new();
    loop {
        let c = WsClient::connect(&g.url, &format!("s-again-{}", again.len()))
            .await
            .unwrap();
        again.push(c);
        let last = m.ws_sockets().last().cloned().unwrap();
        if last.offered.as_deref() == Some(gateway_offer().as_str()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no slot came back: {last:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
