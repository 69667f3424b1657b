//! The gateway's upstream side of a Responses WebSocket: open `ws://` / `wss://` (from the
//! HTTP base URL) as one account, with that account's bearer and matching
//! `chatgpt-account-id` ([`crate::gateway::forward::attempt::authorize`]) and the client's other headers.
//!
//! TLS is the HTTP client's ([`crate::net::connector`]: the webpki roots, plus
//! `--upstream-ca-file`), speaking HTTP/1.1. permessage-deflate is offered on this hop
//! ([`crate::net::ws::socket::upstream_wants`]) and used when the backend accepts; the client's own
//! `sec-websocket-extensions` is never passed on (each hop negotiates for itself).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode, Uri, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::gateway::forward::attempt::authorize;
use crate::gateway::forward::held::Held;
use crate::gateway::pool::account::Creds;
use crate::gateway::pool::state::{Account, GatewayState};
use crate::net::ws::client::{self, HandshakeError};
use crate::net::ws::socket::{self, Socket};

/// Any byte stream a socket runs on (plain TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// An upstream socket.
pub type UpSocket = Socket;

/// Headers of the client's handshake that belong to its own hop and are never forwarded.
const HANDSHAKE_HEADERS: [&str; 5] = [
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-accept",
    "sec-websocket-protocol",
];

/// Headers of the upstream's 101 that Codex reads (codex-rs `connect_websocket`) and the
/// gateway hands on in its own 101.
pub const PASSED_101_HEADERS: [&str; 5] = [
    "x-codex-turn-state",
    "x-models-etag",
    "x-reasoning-included",
    "openai-model",
    "x-codex-websocket-max-message-bytes",
];

/// One open upstream socket and what it knows.
pub struct Upstream {
    pub ws: UpSocket,
    pub account: Arc<Account>,
    /// The credentials it was opened with (refused ones are refreshed against these).
    pub creds: Option<Arc<Creds>>,
    /// The last response this socket produced: a delta naming it can go here as it is.
    pub last_response_id: Option<String>,
    /// The upstream's 101 headers.
    pub headers: HeaderMap,
}

/// Why no socket opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The account could not be used at all (no credentials; recorded).
    Unusable,
    /// Upstream answered the upgrade with an HTTP status (body bounded).
    Refused(Held),
    /// No connection, TLS failure, broken handshake or timeout.
    Failed(String),
}

/// `http(s)://...` to `ws(s)://...`.
pub fn ws_url(http_url: &str) -> String {
    if let Some(rest) = http_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_url.to_string()
    }
}

/// The client's handshake headers as they go upstream (before credentials are put on).
pub fn forwardable(mut h: HeaderMap) -> HeaderMap {
    for n in HANDSHAKE_HEADERS {
        h.remove(n);
    }
    h
}

/// Open the byte stream to `uri`'s host (TLS with `tls_config` for `wss`).
async fn dial(uri: &Uri, tls_config: Arc<rustls::ClientConfig>) -> Result<Box<dyn Io>, String> {
    let host = uri.host().ok_or("upstream URL has no host")?.to_string();
    let tls = uri.scheme_str() == Some("wss");
    let port = uri
        .port_u16()
        .or_else(|| {
            uri.scheme_str()
                .and_then(crate::policy::perimeter::default_port)
        })
        .ok_or("upstream URL has no ws:// or wss:// scheme")?;
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("could not connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|e| format!("bad TLS server name {host}: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(tls_config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
    Ok(Box::new(stream))
}

/// Open an upstream socket on `acct` to `url` (`ws(s)://...`) with `base` headers
/// ([`forwardable`]) plus the account's credentials, within `timeout`.
pub async fn connect(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    url: &str,
    base: &HeaderMap,
    timeout: Duration,
) -> Result<Upstream, ConnectError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ConnectError::Failed(format!("bad upstream URL {url}")))?;
    let mut headers = base.clone();
    let creds = authorize(state, acct, &mut headers)
        .await
        .map_err(|_| ConnectError::Unusable)?;
    let open = async {
        let io = dial(&uri, state.ws_tls.clone())
            .await
            .map_err(ConnectError::Failed)?;
        let (wants, slot) = socket::upstream_wants();
        let mut opened = client::open(io, &uri, headers, Some(wants))
            .await
            .map_err(refused)?;
        opened.socket.keep(slot);
        Ok(opened)
    };
    let opened = tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| ConnectError::Failed("upstream handshake timed out".into()))??;
    let deflate = opened.socket.deflate().is_some();
    state.metrics.websocket("upstream", deflate);
    Ok(Upstream {
        ws: opened.socket,
        account: acct.clone(),
        creds,
        last_response_id: None,
        headers: opened.headers,
    })
}

fn refused(e: HandshakeError) -> ConnectError {
    match e {
        HandshakeError::Refused {
            status,
            mut headers,
            body,
        } => {
            headers.remove(header::CONTENT_LENGTH);
            headers.remove(header::TRANSFER_ENCODING);
            ConnectError::Refused(Held {
                status: if status.is_success() {
                    StatusCode::BAD_GATEWAY
                } else {
                    status
                },
                headers,
                body,
            })
        }
        HandshakeError::Failed(e) => ConnectError::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::connector;
    use crate::net::ws::server;
    use crate::net::ws::socket::Msg;
    use http::HeaderValue;

    /// `wss://` goes over TLS to the upstream (here: a WebSocket server on 127.0.0.1 serving
    /// a certificate of the gateway's own private CA, which the client is made to trust), with
    /// the server name checked; a certificate the roots do not vouch for is refused.
    #[tokio::test]
    async fn wss_upstreams_are_dialled_over_verified_tls() {
        let dir = tempfile::tempdir().unwrap();
        let (material, _) =
            crate::gateway::tls::certs::ensure(dir.path(), crate::store::now_ms()).unwrap();
        let live = Arc::new(crate::gateway::tls::serving::LiveCert::new(&material).unwrap());
        let acceptor = tokio_rustls::TlsAcceptor::from(live.server_config().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let serve =
                        hyper::service::service_fn(|mut req: http::Request<_>| async move {
                            let wants = Some(crate::policy::ws_deflate::Wants::default());
                            let a = server::accept(req.headers(), wants).unwrap();
                            let on = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                let mut ws = server::take_over(on, a.deflate).await.unwrap();
                                while let Some(Msg::Text(t)) = ws.recv().await {
                                    ws.send_text(format!("echo {}", t.as_str())).await;
                                }
                            });
                            Ok::<_, std::convert::Infallible>(a.response)
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), serve)
                        .with_upgrades()
                        .await;
                });
            }
        });
        let uri: Uri = format!("wss://127.0.0.1:{port}/responses").parse().unwrap();
        let trusting = connector::ws_config(Some(&material.info.ca_path)).unwrap();
        let io = dial(&uri, trusting).await.unwrap();
        let opened = client::open(io, &uri, HeaderMap::new(), Some(socket::UPSTREAM))
            .await
            .unwrap();
        let mut ws = opened.socket;
        // permessage-deflate over TLS too.
        assert!(ws.deflate().is_some());
        assert!(ws.send_text("{\"type\":\"response.create\"}").await);
        let Some(Msg::Text(got)) = ws.recv().await else {
            panic!("no echo")
        };
        assert_eq!(got.as_str(), "echo {\"type\":\"response.create\"}");

        // The public roots alone do not vouch for that certificate.
        let refused = dial(&uri, connector::ws_config(None).unwrap())
            .await
            .err()
            .unwrap_or_default();
        assert!(refused.contains("TLS handshake"), "{refused}");
    }

    #[test]
    fn ws_urls_follow_the_http_scheme() {
        assert_eq!(
            ws_url("https://chatgpt.com/backend-api/codex/responses"),
            "wss://chatgpt.com/backend-api/codex/responses"
        );
        assert_eq!(
            ws_url("http://127.0.0.1:9/responses"),
            "ws://127.0.0.1:9/responses"
        );
    }

    #[test]
    fn the_clients_own_handshake_headers_stay_behind() {
        let mut h = HeaderMap::new();
        for n in HANDSHAKE_HEADERS {
            h.insert(n, HeaderValue::from_static("x"));
        }
        h.insert(
            "openai-beta",
            HeaderValue::from_static("responses_websockets=2026-02-06"),
        );
        let f = forwardable(h);
        assert_eq!(f.len(), 1);
        assert!(f.contains_key("openai-beta"));
    }
}
