//! The one upstream HTTP client: a pool of hyper connections, HTTP/1.1 or, where TLS's ALPN
//! picks it, HTTP/2, over the rustls connector (DNS, TCP with no Nagle, TLS).
//!
//! Its own pool rather than hyper-util's legacy `Client`, for the forward's hot path: that one
//! hashes the scheme and authority twice per request under a mutex, boxes and selects futures,
//! and spawns a task per HTTP/1 request only to put the connection back when it is ready
//! (about 8k instructions and a task hand-off per request, `BENCHMARKS.md`). Here an HTTP/1
//! connection goes back to its host's idle list when its answer's body ends, found again by
//! comparing the scheme and authority with the few hosts the gateway talks to.
//!
//! What it keeps from the legacy client, because callers rely on it:
//! - [`Error::is_connect`] is true only when nothing reached the server (no connection, or a
//!   request hyper handed back unsent): a token refresh is sent again only then
//!   (the token broker's send), never when the spent refresh token may have arrived.
//! - A request whose idle connection turned out closed before it was written is sent once more
//!   on another connection (hyper returns it unsent, `try_send_request`).
//! - Idle connections expire after [`IDLE_TIMEOUT`], at most [`MAX_IDLE_PER_HOST`] per host.
//! - HTTP/1 requests go out in origin form with a `Host` (the URI's authority, its port unless
//!   the scheme's default); HTTP/2 ones with the absolute URI as `:authority`.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

/// How long an idle connection is kept for the next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle HTTP/1 connections kept per host (beyond these, a finished one is closed).
pub const MAX_IDLE_PER_HOST: usize = 1024;
/// Reused connections tried for one request before a new one is made.
const REUSE_TRIES: usize = 3;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type H1 = http1::SendRequest<Full<Bytes>>;
type H2 = http2::SendRequest<Full<Bytes>>;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection: DNS, TCP or TLS failed. Nothing was sent.
    #[error("could not connect to {host}: {source}")]
    Connect {
        host: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The connection closed before the request was written (hyper gave it back). Nothing
    /// was sent.
    #[error("the connection to {host} closed before the request was sent: {source}")]
    NotSent { host: String, source: hyper::Error },
    /// The exchange failed after the request may have been sent.
    #[error("the exchange with {host} failed: {source}")]
    Exchange { host: String, source: hyper::Error },
    /// The URI has no `http` or `https` scheme and authority.
    #[error("not an absolute http(s) URL: {0}")]
    Url(String),
}

impl Error {
    /// True when the request certainly did not reach the server (safe to send again).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::NotSent { .. })
    }
}

/// The pooled upstream client; cheap to clone (one shared pool).
#[derive(Clone)]
pub struct HttpClient {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    idle_timeout: Duration,
    hosts: Mutex<Vec<Host>>,
}

/// One scheme and authority's connections.
struct Host {
    https: bool,
    authority: Authority,
    /// Its HTTP/1 `Host` header ([`host_header`]), made once.
    host_header: Option<HeaderValue>,
    /// Idle HTTP/1 connections, oldest first (taken from the end, the warmest).
    idle: Vec<Idle>,
    /// The HTTP/2 connection all requests share, once there is one.
    h2: Option<H2>,
}

struct Idle {
    tx: H1,
    since: Instant,
}

impl Host {
    fn is(&self, https: bool, authority: &Authority) -> bool {
        self.https == https && self.authority == *authority
    }

    /// Drop the idle connections older than `timeout` (they are at the front).
    fn expire(&mut self, now: Instant, timeout: Duration) {
        let old = self
            .idle
            .partition_point(|i| now.duration_since(i.since) >= timeout);
        self.idle.drain(..old);
    }
}

/// A connection taken for one request (an HTTP/1 one with its host's `Host` header).
enum Taken {
    H1(H1, Option<HeaderValue>),
    H2(H2),
}

/// The body of an upstream answer: hyper's, and on an HTTP/1 connection the way back to the
/// pool once it has ended.
pub struct Body {
    inner: Incoming,
    back: Option<GiveBack>,
}

struct GiveBack {
    shared: Weak<Shared>,
    host: usize,
    tx: H1,
}

impl HttpClient {
    /// A client connecting through `connector`.
    pub fn new(connector: Connector) -> Self {
        Self::with_idle_timeout(connector, IDLE_TIMEOUT)
    }

    /// [`HttpClient::new`] with another idle timeout (tests).
    pub fn with_idle_timeout(connector: Connector, idle_timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                connector,
                idle_timeout,
                hosts: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Send `req` (an absolute `http://` or `https://` URI) and wait for the answer's head.
    pub async fn request(&self, mut req: Request<Full<Bytes>>) -> Result<Response<Body>, Error> {
        let (https, authority) = match (req.uri().scheme(), req.uri().authority()) {
            (Some(s), Some(a)) if *s == Scheme::HTTPS => (true, a.clone()),
            (Some(s), Some(a)) if *s == Scheme::HTTP => (false, a.clone()),
            _ => return Err(Error::Url(req.uri().to_string())),
        };
        let host = || authority.as_str().to_owned();
        // Reused connections that hand the request back unsent (closed meanwhile) are passed
        // over a few times; then a new connection, whose failure is final.
        for _ in 0..REUSE_TRIES {
            let Some((slot, taken)) = self.checkout(https, &authority).await else {
                break;
            };
            let failed = match taken {
                Taken::H1(tx, host) => match self.send_h1(slot, tx, host, req).await {
                    Ok(resp) => return Ok(resp),
                    Err(e) => e,
                },
                Taken::H2(tx) => match send_h2(tx, req).await {
                    Ok(resp) => return Ok(resp),
                    Err(e) => {
                        self.forget_h2(slot);
                        e
                    }
                },
            };
            match failed.unsent {
                Some(back) => req = back,
                None => {
                    return Err(Error::Exchange {
                        host: host(),
                        source: failed.error,
                    });
                }
            }
        }
        // Boxed: the connector's future (DNS, TCP, TLS) is several KB, and held inline it
        // would be copied with every request's future, though a new connection is rare.
        let (slot, taken) = Box::pin(self.connect(https, &authority, req.uri())).await?;
        let sent = match taken {
            Taken::H1(tx, host) => self.send_h1(slot, tx, host, req).await,
            Taken::H2(tx) => send_h2(tx, req).await,
        };
        sent.map_err(|f| match f.unsent {
            Some(_) => Error::NotSent {
                host: host(),
                source: f.error,
            },
            None => Error::Exchange {
                host: host(),
                source: f.error,
            },
        })
    }

    /// An idle connection to the host that is still open and ready, if any.
    async fn checkout(&self, https: bool, authority: &Authority) -> Option<(usize, Taken)> {
        loop {
            let (slot, taken) = {
                let mut hosts = self.shared.hosts.lock().ok()?;
                let slot = hosts.iter().position(|h| h.is(https, authority))?;
                let host = &mut hosts[slot];
                if let Some(h2) = &host.h2 {
                    if !h2.is_closed() {
                        return Some((slot, Taken::H2(h2.clone())));
                    }
                    host.h2 = None;
                }
                host.expire(Instant::now(), self.shared.idle_timeout);
                (slot, (host.idle.pop()?.tx, host.host_header.clone()))
            };
            let (mut tx, host) = taken;
            if tx.is_closed() {
                continue;
            }
            // Given back at its body's end; hyper may be a step from marking it idle.
            if tx.is_ready() || tx.ready().await.is_ok() {
                return Some((slot, Taken::H1(tx, host)));
            }
        }
    }

    /// A new connection to the host, its task running; an HTTP/2 one is shared from now on.
    async fn connect(
        &self,
        https: bool,
        authority: &Authority,
        uri: &Uri,
    ) -> Result<(usize, Taken), Error> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            host: authority.as_str().to_owned(),
            source,
        };
        let mut connector = self.shared.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(failed)?;
        let io = connector.call(uri.clone()).await.map_err(failed)?;
        let taken = if io.connected().is_negotiated_h2() {
            let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| failed(Box::new(e)))?;
            drive(conn, "HTTP/2 ");
            Taken::H2(tx)
        } else {
            let (tx, conn) = http1::handshake(io)
                .await
                .map_err(|e| failed(Box::new(e)))?;
            drive(conn, "");
            Taken::H1(tx, host_header(uri))
        };
        let slot = self.register(https, authority, uri, &taken);
        Ok((slot, taken))
    }

    /// The host's slot (made on first use), keeping `taken` there if it is HTTP/2.
    fn register(&self, https: bool, authority: &Authority, uri: &Uri, taken: &Taken) -> usize {
        let Ok(mut hosts) = self.shared.hosts.lock() else {
            return usize::MAX;
        };
        let slot = match hosts.iter().position(|h| h.is(https, authority)) {
            Some(slot) => slot,
            None => {
                hosts.push(Host {
                    https,
                    authority: authority.clone(),
                    host_header: host_header(uri),
                    idle: Vec::new(),
                    h2: None,
                });
                if hosts.len() == 1 {
                    spawn_reaper(Arc::downgrade(&self.shared));
                }
                hosts.len() - 1
            }
        };
        if let Taken::H2(tx) = taken {
            hosts[slot].h2 = Some(tx.clone());
        }
        slot
    }

    /// The shared HTTP/2 connection handed a request back: make a new one next time.
    fn forget_h2(&self, slot: usize) {
        if let Ok(mut hosts) = self.shared.hosts.lock()
            && let Some(host) = hosts.get_mut(slot)
        {
            host.h2 = None;
        }
    }

    /// Send on an HTTP/1 connection in origin form, with `host` unless the request has its
    /// own (a request handed back has its absolute URI again).
    async fn send_h1(
        &self,
        slot: usize,
        mut tx: H1,
        host: Option<HeaderValue>,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<Body>, Failed> {
        if let Some(host) = host
            && !req.headers().contains_key(http::header::HOST)
        {
            req.headers_mut().insert(http::header::HOST, host);
        }
        let origin = req
            .uri()
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
        let abs = std::mem::replace(req.uri_mut(), origin);
        match tx.try_send_request(req).await {
            Ok(resp) => {
                let back = GiveBack {
                    shared: Arc::downgrade(&self.shared),
                    host: slot,
                    tx,
                };
                let mut resp = resp.map(|inner| Body::pooled(inner, back));
                // Nothing to read (a 204, a HEAD): free for the next request now.
                if resp.body().inner.is_end_stream() {
                    resp.body_mut().give_back();
                }
                Ok(resp)
            }
            Err(e) => {
                let mut failed = Failed::from(e);
                if let Some(m) = &mut failed.unsent {
                    *m.uri_mut() = abs;
                }
                Err(failed)
            }
        }
    }
}

/// A request that got no answer, and the request itself when hyper never wrote it.
struct Failed {
    error: hyper::Error,
    unsent: Option<Request<Full<Bytes>>>,
}

impl From<hyper::client::conn::TrySendError<Request<Full<Bytes>>>> for Failed {
    fn from(mut e: hyper::client::conn::TrySendError<Request<Full<Bytes>>>) -> Self {
        Self {
            unsent: e.take_message(),
            error: e.into_error(),
        }
    }
}

async fn send_h2(mut tx: H2, req: Request<Full<Bytes>>) -> Result<Response<Body>, Failed> {
    let resp = tx.try_send_request(req).await?;
    Ok(resp.map(Body::unpooled))
}

/// Run a connection's task (it ends when the connection closes or every sender is gone).
fn drive(
    conn: impl std::future::Future<Output = hyper::Result<()>> + Send + 'static,
    what: &'static str,
) {
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("upstream {what}connection ended: {e}");
        }
    });
}

/// Every [`IDLE_TIMEOUT`]/3, close the idle connections past their time, until the client is
/// gone (without traffic they would otherwise wait for the server to close them).
fn spawn_reaper(shared: Weak<Shared>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let every = match shared.upgrade() {
            Some(s) => (s.idle_timeout / 3).max(Duration::from_millis(10)),
            None => return,
        };
        loop {
            tokio::time::sleep(every).await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if let Ok(mut hosts) = shared.hosts.lock() {
                let now = Instant::now();
                for h in hosts.iter_mut() {
                    h.expire(now, shared.idle_timeout);
                    h.idle.retain(|i| !i.tx.is_closed());
                }
            }
        }
    });
}

/// The `Host` of an HTTP/1 request to `uri`: its host, and its port unless it is the scheme's
/// default (the authority as written when it already reads so).
pub fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let authority = uri.authority()?;
    let default_port = uri
        .scheme_str()
        .and_then(crate::policy::perimeter::default_port);
    let port = authority.port_u16();
    let as_written = !authority.as_str().contains('@') && (port.is_none() || port != default_port);
    if as_written {
        return HeaderValue::from_str(authority.as_str()).ok();
    }
    let host = authority.host();
    match port {
        Some(p) if port != default_port => HeaderValue::from_str(&format!("{host}:{p}")).ok(),
        _ => HeaderValue::from_str(host).ok(),
    }
}

impl Body {
    fn pooled(inner: Incoming, back: GiveBack) -> Self {
        Self {
            inner,
            back: Some(back),
        }
    }

    fn unpooled(inner: Incoming) -> Self {
        Self { inner, back: None }
    }

    /// The answer is read to its end: its connection may serve the next request.
    fn give_back(&mut self) {
        let Some(GiveBack { shared, host, tx }) = self.back.take() else {
            return;
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if tx.is_closed() {
            return;
        }
        let Ok(mut hosts) = shared.hosts.lock() else {
            return;
        };
        if let Some(h) = hosts.get_mut(host) {
            let now = Instant::now();
            h.expire(now, shared.idle_timeout);
            if h.idle.len() < MAX_IDLE_PER_HOST {
                h.idle.push(Idle { tx, since: now });
            }
        }
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.give_back(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.give_back(),
            // A broken answer leaves its connection unusable: it closes with the body.
            Some(Err(_)) => this.back = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
