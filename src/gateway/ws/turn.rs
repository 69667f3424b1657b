//! One turn of a gateway WebSocket session on one account ([`Session::attempt`], the
//! WebSocket counterpart of [`crate::gateway::forward::attempt::attempt`]): open the account's upstream
//! socket if need be, send the request (natively, or expanded to a full request when this
//! socket did not produce its `previous_response_id`), and relay the answer. Failures before
//! any output are settled with [`crate::gateway::forward::attempt::settle`] (cooldowns, refresh, backoff,
//! next account), so WebSocket traffic counts exactly like HTTP.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::session::{Session, Turn};
use super::upstream::{ConnectError, Upstream};
use crate::gateway::forward::attempt::{Attempted, Settled, settle};
use crate::gateway::forward::held::Held;
use crate::gateway::pool::state::Account;
use crate::net::ws::server::ServerSocket;
use crate::net::ws::socket::{Msg, Text};
use crate::policy::upstream::{self, Attempt, RetryPolicy};
use crate::policy::ws::{self as proto, Failure, Meaning, Request};
use crate::store::now_ms;

/// Reconnects of one account within one turn (closes, socket age limit, lost parents).
const MAX_RECONNECTS: u32 = 2;

/// How a relayed response ended.
enum Relayed {
    /// `response.completed`, with the response id and its output items.
    Completed {
        id: Option<String>,
        items: Vec<serde_json::Value>,
    },
    /// Codex got an answer that ends the turn (an error it must see, or output and then a
    /// broken stream): nothing more can be done for this turn.
    Forwarded { status: u16 },
    /// Failed before any output reached Codex: the turn may go elsewhere.
    Before(Failure, String),
    /// The upstream socket broke before any output.
    Broke,
    /// Codex left.
    Gone,
}

fn ok(status: u16) -> Attempted {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    Attempted::Delivered(r)
}

fn frame_status(text: &str) -> u16 {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("status").and_then(serde_json::Value::as_u64))
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(400)
}

impl Session {
    fn policy(&self) -> RetryPolicy {
        let cfg = &self.state.config;
        RetryPolicy {
            retries: cfg.upstream_retries,
            base_ms: cfg.upstream_retry_base_ms,
            max_ms: cfg.upstream_retry_max_ms,
            default_cooldown_s: cfg.cooldown_seconds,
        }
    }

    async fn drop_up(&mut self) {
        if let Some(mut up) = self.up.take() {
            let _ = tokio::time::timeout(Duration::from_millis(200), up.ws.close()).await;
        }
    }

    /// Open the upstream socket on `acct` (a token refresh included), sending Codex keepalive
    /// frames meanwhile.
    async fn open(
        &mut self,
        down: &mut ServerSocket,
        acct: &Arc<Account>,
    ) -> Result<Upstream, ConnectError> {
        let timeout = Duration::from_millis(self.state.config.timeout_ms);
        let connect = super::upstream::connect(&self.state, acct, &self.url, &self.base, timeout);
        self.quiet.during(down, connect).await
    }

    /// Serve `turn` on `acct`, or give up on this account.
    pub(super) async fn attempt(
        &mut self,
        down: &mut ServerSocket,
        acct: Arc<Account>,
        turn: &Turn,
    ) -> Attempted {
        let policy = self.policy();
        let mut tries = Attempt::default();
        let mut reconnects = 0u32;
        let mut stripped: Option<Request> = None;
        loop {
            if self
                .up
                .as_ref()
                .is_some_and(|u| u.account.name != acct.name)
            {
                self.drop_up().await;
            }
            if self.up.is_none() {
                match self.open(down, &acct).await {
                    Ok(up) => self.up = Some(up),
                    Err(ConnectError::Unusable) => return Attempted::Failed(None),
                    Err(ConnectError::Refused(held)) => {
                        self.state
                            .usage
                            .observe_headers(&acct.name, &held.headers, now_ms());
                        let outcome =
                            upstream::classify(held.status.as_u16(), Some(&held.body), now_ms());
                        let keep = held.duplicate();
                        let settled = settle(
                            &self.state,
                            &acct,
                            Some(outcome),
                            Some(held),
                            &mut tries,
                            &policy,
                            None,
                        );
                        match self.quiet.during(down, settled).await {
                            Settled::Again => continue,
                            // Nothing reached Codex: a failure upstream would hand on is the
                            // next account's chance instead.
                            Settled::Done(Attempted::Delivered(_)) => {
                                return Attempted::Failed(Some(keep));
                            }
                            Settled::Done(a) => return a,
                        }
                    }
                    Err(ConnectError::Failed(e)) => {
                        tracing::debug!(account = %acct.name, "upstream websocket: {e}");
                        let settled =
                            settle(&self.state, &acct, None, None, &mut tries, &policy, None);
                        match self.quiet.during(down, settled).await {
                            Settled::Again => continue,
                            Settled::Done(Attempted::Delivered(_)) => {
                                return Attempted::Failed(None);
                            }
                            Settled::Done(a) => return a,
                        }
                    }
                }
            }
            let last = self.up.as_ref().and_then(|u| u.last_response_id.clone());
            let native = stripped.is_none()
                && turn.req.as_ref().is_none_or(|r| {
                    r.previous_response_id()
                        .is_none_or(|p| Some(p) == last.as_deref())
                });
            let sent_full = stripped.as_ref().or(turn.full.as_ref());
            let text: Text = if native {
                turn.text.clone()
            } else if let Some(full) = sent_full {
                full.to_text().into()
            } else {
                // A delta whose parent lives on a socket that is gone: Codex re-sends the
                // full input on a new socket when told so (0.171, verified).
                self.drop_up().await;
                return self
                    .deliver(down, proto::previous_not_found_frame(), 400)
                    .await;
            };
            let sent_at = now_ms();
            match self.relay(down, text).await {
                Relayed::Completed { id, items } => {
                    match (sent_full, &id) {
                        (Some(full), Some(id)) => self.mirror.record(full, id, items),
                        _ => self.mirror.clear(),
                    }
                    if let Some(up) = self.up.as_mut() {
                        up.last_response_id = id;
                    }
                    self.answered = true;
                    self.state.record_success(&acct, sent_at, now_ms());
                    return ok(200);
                }
                Relayed::Forwarded { status } => {
                    self.answered = true;
                    self.mirror.clear();
                    return ok(status);
                }
                Relayed::Gone => {
                    self.ended = true;
                    self.answered = true;
                    return ok(499);
                }
                Relayed::Broke => {
                    self.drop_up().await;
                    reconnects += 1;
                    if reconnects > MAX_RECONNECTS {
                        let frame = proto::gateway_error_frame(
                            502,
                            "upstream_closed",
                            "upstream closed the socket before answering",
                        );
                        return self.deliver(down, frame, 502).await;
                    }
                }
                Relayed::Before(failure, frame) => {
                    let creds = self.up.as_ref().and_then(|u| u.creds.clone());
                    self.drop_up().await;
                    match failure {
                        // A new socket: the request goes again, expanded (or, if it cannot be,
                        // Codex is asked for the full input).
                        Failure::ConnectionLimit | Failure::PreviousNotFound
                            if reconnects < MAX_RECONNECTS =>
                        {
                            reconnects += 1;
                        }
                        Failure::InvalidEncryptedContent if stripped.is_none() => {
                            match sent_full
                                .or(turn.req.as_ref())
                                .and_then(Request::without_encrypted_reasoning)
                            {
                                Some(s) => stripped = Some(s),
                                None => return self.deliver(down, frame, 400).await,
                            }
                        }
                        Failure::Upstream(outcome) => {
                            let held = held_of(&frame);
                            let keep = held.duplicate();
                            let settled = settle(
                                &self.state,
                                &acct,
                                Some(outcome),
                                Some(held),
                                &mut tries,
                                &policy,
                                creds.as_deref(),
                            );
                            match self.quiet.during(down, settled).await {
                                Settled::Again => {}
                                // Overload after the retries, before any output: the next
                                // account may serve the turn (if none can, Codex gets the
                                // last failure).
                                Settled::Done(Attempted::Delivered(_)) => {
                                    return Attempted::Failed(Some(keep));
                                }
                                Settled::Done(a) => return a,
                            }
                        }
                        _ => {
                            let status = frame_status(&frame);
                            return self.deliver(down, frame_never_401(&frame), status).await;
                        }
                    }
                }
            }
        }
    }

    /// Hand Codex a final frame of this turn.
    async fn deliver(&mut self, down: &mut ServerSocket, frame: String, status: u16) -> Attempted {
        self.answered = true;
        self.mirror.clear();
        self.quiet.heard();
        if !down.send_text(frame).await {
            self.ended = true;
        }
        ok(status)
    }

    /// Send `text` upstream and relay the answer to Codex until the response ends.
    async fn relay(&mut self, down: &mut ServerSocket, text: Text) -> Relayed {
        let idle = Duration::from_millis(self.state.config.idle_timeout_ms);
        let Some(up) = self.up.as_mut() else {
            return Relayed::Broke;
        };
        if !up.ws.send_text(text).await {
            return Relayed::Broke;
        }
        let mut held: Vec<Text> = Vec::new();
        let mut started = false;
        let mut items = Vec::new();
        // Only an upstream frame moves the idle deadline (not a keepalive, not a Codex frame).
        let mut silent_until = tokio::time::Instant::now() + idle;
        loop {
            let Some(up) = self.up.as_mut() else {
                return Relayed::Broke;
            };
            // Until the first output the frames are held: Codex hears keepalives instead.
            let keepalive = tokio::time::sleep_until(self.quiet.due());
            let event = tokio::select! {
                m = tokio::time::timeout_at(silent_until, up.ws.recv()) => Ok(m),
                m = down.recv() => Err(m),
                _ = keepalive, if !started => {
                    if !self.quiet.send(down).await {
                        return Relayed::Gone;
                    }
                    continue;
                }
            };
            if matches!(event, Ok(Ok(Some(_)))) {
                silent_until = tokio::time::Instant::now() + idle;
            }
            let t = match event {
                Err(Some(Msg::Text(t))) => {
                    // One request in flight per socket; a second one waits for this turn.
                    self.pending.push_back(t);
                    continue;
                }
                Err(None) => return Relayed::Gone,
                Err(Some(_)) => continue,
                Ok(Ok(Some(Msg::Text(t)))) => t,
                Ok(Ok(Some(Msg::Binary(b)))) => {
                    let _ = down.send_binary(b).await;
                    continue;
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    if !started {
                        return Relayed::Broke;
                    }
                    // Output already reached Codex: close its socket too, so it retries the
                    // turn on a new one (it does, with the full input).
                    self.ended = true;
                    return Relayed::Forwarded { status: 502 };
                }
                Ok(Ok(Some(Msg::Control))) => continue,
            };
            self.observe(&t);
            let meaning = proto::classify(&t, now_ms());
            let last = match meaning {
                Meaning::Preamble if !started => {
                    held.push(t);
                    continue;
                }
                Meaning::Failed(f) if !started && f != Failure::Other => {
                    return Relayed::Before(f, t.as_str().to_string());
                }
                m => m,
            };
            started = true;
            for h in held.drain(..) {
                if !down.send_text(h).await {
                    return Relayed::Gone;
                }
            }
            let status = matches!(last, Meaning::Failed(_)).then(|| frame_status(&t));
            self.quiet.heard();
            if !down.send_text(t).await {
                return Relayed::Gone;
            }
            match last {
                Meaning::Item(v) => items.push(v),
                Meaning::Completed { id } => return Relayed::Completed { id, items },
                Meaning::Failed(_) => {
                    return Relayed::Forwarded {
                        status: status.unwrap_or(400),
                    };
                }
                _ => {}
            }
        }
    }
}

/// An error frame as an HTTP-shaped failure for [`settle`].
fn held_of(frame: &str) -> Held {
    let v: serde_json::Value = serde_json::from_str(frame).unwrap_or_default();
    let status = StatusCode::from_u16(frame_status(frame)).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = serde_json::json!({"error": v.get("error").cloned().unwrap_or_default()});
    Held {
        status,
        headers: HeaderMap::new(),
        body: body.to_string().into(),
    }
}

/// An upstream error frame as Codex may see it: a 401/403 becomes a 502 (Codex would refresh
/// and spend its own refresh token on a 401).
fn frame_never_401(frame: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(frame) else {
        return frame.to_string();
    };
    if matches!(
        v.get("status").and_then(serde_json::Value::as_u64),
        Some(401 | 403)
    ) {
        v["status"] = 502.into();
        return v.to_string();
    }
    frame.to_string()
}
