//! One forwarded HTTP request through the phases: [`super::prepare`], then
//! [`super::passes`] (or once with the client's own credentials, [`super::attempt::as_client`]),
//! and [`logged`], the one log line and the metrics of every request the door does not answer
//! itself (a WebSocket upgrade included).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use super::attempt;
use super::passes::{self, Served};
use super::prepare::{self, Prepared};
use crate::gateway::pool::state::GatewayState;

/// Forward anything that is not one of the gateway's own routes
/// ([`crate::gateway::front::door`] sends those to their handlers).
pub async fn forward(state: &Arc<GatewayState>, req: Request) -> Response {
    logged(state, req, |parts, body| async move {
        match prepare::prepare(&state.config, parts, body).await {
            Ok(Prepared::Route(replay)) => passes::serve(state, &replay).await,
            Ok(Prepared::AsClient(replay)) => {
                Served::local(attempt::as_client(state, replay).await)
            }
            Err(e) => Served::local(e.into_response()),
        }
    })
    .await
}

/// Serve `req` with `serve`, then write its one log line and count it.
pub async fn logged<F, Fut>(state: &Arc<GatewayState>, req: Request, serve: F) -> Response
where
    F: FnOnce(http::request::Parts, Body) -> Fut,
    Fut: Future<Output = Served>,
{
    let started = Instant::now();
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let uri = parts.uri.clone();
    let served = serve(parts, body).await;
    let status = served.response.status().as_u16();
    RequestLine {
        method: method.as_str(),
        path: uri.path(),
        account: served.account.as_deref().map(|a| a.name.as_str()),
        status,
        switched: served.switched,
        elapsed: started.elapsed(),
    }
    .record(state);
    served.response
}

/// The one log line and the metrics of one request, for both transports: an HTTP request
/// ([`logged`]) and one WebSocket turn (`gateway::ws`), which reports `method` `WS`.
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The account that served it, if one did.
    pub account: Option<&'a str>,
    /// What the client got (a WebSocket turn's error frame carries its own).
    pub status: u16,
    pub switched: bool,
    pub elapsed: Duration,
}

impl RequestLine<'_> {
    /// Write the line and count the request.
    pub fn record(self, state: &GatewayState) {
        let RequestLine {
            method,
            path,
            account,
            status,
            switched,
            elapsed,
        } = self;
        // A plain success is a debug line (`CAO_LOG=debug`): at info, the formatting and the
        // write cost more than the rest of a forward. What a person looks for in the log (a
        // switch, a refusal, an upstream error) stays at info.
        macro_rules! request_line {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    method = %method,
                    path = %path,
                    account = %account.unwrap_or("-"),
                    status,
                    ms = elapsed.as_millis() as u64,
                    switched,
                    "request"
                )
            };
        }
        if status < 400 && !switched {
            request_line!(tracing::Level::DEBUG);
        } else {
            request_line!(tracing::Level::INFO);
        }
        state.metrics.request(account, status, elapsed);
    }
}
