//! The mock upstream's Responses over WebSocket: `GET .../responses` upgraded, as the ChatGPT
//! backend speaks it to Codex 0.171 (codex-rs `codex-api/src/endpoint/responses_websocket.rs`).
//!
//! Each `response.create` text frame is answered with the SSE events of [`super::sse`] as JSON
//! text frames. A `previous_response_id` is resolved only against responses produced on the
//! same socket (else `previous_response_not_found`, as the backend does), `generate: false` is a
//! prewarm (`response.created` + `response.completed`, nothing charged), and a spent account
//! gets the backend's usage-limit error frame. [`super::WsFaults`] injects the rest: refused
//! or slow upgrades, closes before or during a turn, the socket age limit, 401 frames, overload, slow
//! frames, and reasoning bound to its account. permessage-deflate is accepted when offered
//! (unless `ws.refuse_deflate`), as the backend is expected to. Every frame is recorded
//! ([`super::RecordedFrame`]) and counted in bytes, and every socket with what it negotiated
//! and the bytes it read off the wire ([`super::RecordedSocket`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::shared::{MockState, Shared, header_str, now_secs, usage_limit_error};
use super::{RecordedFrame, RecordedRequest, RecordedSocket, WsFaults};
use crate::net::ws::server::{self, ServerSocket};
use crate::net::ws::socket::Msg;
use crate::policy::ws_deflate::{Wants, render};
use crate::store::auth_file::decode_claims;

/// Who opened a socket.
#[derive(Debug, Clone, Default)]
struct Opener {
    bearer_account: Option<String>,
    header_account: Option<String>,
}

impl Opener {
    fn account(&self) -> Option<&str> {
        self.header_account
            .as_deref()
            .or(self.bearer_account.as_deref())
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, MockState> {
    match shared.state.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    }
}

fn json_answer(status: StatusCode, v: Value) -> Response {
    let mut r = Response::new(axum::body::Body::from(v.to_string()));
    *r.status_mut() = status;
    r
}

/// Answer an upgrade request on a `/responses` path.
pub(super) async fn handle(shared: Arc<Shared>, mut parts: http::request::Parts) -> Response {
    let h = &parts.headers;
    let bearer = header_str(h, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")))
        .map(str::to_string);
    let claims = bearer.as_deref().and_then(decode_claims);
    let opener = Opener {
        bearer_account: claims.as_ref().and_then(|c| c.chatgpt_account_id.clone()),
        header_account: header_str(h, "chatgpt-account-id").map(str::to_string),
    };
    let (enabled, record, faults, expired_refused) = {
        let s = match shared.scenario.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let f = s.faults_for(opener.account()).clone();
        (s.websocket, s.record_requests, f, s.reject_expired_tokens)
    };
    let refused = {
        let st = lock(&shared);
        let issued = bearer
            .as_deref()
            .is_some_and(|b| st.tokens.issued_access_tokens.contains(b));
        if !enabled {
            Some((
                StatusCode::UPGRADE_REQUIRED,
                "websocket transport is not available; use HTTP",
            ))
        } else if bearer.is_none() {
            Some((StatusCode::UNAUTHORIZED, "missing bearer token"))
        } else if expired_refused
            && claims
                .as_ref()
                .and_then(|c| c.exp)
                .is_some_and(|e| e <= now_secs())
        {
            Some((
                StatusCode::UNAUTHORIZED,
                "Provided authentication token is expired.",
            ))
        } else if faults.unauthorized && !issued {
            Some((
                StatusCode::UNAUTHORIZED,
                "Provided authentication token is invalid.",
            ))
        } else {
            faults.ws.refuse_upgrade.map(|s| {
                (
                    StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    "mock upstream: upgrade refused",
                )
            })
        }
    };
    if faults.ws.handshake_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.ws.handshake_delay_ms)).await;
    }
    let answer = match refused {
        Some((status, msg)) => Err(json_answer(status, json!({"error": {"message": msg}}))),
        None => server::accept(h, (!faults.ws.refuse_deflate).then_some(Wants::default()))
            .map_err(|e| json_answer(StatusCode::BAD_REQUEST, json!({"error": {"message": e}}))),
    };
    let status = match &answer {
        Ok(a) => a.response.status().as_u16(),
        Err(r) => r.status().as_u16(),
    };
    if record {
        let mut st = lock(&shared);
        let at_ms = shared.started.elapsed().as_millis() as u64;
        st.requests.push(RecordedRequest {
            method: "GET".into(),
            path: parts.uri.path().to_string(),
            bearer_account: opener.bearer_account.clone(),
            header_account: opener.header_account.clone(),
            session_id: header_str(h, "session-id")
                .or(header_str(h, "thread-id"))
                .map(str::to_string),
            had_cookie: h.contains_key(http::header::COOKIE),
            cookie: header_str(h, "cookie").map(str::to_string),
            body_len: 0,
            status,
            at_ms,
            version: parts.version,
        });
    }
    let (resp, deflate) = match answer {
        Ok(a) => (a.response, a.deflate),
        Err(r) => return r,
    };
    let offered = server::extension_values(h).join(", ");
    let Some(on) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "connection cannot be upgraded"}}),
        );
    };
    let socket_no = {
        let mut st = lock(&shared);
        st.ws_sockets += 1;
        let no = st.ws_sockets;
        st.ws_socket_log.push(RecordedSocket {
            socket: no,
            account: opener.account().map(str::to_string),
            offered: (!offered.is_empty()).then_some(offered),
            deflate: deflate.as_ref().map(render),
            wire_bytes_in: 0,
            text_bytes_in: 0,
        });
        no
    };
    tokio::spawn(async move {
        if let Some(ws) = server::take_over(on, deflate).await {
            Session {
                shared,
                ws,
                opener,
                socket_no,
                produced: HashSet::new(),
                answered: 0,
            }
            .run()
            .await;
        }
    });
    resp
}

struct Session {
    shared: Arc<Shared>,
    ws: ServerSocket,
    opener: Opener,
    socket_no: u64,
    /// Response ids produced on this socket (what `previous_response_id` may name).
    produced: HashSet<String>,
    /// Requests answered on this socket.
    answered: u32,
}

/// What one request frame gets.
enum Reply {
    Error(Value),
    Close,
    Events {
        events: Vec<Value>,
        close_after: Option<u32>,
        id: Option<String>,
    },
}

impl Session {
    async fn run(mut self) {
        let mut wire_before = 0;
        while let Some(msg) = self.ws.recv().await {
            let text = match msg {
                Msg::Text(t) => t.as_str().to_string(),
                Msg::Binary(_) => {
                    let e = error_frame(
                        400,
                        "invalid_request_error",
                        "binary frames are not supported",
                    );
                    let _ = self.send(&e).await;
                    continue;
                }
                Msg::Control => continue,
            };
            let wire = self.ws.wire_bytes_in();
            let wire_bytes = wire.saturating_sub(wire_before);
            wire_before = wire;
            lock(&self.shared).ws_read(self.socket_no, wire, text.len());
            if !self.answer(&text, wire_bytes).await {
                break;
            }
        }
        self.ws.close().await;
    }

    async fn send(&mut self, v: &Value) -> bool {
        let text = v.to_string();
        lock(&self.shared).ws_bytes_out += text.len() as u64;
        self.ws.send_text(text).await
    }

    /// Answer one frame; false when the socket is to be closed.
    async fn answer(&mut self, text: &str, wire_bytes: u64) -> bool {
        let frame: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let prev = frame
            .get("previous_response_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let prewarm = frame.get("generate").and_then(Value::as_bool) == Some(false);
        let input = frame
            .get("input")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (reply, delay) = self.decide(&frame, prev.as_deref(), prewarm, &input);
        let (answer, id) = match &reply {
            Reply::Error(e) => (
                format!(
                    "error:{}",
                    e.pointer("/error/code")
                        .or_else(|| e.pointer("/error/type"))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                ),
                None,
            ),
            Reply::Close => ("closed".to_string(), None),
            Reply::Events {
                close_after: Some(_),
                id,
                ..
            } => ("closed".to_string(), id.clone()),
            Reply::Events { events, id, .. } => {
                let failed = events.iter().any(|e| e["type"] == "response.failed");
                (
                    if failed { "failed" } else { "completed" }.to_string(),
                    id.clone(),
                )
            }
        };
        {
            let record = self
                .shared
                .scenario
                .read()
                .map(|s| s.record_requests)
                .unwrap_or(true);
            let mut st = lock(&self.shared);
            if record {
                st.ws_frames.push(RecordedFrame {
                    socket: self.socket_no,
                    account: self.opener.account().map(str::to_string),
                    bearer_account: self.opener.bearer_account.clone(),
                    header_account: self.opener.header_account.clone(),
                    bytes: text.len(),
                    wire_bytes,
                    previous_response_id: prev,
                    input_items: input.len(),
                    prewarm,
                    answer,
                    response_id: id,
                });
            }
        }
        self.answered += 1;
        match reply {
            Reply::Error(e) => {
                let ok = self.send(&e).await;
                // The backend closes a socket that reached its age limit.
                ok && e.pointer("/error/code") != Some(&json!("websocket_connection_limit_reached"))
            }
            Reply::Close => false,
            Reply::Events {
                events,
                close_after,
                id,
            } => {
                for (n, ev) in events.iter().enumerate() {
                    if close_after.is_some_and(|c| n as u32 >= c) {
                        return false;
                    }
                    if delay > Duration::ZERO {
                        tokio::time::sleep(delay).await;
                    }
                    if !self.send(ev).await {
                        return false;
                    }
                }
                let forget = self
                    .shared
                    .scenario
                    .read()
                    .map(|s| s.faults_for(self.opener.account()).ws.forget_responses)
                    .unwrap_or(false);
                if let Some(id) = id.filter(|_| !forget) {
                    self.produced.insert(id);
                }
                true
            }
        }
    }

    fn decide(
        &self,
        frame: &Value,
        prev: Option<&str>,
        prewarm: bool,
        input: &[Value],
    ) -> (Reply, Duration) {
        let account = self.opener.account().unwrap_or("unknown").to_string();
        let scenario = match self.shared.scenario.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let faults = scenario.faults_for(Some(&account)).clone();
        let ws: &WsFaults = &faults.ws;
        let delay = Duration::from_millis(ws.frame_delay_ms);
        if frame.get("type").and_then(Value::as_str) != Some("response.create") {
            return (
                Reply::Error(error_frame(
                    400,
                    "invalid_request_error",
                    "expected a response.create frame",
                )),
                delay,
            );
        }
        if ws
            .connection_limit_after
            .is_some_and(|n| self.answered >= n)
        {
            let mut e = error_frame(
                400,
                "invalid_request_error",
                "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue.",
            );
            e["error"]["code"] = json!("websocket_connection_limit_reached");
            return (Reply::Error(e), delay);
        }
        if let Some(p) = prev
            && !self.produced.contains(p)
        {
            let mut e = error_frame(
                400,
                "invalid_request_error",
                &format!("Previous response with id '{p}' not found."),
            );
            e["error"]["code"] = json!("previous_response_not_found");
            e["error"]["param"] = json!("previous_response_id");
            return (Reply::Error(e), delay);
        }
        if ws.reasoning {
            let mine = format!("enc:{account}:");
            let foreign = input.iter().any(|i| {
                i["type"] == "reasoning"
                    && i["encrypted_content"]
                        .as_str()
                        .is_some_and(|c| !c.starts_with(&mine))
            });
            if foreign {
                let mut e = error_frame(
                    400,
                    "invalid_request_error",
                    "The encrypted content could not be verified.",
                );
                e["error"]["code"] = json!("invalid_encrypted_content");
                return (Reply::Error(e), delay);
            }
        }
        let mut st = lock(&self.shared);
        let served = st.counters.get(&account).map(|c| c.served).unwrap_or(0);
        if let Some(q) = &faults.quota
            && served >= q.after_requests
        {
            let mut e = json!({"type": "error", "status": 429, "error": usage_limit_error(q)});
            e["headers"] = json!({"x-codex-primary-used-percent": "100",
                "x-codex-primary-window-minutes": "300",
                "x-codex-primary-reset-at": e["error"]["resets_at"].to_string()});
            return (Reply::Error(e), delay);
        }
        let turn = served + 1;
        let mut fire = |kind: &str, turns: &[u32]| {
            !prewarm
                && turns.contains(&turn)
                && st.ws_fired.insert(format!("{account}/{kind}/{turn}"))
        };
        if fire("close", &ws.close_on_turns) {
            return (Reply::Close, delay);
        }
        if fire("unauthorized", &ws.unauthorized_turns) {
            return (
                Reply::Error(error_frame(
                    401,
                    "invalid_request_error",
                    "Provided authentication token is invalid.",
                )),
                delay,
            );
        }
        let overloaded = fire("overloaded", &ws.overloaded_turns);
        let close_mid = fire("close_mid", &ws.close_mid_turns);
        st.next_seq += 1;
        let seq = st.next_seq;
        let id = format!("resp_mock_{seq}");
        if overloaded {
            let events = vec![
                json!({"type": "response.created", "response": {"id": id, "status": "in_progress"}}),
                json!({"type": "response.failed", "response": {"id": id, "status": "failed",
                    "error": {"code": "server_is_overloaded", "message": "The server is overloaded."}}}),
            ];
            return (
                Reply::Events {
                    events,
                    close_after: None,
                    id: None,
                },
                delay,
            );
        }
        let mut events = if prewarm {
            vec![
                json!({"type": "response.created", "response": {"id": id, "status": "in_progress", "output": []}}),
                json!({"type": "response.completed", "response": {"id": id, "status": "completed", "output": []}}),
            ]
        } else {
            st.counters.entry(account.clone()).or_default().served += 1;
            let text = scenario.reply.replace("{account}", &account);
            super::sse::response_values(seq, &text, scenario.deltas)
        };
        if ws.reasoning && !prewarm {
            events.insert(
                1,
                json!({"type": "response.output_item.done", "output_index": 0,
                "item": {"type": "reasoning", "id": format!("rs_mock_{seq}"), "summary": [],
                         "encrypted_content": format!("enc:{account}:{seq}")}}),
            );
        }
        if let Some(ev) = &faults.rate_limit_event {
            events.insert(1, ev.clone());
        }
        let close_after = close_mid.then_some(ws.close_after_events);
        (
            Reply::Events {
                events,
                close_after,
                id: Some(id),
            },
            delay,
        )
    }
}

/// `{"type":"error","status":N,"error":{"type":..,"message":..}}`.
fn error_frame(status: u16, kind: &str, message: &str) -> Value {
    json!({"type": "error", "status": status, "error": {"type": kind, "message": message}})
}
