//! The server side of a WebSocket handshake on a hyper connection (RFC 6455 4.2), shared by
//! the gateway and the mock upstream: check the request, negotiate permessage-deflate
//! ([`crate::policy::ws_deflate::answer`]), answer 101, take over the socket.

use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::net::ws::socket::Socket;
use crate::policy::ws_deflate::{self, Params, Wants};

/// A downstream socket once the 101 has gone out.
pub type ServerSocket = Socket;

/// Whether a request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455 4.2.2: SHA-1 of the key and the GUID).
pub fn accept_key(key: &[u8]) -> String {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

/// Every value of the `Sec-WebSocket-Extensions` headers of `h`.
pub fn extension_values(h: &HeaderMap) -> Vec<&str> {
    h.get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// A valid upgrade request's 101 and the permessage-deflate it agreed to.
pub struct Accepted {
    pub response: Response,
    pub deflate: Option<Params>,
}

/// The 101 answer for a valid upgrade request, or why it is not one. `deflate`: accept
/// permessage-deflate when the client offers it, asking for `Wants` on top (`None`: never).
pub fn accept(h: &HeaderMap, deflate: Option<Wants>) -> Result<Accepted, &'static str> {
    if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err("websocket version must be 13");
    }
    let Some(key) = h.get(header::SEC_WEBSOCKET_KEY) else {
        return Err("missing sec-websocket-key");
    };
    let agreed = deflate.and_then(|w| ws_deflate::answer(&extension_values(h), w));
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let hm = r.headers_mut();
    hm.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    hm.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept_key(key.as_bytes())) {
        hm.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = &agreed
        && let Ok(v) = HeaderValue::from_str(&ws_deflate::render(p))
    {
        hm.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
    }
    Ok(Accepted {
        response: r,
        deflate: agreed,
    })
}

/// Wait for hyper to hand over the connection after the 101, as a server-role socket with
/// the permessage-deflate [`accept`] agreed to.
pub async fn take_over(
    on: hyper::upgrade::OnUpgrade,
    deflate: Option<Params>,
) -> Option<ServerSocket> {
    let upgraded = on.await.ok()?;
    Socket::new(upgraded, yawc::Role::Server, deflate).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // RFC 6455 1.3's example.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn deflate_is_answered_only_when_offered_and_wanted() {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let plain = accept(&h, Some(Wants::default())).unwrap();
        assert!(plain.deflate.is_none());
        assert!(
            !plain
                .response
                .headers()
                .contains_key(header::SEC_WEBSOCKET_EXTENSIONS)
        );
        h.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static("permessage-deflate; client_max_window_bits"),
        );
        let on = accept(&h, Some(Wants::default())).unwrap();
        assert_eq!(
            on.response.headers()[header::SEC_WEBSOCKET_EXTENSIONS],
            "permessage-deflate"
        );
        assert!(on.deflate.is_some());
        let refused = accept(&h, None).unwrap();
        assert!(refused.deflate.is_none());
        assert!(
            !refused
                .response
                .headers()
                .contains_key(header::SEC_WEBSOCKET_EXTENSIONS)
        );
    }
}
