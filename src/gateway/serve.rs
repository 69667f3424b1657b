//! The gateway's accept loop: hyper with timeouts, the peer address for every request, and
//! graceful shutdown.
//!
//! `axum::serve` has no knobs, and without a timer hyper enforces no header-read timeout at all:
//! a client that sends one byte a minute (slowloris) would hold a connection forever. Here every
//! connection gets [`Options::header_timeout`](super::perimeter::Options) for each request head,
//! which also bounds how long an idle keep-alive connection waits for its next request; bodies
//! are bounded by [`super::perimeter::buffer_body`]. The soft open-file limit is raised to the
//! hard one first, so many Codex sessions do not run into it.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service;

/// Serve `app` on `listener` until `stop` turns true, then let open connections finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
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
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move { app.call(req.map(Body::new)).await }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (each stream holds two sockets). Returns the
/// limit now in force, when known.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        if soft < hard {
            match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                Ok(()) => return Some(hard),
                Err(e) => tracing::debug!("could not raise the open-file limit: {e}"),
            }
        }
        Some(soft)
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_fd_limit_ends_at_the_hard_one() {
        let now = super::raise_fd_limit();
        #[cfg(unix)]
        {
            let (soft, hard) =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .unwrap_or((0, 1));
            assert_eq!(soft, hard);
            assert_eq!(now, Some(soft));
        }
    }
}
