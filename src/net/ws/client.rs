//! The client side of a WebSocket handshake (RFC 6455 4.1) on any byte stream (plain TCP or
//! TLS): the gateway's upstream sockets, and the tests' and the bench's Codex-like clients.
//! permessage-deflate is offered when asked for and checked with
//! [`crate::policy::ws_deflate::accept_answer`].

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::net::ws::server::{accept_key, extension_values};
use crate::net::ws::socket::Socket;
use crate::policy::ws_deflate::{self, Wants};

/// Most of a refusal's body that is kept.
const REFUSAL_BODY_BYTES: usize = 64 * 1024;

/// A socket the server accepted, and its 101's headers.
#[derive(Debug)]
pub struct Opened {
    pub socket: Socket,
    pub headers: HeaderMap,
}

/// Why the handshake did not end in an open socket.
#[derive(Debug)]
pub enum HandshakeError {
    /// The server answered with an HTTP status instead of 101 (body bounded).
    Refused {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// A broken connection or an answer that is not a valid 101.
    Failed(String),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { status, body, .. } => {
                write!(
                    f,
                    "upgrade refused: {status} {}",
                    String::from_utf8_lossy(body)
                )
            }
            Self::Failed(e) => f.write_str(e),
        }
    }
}

fn failed(e: impl std::fmt::Display) -> HandshakeError {
    HandshakeError::Failed(e.to_string())
}

/// Open a WebSocket to `uri` (`ws(s)://host/path`) over `io` with `headers` (the key,
/// version and upgrade headers are set here, `host` unless given), offering
/// permessage-deflate when `deflate` is set.
pub async fn open<I>(
    io: I,
    uri: &Uri,
    headers: HeaderMap,
    deflate: Option<Wants>,
) -> Result<Opened, HandshakeError>
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = http::Request::new(Empty::<Bytes>::new());
    *req.uri_mut() = target.parse().map_err(failed)?;
    *req.headers_mut() = headers;
    let key = base64::engine::general_purpose::STANDARD.encode(fastrand::u128(..).to_le_bytes());
    let offered = deflate.map(ws_deflate::offer);
    let h = req.headers_mut();
    if !h.contains_key(header::HOST)
        && let Some(a) = uri.authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        h.insert(header::HOST, v);
    }
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    h.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&key).map_err(failed)?,
    );
    h.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    if let Some(o) = &offered {
        h.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(&ws_deflate::render(o)).map_err(failed)?,
        );
    }
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(failed)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut resp = sender.send_request(req).await.map_err(failed)?;
    let status = resp.status();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        let headers = resp.headers().clone();
        let body = Limited::new(resp.into_body(), REFUSAL_BODY_BYTES)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        return Err(HandshakeError::Refused {
            status,
            headers,
            body,
        });
    }
    let rh = resp.headers();
    let is = |n: header::HeaderName, v: &str| {
        rh.get(n)
            .and_then(|x| x.to_str().ok())
            .is_some_and(|x| x.eq_ignore_ascii_case(v))
    };
    if !is(header::UPGRADE, "websocket") || !is(header::CONNECTION, "upgrade") {
        return Err(failed(
            "the 101 lacks upgrade: websocket / connection: upgrade",
        ));
    }
    if rh.get(header::SEC_WEBSOCKET_ACCEPT).map(|v| v.as_bytes())
        != Some(accept_key(key.as_bytes()).as_bytes())
    {
        return Err(failed(
            "the 101's sec-websocket-accept does not match the key",
        ));
    }
    let values = extension_values(rh);
    let agreed = match &offered {
        Some(o) => ws_deflate::accept_answer(&values, o).map_err(failed)?,
        None if values.is_empty() => None,
        None => {
            return Err(failed(format!(
                "extension answered but none offered: {}",
                values.join(", ")
            )));
        }
    };
    let headers = rh.clone();
    let upgraded = hyper::upgrade::on(&mut resp).await.map_err(failed)?;
    let socket = Socket::new(upgraded, yawc::Role::Client, agreed).map_err(failed)?;
    Ok(Opened { socket, headers })
}
