//! Failover before the first byte of an event stream (HTTP): a `200 text/event-stream` model
//! answer whose first events fail (usage limit, overload) before any output is held back and
//! the request goes to the next account; anything else is handed on with the held events
//! first. What the events mean is decided by [`crate::policy::sse_first`]; the hold is bounded
//! by [`sse_first::MAX_HELD_BYTES`] and [`HOLD_AT_MOST`].

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};

use super::held::Held;
use super::prepare::strip_hop_by_hop;
use crate::gateway::pool::state::{Account, GatewayState};
use crate::net::body::{HeldThen, IdleTimeoutBody};
use crate::policy::sse_first::{self, Verdict};
use crate::policy::upstream::Outcome;
use crate::policy::usage_event;
use crate::store::now_ms;

/// Longest the first events are waited for (and at most half the idle timeout): after it the
/// stream is handed on undecided (the backend fails a spent account in its first events, right
/// after `response.created`).
pub const HOLD_AT_MOST: Duration = Duration::from_secs(10);

/// What the first events of a stream decided.
pub enum Peeked {
    /// Hand it on: the held bytes, then the rest as it comes.
    Deliver(http::Response<Body>),
    /// Failed before any output: how, and the answer to fall back to.
    Failed(Outcome, Held),
}

/// Whether `headers` announce an event stream.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Read `resp`'s first events until they decide, within [`HOLD_AT_MOST`] (and half the idle
/// timeout).
pub async fn peek(
    state: &GatewayState,
    acct: &Account,
    resp: http::Response<crate::net::client::Body>,
) -> Peeked {
    let (mut parts, incoming) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let idle = Duration::from_millis(state.config.idle_timeout_ms);
    let mut body = IdleTimeoutBody::new(incoming, idle);
    let mut held = BytesMut::new();
    // Never held as long as the idle timeout: the client must have the head well before a
    // stalled stream is cut.
    let hold = HOLD_AT_MOST.min(idle / 2);
    // One timer for the whole hold (not one per frame read).
    let hold_over = tokio::time::sleep(hold);
    tokio::pin!(hold_over);
    let mut ended = false;
    let mut broke = None;
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            // The hold is over: hand on what came and stream the rest.
            () = &mut hold_over => break,
        };
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    held.extend_from_slice(data);
                }
            }
            None => ended = true,
            // A broken stream: hand on what came, then the error (never a clean end).
            Some(Err(e)) => {
                broke = Some(e);
                break;
            }
        }
        if ended && held.is_empty() {
            break;
        }
        match sse_first::judge(&held, ended, now_ms()) {
            Verdict::Undecided => {}
            Verdict::Deliver => break,
            Verdict::Fail(outcome) => return failed(state, acct, parts.headers, held, outcome),
        }
    }
    let body = match broke {
        None => Body::new(HeldThen::new(held.freeze(), body)),
        // A broken stream: what came, then the error (never a clean end).
        Some(e) => {
            let error = futures_util::stream::once(std::future::ready(Err(e)));
            Body::new(HeldThen::new(held.freeze(), StreamBody::new(error)))
        }
    };
    Peeked::Deliver(http::Response::from_parts(parts, body))
}

/// The held failure: its usage observed, its cooldown left to the caller's classification, its
/// answer the backend's HTTP shape when it has one (a 429 for a usage limit), else the stream.
fn failed(
    state: &GatewayState,
    acct: &Account,
    mut headers: HeaderMap,
    held: BytesMut,
    outcome: Outcome,
) -> Peeked {
    let now = now_ms();
    for data in sse_first::events(&held, true) {
        if let Some(s) = usage_event::from_event(&data, now) {
            state.usage.observe(&acct.name, s);
        }
    }
    headers.remove(header::CONTENT_LENGTH);
    let held = match sse_first::failure_as_http(&held, now) {
        Some((status, body)) => {
            headers.insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Held {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
                headers,
                body: Bytes::from(body),
            }
        }
        None => Held {
            status: StatusCode::OK,
            headers,
            body: held.freeze(),
        },
    };
    tracing::info!(account = %acct.name, status = held.status.as_u16(), "event stream failed before any output; trying the next account");
    Peeked::Failed(outcome, held)
}
