//! Keepalive frames to Codex while a WebSocket turn has nothing to show it yet.
//!
//! Codex waits for each frame of a response with `tokio::time::timeout(idle_timeout, next())`
//! (codex-rs `codex-api/src/endpoint/responses_websocket.rs`, `run_websocket_response_stream`;
//! `idle_timeout` is the provider's `stream_idle_timeout_ms`, 300 s by default,
//! `model-provider-info` `DEFAULT_STREAM_IDLE_TIMEOUT_MS`). Its socket pump answers pings and
//! drops pongs without handing them on, so only a text (or binary, or close) frame resets that
//! timer; an unknown event type is parsed and ignored. While the gateway switches accounts,
//! refreshes a token, backs off, or holds a new response's first frames until its first
//! output, Codex would otherwise see nothing at all: it gets [`KEEPALIVE`] whenever it has
//! heard nothing for the configured interval (`--ws-keepalive-ms`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::net::ws::server::ServerSocket;
pub use crate::policy::ws::KEEPALIVE;

/// When Codex last heard from the gateway on one downstream socket.
#[derive(Debug, Clone)]
pub struct Quiet {
    every: Duration,
    since: Instant,
}

impl Quiet {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            since: Instant::now(),
        }
    }

    /// Codex just sent or got a frame: its idle timer starts again.
    pub fn heard(&mut self) {
        self.since = Instant::now();
    }

    /// When the next keepalive is due.
    pub fn due(&self) -> Instant {
        self.since + self.every
    }

    /// Send Codex a keepalive frame now. `false`: Codex is gone.
    pub async fn send(&mut self, down: &mut ServerSocket) -> bool {
        self.heard();
        down.send_text(KEEPALIVE).await
    }

    /// Run `work` to its end, sending Codex a keepalive frame each time it has heard nothing
    /// for the interval meanwhile. A keepalive that cannot be sent is not an error here: the
    /// next read of the socket finds Codex gone.
    pub async fn during<F: Future>(&mut self, down: &mut ServerSocket, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep_until(self.due()) => {
                    let _ = self.send(down).await;
                }
            }
        }
    }
}
