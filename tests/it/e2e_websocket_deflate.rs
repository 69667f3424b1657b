//! The real `codex exec` (0.171) with permessage-deflate on both hops: Codex offers it, the
//! gateway's 101 accepts it, the gateway's own upstream socket is compressed too, and a
//! usage-limit switch stays invisible to Codex. A byte relay between Codex and the gateway
//! records the handshakes as they cross the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common;

use cao::mock::{AccountFaults, Scenario};
use common::codex::{Codex, assert_answered};
use common::gateway::{GatewayProc, mock, two_accounts};

/// What crossed a relayed connection, one buffer per direction (the first 256 KB).
type Capture = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cap: Capture,
    at: usize,
    upward: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let mut c = cap.lock().unwrap();
        let side = if upward { &mut c[at].0 } else { &mut c[at].1 };
        if side.len() < 256 * 1024 {
            side.extend_from_slice(&buf[..n]);
        }
    }
    let _ = to.shutdown().await;
}

/// Listen on a free port and pass every connection on to `target` (host:port), recording.
async fn relay(target: String) -> (u16, Capture) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let cap: Capture = Arc::default();
    let c = cap.clone();
    tokio::spawn(async move {
        while let Ok((down, _)) = l.accept().await {
            let Ok(up) = TcpStream::connect(&target).await else {
                continue;
            };
            let at = {
                let mut v = c.lock().unwrap();
                v.push((Vec::new(), Vec::new()));
                v.len() - 1
            };
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            tokio::spawn(pump(dr, uw, c.clone(), at, true));
            tokio::spawn(pump(ur, dw, c.clone(), at, false));
        }
    });
    (port, cap)
}

/// The HTTP head that starts `bytes` (lower-cased), if it is one.
fn head(bytes: &[u8]) -> String {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
    String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_negotiates_deflate_with_the_gateway_and_a_switch_stays_invisible() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    let env = two_accounts();
    let m = mock(Scenario::default().with_account("acc-1", AccountFaults::spent(3600))).await;
    let (base, token) = (m.base_url(), m.token_url());
    // The relay's port is known before the gateway starts: it must accept that Host.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gw_port = l.local_addr().unwrap().port();
    drop(l);
    let (relay_port, cap) = relay(format!("127.0.0.1:{gw_port}")).await;
    let allowed = format!("127.0.0.1:{relay_port}");
    let port = gw_port.to_string();
    let g = GatewayProc::start(
        &env,
        &[
            "--base-url",
            &base,
            "--token-url",
            &token,
            "--port",
            &port,
            "--allowed-host",
            &allowed,
        ],
    );
    let codex = Codex::new(&env, bin, &token);
    let out = codex
        .exec_routed(&format!("http://127.0.0.1:{relay_port}"), "hello")
        .await;
    assert_answered(&out, "Mock reply from acc-2.", &g);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("usage limit"), "{stderr}");
    assert!(!stderr.contains("Falling back"), "{stderr}");

    // Codex's upgrade offered deflate, and the gateway's 101 accepted it.
    let upgrades: Vec<(String, String)> = cap
        .lock()
        .unwrap()
        .iter()
        .map(|(up, down)| (head(up), head(down)))
        .filter(|(up, _)| up.contains("upgrade: websocket"))
        .collect();
    assert!(!upgrades.is_empty(), "no upgrade relayed");
    for (req, resp) in &upgrades {
        assert!(
            req.contains("sec-websocket-extensions: permessage-deflate"),
            "{req}"
        );
        assert!(resp.starts_with("http/1.1 101"), "{resp}");
        assert!(
            resp.contains(
                "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            ),
            "{resp}"
        );
    }

    // The prewarm met the limit and moved; the turn went on natively on account 2, over
    // compressed upstream sockets the mock inflated.
    assert_eq!(
        m.ws_summaries(),
        [
            "acc-1:prewarm:error:usage_limit_reached",
            "acc-2:prewarm:completed",
            "acc-2:delta:completed"
        ]
    );
    let socks: Vec<_> = m
        .ws_sockets()
        .into_iter()
        .filter(|s| s.text_bytes_in > 0)
        .collect();
    assert!(socks.len() >= 2, "{socks:?}");
    for s in &socks {
        assert_eq!(s.deflate.as_deref(), Some("permessage-deflate"), "{s:?}");
        assert!(s.wire_bytes_in < s.text_bytes_in, "{s:?}");
    }
    assert!(
        !m.requests().iter().any(|r| r.is_model_call()),
        "no HTTP fallback"
    );
}
