//! Responses over WebSocket through the gateway: Codex's own transport, kept end to end.
//!
//! Codex (0.171, built-in provider) opens `GET {openai_base_url}/responses` upgraded to a
//! WebSocket, one per thread, and sends each turn as a `response.create` text frame; a
//! follow-up turn is a *delta* (`previous_response_id` + new items). The gateway accepts the
//! upgrade, opens one upstream socket as the account the routing decision
//! ([`crate::policy::route::choose`], through [`crate::gateway::forward::passes`]) picks for the socket's
//! session, and relays frames both ways as they come (no buffering of responses; only the few
//! frames before a response's first output are held, see [`crate::policy::ws::Meaning`]).
//!
//! While the account is healthy every turn goes to it natively, deltas included. When it
//! fails before any output of a turn reached Codex (usage limit, 401/403 after a refresh,
//! overload, a close, the socket age limit) the turn is served elsewhere without Codex seeing
//! anything: a delta is expanded to a full request from the socket's [`Mirror`] (the last full
//! request and its output), and sent on a new upstream socket; later turns are deltas again,
//! on the new account. A delta that cannot be expanded is answered `previous_response_not_found`,
//! on which Codex 0.171 opens a new socket and re-sends the full input itself (verified with the
//! binary). When every account is spent Codex gets the backend's usage-limit error frame with
//! the earliest reset. Codex never gets a 401 (it would spend its own refresh token).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;

use crate::gateway::error::{GatewayError, json_error};
use crate::gateway::forward::passes;
use crate::gateway::forward::prepare::{
    strip_client_credentials, strip_for_upstream, upstream_url,
};
use crate::gateway::forward::request::RequestLine;
use crate::gateway::pool::state::GatewayState;
use crate::gateway::ws::keepalive::Quiet;
use crate::gateway::ws::upstream::{self, Upstream};
use crate::net::ws::server::{self, ServerSocket};
use crate::net::ws::socket::{self, Msg, Text};
use crate::policy::route;
use crate::policy::ws::{self as proto, Mirror, Request};
use crate::store::now_ms;

/// Sockets opened so far (names sessions that carry no session header).
static SOCKETS: AtomicU64 = AtomicU64::new(0);

/// One downstream socket and its upstream side.
pub(crate) struct Session {
    pub state: Arc<GatewayState>,
    /// The upstream socket, on the account serving this session.
    pub up: Option<Upstream>,
    /// `ws(s)://` URL of the model path upstream.
    pub url: String,
    /// The client's handshake headers, cleaned (no credentials, no hop-by-hop headers).
    pub base: HeaderMap,
    /// The routing session key (session-id / thread-id, else one per socket).
    pub session: String,
    pub mirror: Mirror,
    /// Frames Codex sent while a turn was in flight, handled after it.
    pub pending: VecDeque<Text>,
    /// Downstream is gone, or must be closed so that Codex reconnects.
    pub ended: bool,
    /// Something final of the current turn reached Codex.
    pub answered: bool,
    /// When Codex last heard from this socket (keepalive frames while a turn shows nothing).
    pub quiet: Quiet,
}

/// Whether `path` is the model path that speaks WebSocket (`/responses`, also under
/// `/backend-api/codex`).
pub fn is_model_path(path: &str) -> bool {
    path.trim_end_matches('/').ends_with("/responses")
}

/// Answer an upgrade request: 426 with `--no-websocket` or off the model path, else 101 and a
/// session task.
pub async fn handle(state: Arc<GatewayState>, mut parts: http::request::Parts) -> Response {
    if state.config.no_websocket || !is_model_path(parts.uri.path()) {
        return GatewayError::WebSocketUnsupported.into_response();
    }
    let accepted = match server::accept(&parts.headers, Some(socket::DOWNSTREAM)) {
        Ok(a) => a,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, "bad_request", why),
    };
    let Some(on) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "connection cannot be upgraded",
        );
    };
    let (mut resp, deflate) = (accepted.response, accepted.deflate);
    let path_q = parts
        .uri
        .path_and_query()
        .map_or("/responses", |p| p.as_str());
    let url = upstream::ws_url(&upstream_url(&state.config.base_url, path_q));
    let no = SOCKETS.fetch_add(1, Ordering::Relaxed) + 1;
    let session = route::session_key(|h| parts.headers.get(h).and_then(|v| v.to_str().ok()))
        .map_or_else(|| format!("ws-socket-{no}"), str::to_string);
    let mut base = parts.headers;
    strip_for_upstream(&mut base);
    if !state.config.passthrough_auth {
        strip_client_credentials(&mut base);
    }
    let base = upstream::forwardable(base);
    let quiet = Quiet::new(std::time::Duration::from_millis(
        state.config.ws_keepalive_ms,
    ));
    let mut s = Session {
        state,
        up: None,
        url,
        base,
        session,
        mirror: Mirror::default(),
        pending: VecDeque::new(),
        ended: false,
        answered: false,
        quiet,
    };
    // Open upstream before answering, so the 101 carries what upstream's says (Codex reads
    // reasoning/model/turn-state headers from it). A failure here is not Codex's: the first
    // turn routes again.
    s.open_for_handshake().await;
    if let Some(up) = &s.up {
        for name in upstream::PASSED_101_HEADERS {
            if let Some(v) = up.headers.get(name) {
                resp.headers_mut().insert(name, v.clone());
            }
        }
    }
    tokio::spawn(async move {
        if let Some(down) = server::take_over(on, deflate).await {
            s.state.metrics.websocket("codex", down.deflate().is_some());
            s.run(down).await;
        }
    });
    resp
}

/// The request of one turn.
pub struct Turn {
    /// The frame as Codex sent it (forwarded byte for byte when it can go natively).
    pub text: Text,
    /// The frame parsed (`None`: not JSON; forwarded as is).
    pub req: Option<Request>,
    /// Its full form from the mirror (`None`: a delta the mirror cannot expand).
    pub full: Option<Request>,
}

impl Session {
    async fn open_for_handshake(&mut self) {
        let Ok(acct) = self.state.choose(Some(&self.session), &[], now_ms()) else {
            return;
        };
        let timeout = std::time::Duration::from_millis(self.state.config.timeout_ms);
        match upstream::connect(&self.state, &acct, &self.url, &self.base, timeout).await {
            Ok(up) => self.up = Some(up),
            Err(e) => {
                tracing::debug!(account = %acct.name, "upstream websocket not opened at handshake: {e:?}")
            }
        }
    }

    async fn run(mut self, mut down: ServerSocket) {
        while !self.ended {
            let text = match self.pending.pop_front() {
                Some(t) => t,
                None => match self.next_idle(&mut down).await {
                    Some(t) => t,
                    None => break,
                },
            };
            self.turn(&mut down, text).await;
        }
        if let Some(mut up) = self.up.take() {
            up.ws.close().await;
        }
        down.close().await;
    }

    /// Between turns: the next request frame from Codex; upstream frames are handed on and an
    /// upstream that closes is dropped (the next turn opens a new one). `None`: Codex left.
    async fn next_idle(&mut self, down: &mut ServerSocket) -> Option<Text> {
        loop {
            let from_up = async {
                match self.up.as_mut() {
                    Some(up) => up.ws.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                m = down.recv() => match m {
                    Some(Msg::Text(t)) => return Some(t),
                    None => return None,
                    Some(Msg::Binary(_) | Msg::Control) => {}
                },
                m = from_up => match m {
                    Some(Msg::Text(t)) => {
                        self.observe(&t);
                        if !down.send_text(t).await {
                            return None;
                        }
                    }
                    None => self.up = None,
                    Some(Msg::Binary(_) | Msg::Control) => {}
                },
            }
        }
    }

    /// Usage carried by an upstream frame (`codex.rate_limits`, error-frame headers).
    pub fn observe(&self, text: &str) {
        let Some(acct) = self.up.as_ref().map(|u| u.account.name.clone()) else {
            return;
        };
        let now = now_ms();
        if let Some(snap) = crate::policy::usage_event::from_event(text, now) {
            self.state.usage.observe(&acct, snap);
        }
        if text.contains("\"headers\"") {
            let mut h = HeaderMap::new();
            for (k, v) in proto::error_headers(text) {
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    h.insert(k, v);
                }
            }
            self.state.usage.observe_headers(&acct, &h, now);
        }
    }

    /// One request frame: routed over the accounts until one serves it.
    async fn turn(&mut self, down: &mut ServerSocket, text: Text) {
        let started = Instant::now();
        self.state.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.answered = false;
        // Codex's idle timer starts when it has sent the request.
        self.quiet.heard();
        let req = Request::parse(&text);
        let full = req.as_ref().and_then(|r| self.mirror.expand(r));
        let ctx = Turn { text, req, full };
        let state = self.state.clone();
        let session = self.session.clone();
        let served = {
            // `passes` calls the attempt once per account, one at a time.
            let this = tokio::sync::Mutex::new((&mut *self, &mut *down));
            passes::passes(&state, Some(&session), |acct| {
                let (this, ctx) = (&this, &ctx);
                async move {
                    let mut g = this.lock().await;
                    let (s, d) = &mut *g;
                    s.attempt(d, acct, ctx).await
                }
            })
            .await
        };
        let mut status = served.response.status().as_u16();
        let (account, switched) = (served.account.clone(), served.switched);
        if !self.answered {
            // Nothing reached Codex: the routing's own answer (every account spent, none
            // usable, the last failure), as an error frame.
            let frame = error_frame(served.response).await;
            status = frame.0;
            if !down.send_text(frame.1).await {
                self.ended = true;
            }
            self.mirror.clear();
        }
        RequestLine {
            method: "WS",
            path: "/responses",
            account: account.as_deref().map(|a| a.name.as_str()),
            status,
            switched,
            elapsed: started.elapsed(),
        }
        .record(&self.state);
    }
}

/// An HTTP-shaped answer of the routing as a WebSocket error frame `(status, text)`, in the
/// backend's shape. Never a 401/403: Codex would refresh (and spend) its own tokens.
async fn error_frame(resp: Response) -> (u16, String) {
    let status = match resp.status().as_u16() {
        401 | 403 => 502,
        s => s,
    };
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let err = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").cloned())
        .unwrap_or_else(|| {
            serde_json::json!({"type": "upstream_error",
                "message": String::from_utf8_lossy(&body).into_owned()})
        });
    let frame = serde_json::json!({"type": "error", "status": status, "error": err});
    (status, frame.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_model_path_speaks_websocket() {
        assert!(is_model_path("/responses"));
        assert!(is_model_path("/backend-api/codex/responses"));
        assert!(is_model_path("/v1/responses/"));
        assert!(!is_model_path("/models"));
        assert!(!is_model_path("/backend-api/wham/usage"));
    }

    #[tokio::test]
    async fn routing_answers_become_error_frames_never_401() {
        let r = GatewayError::ClientCredentialsRefused.into_response();
        let (status, text) = error_frame(r).await;
        assert_eq!(status, 502);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["type"], "error");
        assert_eq!(v["status"], 502);
        let spent = GatewayError::AllSpent {
            soonest_reset_ms: Some(1_900_000_000_000),
            now_ms: 1_800_000_000_000,
            default_cooldown_s: 900,
        }
        .into_response();
        let (status, text) = error_frame(spent).await;
        assert_eq!(status, 429);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["error"]["type"], "usage_limit_reached");
        assert_eq!(v["error"]["resets_at"], 1_900_000_000);
    }
}
