//! The mock Codex upstream with fault injection, used by tests, `cao demo` and the benchmarks.
//!
//! It answers like the ChatGPT Codex backend as far as the Codex CLI 0.171 needs:
//! `POST /responses` streams a Responses-API SSE answer ([`sse`]), `GET /responses` with
//! `Upgrade: websocket` speaks Responses over WebSocket (`ws`; 426 with `websocket: false`),
//! `/models` and every other
//! path answer 200 JSON, and `POST /oauth/token` is an OAuth token endpoint that rotates refresh
//! tokens and detects reuse. Faults are injected per ChatGPT account ([`Scenario`]); every request
//! is recorded ([`RecordedRequest`]) so tests can check what reached "upstream".

mod scenario;
mod server;
mod shared;
pub(crate) mod sse;
pub(crate) mod token;
mod token_ledger;
mod usage;
mod ws;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
pub use scenario::{
    AccountFaults, LOOPBACK_HTTPS_ORIGIN, QuotaFault, RefreshFault, Scenario, ServerErrorFault,
    StreamFailure, Times, UsageFault, WsFaults,
};
pub use token::{Presented, Verdict};

/// One request the mock received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// `chatgpt_account_id` inside the bearer JWT (for `/oauth/token`: the refresh token's account).
    pub bearer_account: Option<String>,
    /// The `chatgpt-account-id` header.
    pub header_account: Option<String>,
    /// `session-id` header (else `thread-id`, else `x-session-id`).
    pub session_id: Option<String>,
    /// Whether a `cookie` header arrived.
    pub had_cookie: bool,
    /// The `cookie` header, if any.
    pub cookie: Option<String>,
    /// Request body size in bytes (as received; zstd bodies are not decoded).
    pub body_len: usize,
    /// The status the mock answered.
    pub status: u16,
    /// Milliseconds since the mock started.
    pub at_ms: u64,
    /// The HTTP version it came over (HTTP/2 where TLS's ALPN picked it).
    pub version: http::Version,
}

impl RecordedRequest {
    /// The account this request was charged to: the header, else the bearer's.
    pub fn account(&self) -> Option<&str> {
        self.header_account
            .as_deref()
            .or(self.bearer_account.as_deref())
    }

    /// A model call (`POST .../responses`).
    pub fn is_model_call(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/responses")
    }
}

/// One WebSocket the mock accepted, and what it read (kept up to date while it is open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSocket {
    /// Which socket (numbered from 1 in opening order, as [`RecordedFrame::socket`]).
    pub socket: u64,
    /// The account of the socket's handshake.
    pub account: Option<String>,
    /// The client's `Sec-WebSocket-Extensions` offer, as it came.
    pub offered: Option<String>,
    /// The permessage-deflate the mock answered in its 101 (`None`: uncompressed).
    pub deflate: Option<String>,
    /// Bytes read off the wire after the 101 (compressed, frame headers included).
    pub wire_bytes_in: u64,
    /// Bytes of the text frames those decoded to.
    pub text_bytes_in: u64,
}

/// One request frame a mock WebSocket received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFrame {
    /// Which socket (numbered from 1 in opening order).
    pub socket: u64,
    /// The account of the socket's handshake (`chatgpt-account-id`, else the bearer's).
    pub account: Option<String>,
    /// `chatgpt_account_id` of the handshake's bearer and the `chatgpt-account-id` header.
    pub bearer_account: Option<String>,
    pub header_account: Option<String>,
    /// Frame size in bytes (as decoded).
    pub bytes: usize,
    /// What its message took on the wire (compressed when the socket negotiated
    /// permessage-deflate; frame headers included).
    pub wire_bytes: u64,
    pub previous_response_id: Option<String>,
    /// Number of `input` items.
    pub input_items: usize,
    /// `generate: false` (a prewarm).
    pub prewarm: bool,
    /// What the mock answered: `completed`, `error:<code>`, `closed`, `failed`.
    pub answer: String,
    /// The response id it produced, if any.
    pub response_id: Option<String>,
}

impl RecordedFrame {
    /// `account:prewarm|delta|full:answer`, for test assertions and messages.
    pub fn summary(&self) -> String {
        let kind = match (self.prewarm, self.previous_response_id.is_some()) {
            (true, _) => "prewarm",
            (false, true) => "delta",
            (false, false) => "full",
        };
        format!(
            "{}:{kind}:{}",
            self.account.as_deref().unwrap_or("?"),
            self.answer
        )
    }

    /// The HTTP status an answer like this has over HTTP: 200 completed, the error frame's
    /// kind mapped (429 usage limit, 401, 400), 502 for a close.
    pub fn status(&self) -> u16 {
        match self.answer.as_str() {
            "completed" => 200,
            "error:usage_limit_reached" => 429,
            "failed" => 503,
            "closed" => 502,
            "error:invalid_request_error" => 401,
            _ => 400,
        }
    }
}

/// How one HTTP request introduced itself: the `originator` and `user-agent` headers, so tests
/// can hold cao's own backend calls to what the real Codex sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Path without the query string.
    pub path: String,
    pub originator: Option<String>,
    pub user_agent: Option<String>,
}

/// A running mock upstream. Dropping it without [`MockUpstream::shutdown`] aborts the server.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<shared::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl MockUpstream {
    /// Bind `bind:port` (port 0 picks a free one) and serve `scenario` until shut down.
    pub async fn spawn(bind: &str, port: u16, scenario: Scenario) -> anyhow::Result<Self> {
        Self::spawn_with(bind, port, scenario, None).await
    }

    /// Like [`MockUpstream::spawn`], serving HTTPS and WSS with `tls` on the same port too (the
    /// gateway's own listener, [`crate::net::server::run`], tells them apart by the first
    /// byte): point the gateway at [`MockUpstream::https_base_url`] for a `wss://` upstream.
    pub async fn spawn_tls(
        bind: &str,
        port: u16,
        scenario: Scenario,
        tls: Arc<rustls::ServerConfig>,
    ) -> anyhow::Result<Self> {
        Self::spawn_with(bind, port, scenario, Some(tls)).await
    }

    async fn spawn_with(
        bind: &str,
        port: u16,
        scenario: Scenario,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((bind, port))
            .await
            .with_context(|| format!("mock upstream could not bind {bind}:{port}"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(shared::Shared {
            scenario: RwLock::new(scenario),
            state: Mutex::new(shared::MockState::default()),
            started: std::time::Instant::now(),
            open_streams: std::sync::atomic::AtomicUsize::new(0),
            usage_in_flight: std::sync::atomic::AtomicUsize::new(0),
            usage_max_in_flight: std::sync::atomic::AtomicUsize::new(0),
        });
        let app = server::router(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = match tls {
            None => tokio::spawn(async move {
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            }),
            Some(tls) => tokio::spawn(async move {
                let (stop_serving, stop_rx) = tokio::sync::watch::channel(false);
                let timeout = std::time::Duration::from_secs(30);
                let serve = crate::net::server::run(listener, app, timeout, Some(tls), stop_rx);
                tokio::pin!(serve);
                tokio::select! {
                    _ = &mut serve => {}
                    _ = stopped => {
                        let _ = stop_serving.send(true);
                        let _ = serve.await;
                    }
                }
            }),
        };
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: point the gateway's `--base-url` here.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:PORT` (with [`MockUpstream::spawn_tls`]).
    pub fn https_base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The OAuth token endpoint: point `--token-url` here.
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth/token", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    /// SSE answers still streaming. Drops to 0 once clients (or the gateway) hang up, which is
    /// how tests see that a client abort cancelled the upstream request.
    pub fn open_streams(&self) -> usize {
        self.shared
            .open_streams
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most usage-endpoint calls (`…/wham/usage`, `/api/codex/usage`) the mock was answering
    /// at the same moment so far (a `usage.delay_ms` fault holds each one open).
    pub fn usage_max_in_flight(&self) -> usize {
        self.shared
            .usage_max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Usage-endpoint calls the mock answered for `account_id` so far, as milliseconds since
    /// the mock started (on arrival), in arrival order.
    pub fn usage_hits(&self, account_id: &str) -> Vec<u64> {
        self.requests()
            .iter()
            .filter(|r| usage::is_usage_path(&r.path) && r.account() == Some(account_id))
            .map(|r| r.at_ms)
            .collect()
    }

    /// Every WebSocket request frame received so far, in arrival order.
    pub fn ws_frames(&self) -> Vec<RecordedFrame> {
        self.shared
            .state
            .lock()
            .map(|s| s.ws_frames.clone())
            .unwrap_or_default()
    }

    /// Every model call as `account:status`: HTTP `POST .../responses` first, then every
    /// WebSocket request frame (prewarms included) with [`RecordedFrame::status`].
    pub fn model_calls(&self) -> Vec<String> {
        let http = self
            .requests()
            .into_iter()
            .filter(|r| r.is_model_call())
            .map(|r| format!("{}:{}", r.account().unwrap_or("?"), r.status));
        let ws = self
            .ws_frames()
            .into_iter()
            .map(|f| format!("{}:{}", f.account.as_deref().unwrap_or("?"), f.status()));
        http.chain(ws).collect()
    }

    /// [`RecordedFrame::summary`] of every WebSocket request frame so far.
    pub fn ws_summaries(&self) -> Vec<String> {
        self.ws_frames()
            .iter()
            .map(RecordedFrame::summary)
            .collect()
    }

    /// Every WebSocket accepted so far, in opening order.
    pub fn ws_sockets(&self) -> Vec<RecordedSocket> {
        self.shared
            .state
            .lock()
            .map(|s| s.ws_socket_log.clone())
            .unwrap_or_default()
    }

    /// Text-frame bytes received and sent on all WebSockets, and sockets opened.
    pub fn ws_traffic(&self) -> (u64, u64, u64) {
        self.shared
            .state
            .lock()
            .map(|s| (s.ws_bytes_in, s.ws_bytes_out, s.ws_sockets))
            .unwrap_or_default()
    }

    /// How every HTTP request so far introduced itself, in arrival order (not WebSocket ones).
    pub fn identities(&self) -> Vec<ClientIdentity> {
        self.shared
            .state
            .lock()
            .map(|s| s.identities.clone())
            .unwrap_or_default()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.requests.clear();
            s.ws_frames.clear();
        }
    }

    /// Successful token refreshes for `account_id` so far.
    pub fn refresh_count(&self, account_id: &str) -> u32 {
        self.shared
            .state
            .lock()
            .ok()
            .and_then(|s| s.tokens.refreshes.get(account_id).copied())
            .unwrap_or(0)
    }

    /// Every refresh token presented to the token endpoint so far, in arrival order.
    pub fn presented_tokens(&self) -> Vec<Presented> {
        self.shared
            .state
            .lock()
            .map(|s| s.tokens.presented.clone())
            .unwrap_or_default()
    }

    /// Presentations of a refresh token that had already been spent (each one revoked its
    /// login). Custody tests assert this stays empty.
    pub fn spent_tokens_presented(&self) -> Vec<Presented> {
        self.presented_tokens()
            .into_iter()
            .filter(|p| p.verdict == Verdict::Reused)
            .collect()
    }

    /// Whether the login of `account_id` was revoked (a spent refresh token came back).
    pub fn login_revoked(&self, account_id: &str) -> bool {
        self.presented_tokens()
            .iter()
            .any(|p| p.account.as_deref() == Some(account_id) && p.verdict == Verdict::Reused)
    }

    /// Replace the faults of one account while running.
    pub fn set_faults(&self, account_id: &str, faults: AccountFaults) {
        if let Ok(mut s) = self.shared.scenario.write() {
            s.accounts.insert(account_id.to_string(), faults);
        }
        if let Ok(mut st) = self.shared.state.lock() {
            st.counters.remove(account_id);
            st.tokens.reset_faults(Some(account_id));
        }
    }

    /// Replace the whole scenario while running (counters are reset).
    pub fn set_scenario(&self, scenario: Scenario) {
        if let Ok(mut s) = self.shared.scenario.write() {
            *s = scenario;
        }
        if let Ok(mut st) = self.shared.state.lock() {
            st.counters.clear();
            st.tokens.reset_faults(None);
        }
    }

    /// Stop accepting, let open responses finish briefly, and wait for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
