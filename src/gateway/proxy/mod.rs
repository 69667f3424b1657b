//! Forwarding, in named phases (like pingora's): every method and path that is not one of the
//! gateway's own routes goes upstream with the chosen account's credentials.
//!
//! 1. [`prepare`]: limits, the upstream URL, header hygiene, the session: a
//!    [`Replay`](prepare::Replay).
//! 2. [`attempt`]: one account: credentials, send, classify ([`crate::policy::upstream`]).
//! 3. [`passes`]: the loop over accounts ([`crate::policy::route::choose`] picks each one)
//!    and the final answer ([`Served`]).
//!
//! The gateway's own answers are [`GatewayError`](super::error::GatewayError)s. The handler
//! [`forward`] ties the phases together, logs one line and counts the request.

pub(crate) mod attempt;
pub(crate) mod held;
pub(crate) mod passes;
pub(crate) mod prepare;
pub(crate) mod sse_first;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};

pub use passes::Served;
pub use prepare::{ACCESS_KEY_HEADER, Prepared, upstream_url};

use super::state::GatewayState;

/// Whether a request asks to be upgraded to a WebSocket.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Forward anything that is not one of the gateway's own routes
/// ([`super::server::OWN_ROUTES`]).
pub async fn forward(state: &Arc<GatewayState>, req: Request) -> Response {
    let started = Instant::now();
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let uri = parts.uri.clone();
    let served = if is_websocket_upgrade(&parts.headers) {
        // Responses over WebSocket (426 with --no-websocket: Codex then uses HTTP).
        Served::local(crate::gateway::ws::handle(state.clone(), parts).await)
    } else {
        match prepare::prepare(&state.config, parts, body).await {
            Ok(Prepared::Route(replay)) => passes::serve(state, &replay).await,
            Ok(Prepared::AsClient(replay)) => {
                Served::local(attempt::as_client(state, replay).await)
            }
            Err(e) => Served::local(e.into_response()),
        }
    };
    let account = served.account.as_deref().map(|a| a.name.as_str());
    let status = served.response.status().as_u16();
    let elapsed = started.elapsed();
    // One line per request. A plain success is a debug line (`CAO_LOG=debug`): at info, the
    // formatting and the write cost more than the rest of a forward. What a person looks for
    // in the log (a switch, a refusal, an upstream error) stays at info.
    macro_rules! request_line {
        ($level:expr) => {
            tracing::event!(
                $level,
                method = %method,
                path = %uri.path(),
                account = %account.unwrap_or("-"),
                status,
                ms = elapsed.as_millis() as u64,
                switched = served.switched,
                "request"
            )
        };
    }
    if status < 400 && !served.switched {
        request_line!(tracing::Level::DEBUG);
    } else {
        request_line!(tracing::Level::INFO);
    }
    state.metrics.request(account, status, elapsed);
    served.response
}
