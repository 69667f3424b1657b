//! The accept loop of the gateway and of the mock upstream: hyper with timeouts, the peer
//! address for every request, plain HTTP and HTTPS on one port, and graceful shutdown.
//!
//! HTTPS on the same port: a TLS connection starts with a handshake record (first byte `0x16`);
//! an HTTP/1 request starts with a method name and an HTTP/2 prior-knowledge one with `PRI`, all
//! ASCII letters. So the first byte, peeked without consuming it, tells which side a connection
//! is for: scripts, `codex exec` recipes and the status page in a browser keep `http://`, and
//! the Codex TUI gets the `https://` it requires, at one address. Both sides serve the same
//! [`App`], with upgrades, so a WebSocket works over `wss://` as over `ws://`.
//!
//! `axum::serve` has no knobs, and without a timer hyper enforces no header-read timeout at all:
//! a client that sends one byte a minute (slowloris) would hold a connection forever. Here every
//! connection gets `header_timeout` for each request head, which also bounds how long an idle
//! keep-alive connection waits for its next request; bodies are the [`App`]'s to bound (the
//! gateway's perimeter buffers them under a budget and a deadline).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// The first byte of a TLS handshake record (a ClientHello).
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// Which side a connection is on, by its first byte.
pub fn is_tls(first_byte: u8) -> bool {
    first_byte == TLS_HANDSHAKE_BYTE
}

/// What answers each request of a connection: the gateway's front door or any axum [`Router`]
/// (the mock upstream serving HTTPS). `peer` is the address the connection came from, handed over as it is rather than as a request
/// extension (which would allocate a map for every request).
pub trait App: Clone + Send + Sync + 'static {
    fn call(
        &self,
        req: http::Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + use<Self>;
}

impl App for Router {
    fn call(
        &self,
        mut req: http::Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + use<> {
        req.extensions_mut().insert(ConnectInfo(peer));
        let routed = Service::call(&mut self.clone(), req);
        async move {
            match routed.await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    }
}

/// Serve `app` on `listener` until `stop` turns true, then let open connections finish. With
/// `tls`, connections that start with a TLS handshake are served over TLS; a connection must
/// send its first byte, and finish its handshake, within `header_timeout`.
pub async fn run<A: App>(
    listener: TcpListener,
    app: A,
    header_timeout: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut stopped = Box::pin(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout)
        .enable_connect_protocol();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // moment rather than spin.
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        // No Nagle: SSE events are small writes that must leave at once (with Nagle and the
        // client's delayed ACK, each one waits ~40 ms).
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            peer,
            app: app.clone(),
            builder: builder.clone(),
            watcher: graceful.watcher(),
        };
        match &acceptor {
            None => {
                tokio::spawn(conn.serve(tcp));
            }
            Some(acceptor) => {
                tokio::spawn(conn.serve_either(tcp, acceptor.clone(), header_timeout));
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One accepted connection and what serving it needs.
struct Conn<A> {
    peer: SocketAddr,
    app: A,
    builder: Builder<TokioExecutor>,
    watcher: Watcher,
}

impl<A: App> Conn<A> {
    /// Peek at the first byte; a TLS handshake is served over TLS, anything else as plain HTTP.
    async fn serve_either(self, tcp: TcpStream, acceptor: TlsAcceptor, timeout: Duration) {
        let mut first = [0u8; 1];
        match tokio::time::timeout(timeout, tcp.peek(&mut first)).await {
            Ok(Ok(1..)) => {}
            _ => return,
        }
        if !is_tls(first[0]) {
            return self.serve(tcp).await;
        }
        match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => self.serve(stream).await,
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            peer,
            app,
            builder,
            watcher,
        } = self;
        let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let answered = app.call(req.map(Body::new), peer);
            async move { Ok::<_, Infallible>(answered.await) }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(peer = %peer, "connection ended: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_handshake_record_is_tls() {
        assert!(super::is_tls(0x16));
        for method in [
            "GET", "POST", "PRI", "OPTIONS", "HEAD", "PUT", "DELETE", "CONNECT",
        ] {
            assert!(!super::is_tls(method.as_bytes()[0]), "{method}");
        }
    }
}
