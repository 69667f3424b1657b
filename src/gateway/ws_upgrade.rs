//! The server side of a WebSocket handshake on a hyper connection (RFC 6455 4.2), shared by
//! the gateway and the mock upstream: check the request, answer 101, take over the socket.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// A downstream socket once the 101 has gone out.
pub(crate) type ServerSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Largest frame or message accepted from either side (Codex's first frame of a long session
/// can be several MB; the backend advertises its own limit in `x-codex-websocket-max-message-bytes`).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Whether a request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The 101 answer for a valid upgrade request, or why it is not one.
pub fn accept(h: &HeaderMap) -> Result<Response, &'static str> {
    if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err("websocket version must be 13");
    }
    let Some(key) = h.get(header::SEC_WEBSOCKET_KEY) else {
        return Err("missing sec-websocket-key");
    };
    let accept = derive_accept_key(key.as_bytes());
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let hm = r.headers_mut();
    hm.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    hm.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        hm.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(r)
}

/// Read buffer of each socket. tungstenite's default (128 KiB, plus as much again for writes)
/// costs a quarter of a megabyte per Codex session (two sockets); a big frame still grows the
/// buffer to its own size while it is read.
pub(crate) const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Frame limits and buffers for both sides: small buffers (many sockets held at once), and
/// every frame written at once (the relay flushes each frame anyway).
pub(crate) fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
}

/// Wait for hyper to hand over the connection after the 101, as a server-role socket.
pub async fn take_over(on: hyper::upgrade::OnUpgrade) -> Option<ServerSocket> {
    let upgraded = on.await.ok()?;
    Some(
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config()))
            .await,
    )
}
