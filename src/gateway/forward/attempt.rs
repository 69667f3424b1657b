//! Phase 2, attempt: one request on one account. Put the account's credentials on it, send it,
//! and classify the answer ([`crate::policy::upstream`]): deliver it, retry on the same account
//! (5xx with backoff, 401 after a token refresh), or give up on this account (usage limit, rate
//! limit, refused credentials), recording what happened to the account.
//!
//! The steps are separate functions so other transports reuse them: [`authorize`] (credentials
//! on a set of headers), [`send`] (one HTTP exchange with the timeout), [`judge`] (stream a
//! good answer back, or hold a retryable one and classify it) and [`settle`] (what a classified
//! failure does to the account and what comes next). The WebSocket transport opens its upstream
//! handshake with `authorize` and settles its error frames with `settle`. `judge` also holds
//! the first events of a 200 event stream ([`super::sse_first`]): one that fails before any
//! output goes to the next account like a 429 would.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use super::held::Held;
use super::prepare::{Replay, strip_hop_by_hop};
use super::sse_first;
use crate::gateway::error::GatewayError;
use crate::gateway::pool::account::Creds;
use crate::gateway::pool::credentials;
use crate::gateway::pool::state::{Account, GatewayState};
use crate::gateway::tokens::broker::CredError;
use crate::net::body::IdleTimeoutBody;
use crate::policy::upstream::{self, Attempt, Next, Outcome, RetryPolicy};
use crate::store::now_ms;

/// Largest error body kept in memory to classify and, if needed, hand back.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// What one account made of a request.
#[derive(Debug)]
pub enum Attempted {
    /// An answer for the client: upstream's (streaming), or the gateway's own error.
    Delivered(Response),
    /// Move on to the next account; the answer to fall back to if nothing else works.
    Failed(Option<Held>),
}

/// The account cannot be used for this request (its failure is recorded).
#[derive(Debug)]
pub struct Unusable;

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendError {
    /// Connection failed (or broke before an answer).
    Connect(crate::net::client::Error),
    /// No answer within `--timeout-ms`.
    Timeout,
}

/// The account's answer, seen before the client sees anything.
#[derive(Debug)]
pub enum Judged {
    /// Hand it on (streaming): not an answer the gateway acts on.
    Deliver(Response),
    /// Held back and classified: a retry, a refresh or the next account may follow.
    Held(Outcome, Held),
    /// A 200 event stream that failed before any output ([`super::sse_first`]): like
    /// [`Judged::Held`], except that when this account's retries are over the request moves to
    /// the next account instead of delivering the failure.
    FailedStream(Outcome, Held),
}

/// Try `replay` on `acct` until it is delivered or this account is given up.
pub async fn attempt(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    replay: &Replay,
    policy: &RetryPolicy,
) -> Attempted {
    let mut tries = Attempt::default();
    loop {
        let mut headers = replay.headers.clone();
        let Ok(creds) = authorize(state, acct, &mut headers).await else {
            return Attempted::Failed(None);
        };
        let mut moved_on = None;
        let sent_at = now_ms();
        let (outcome, held) = match send(state, replay, headers).await {
            Ok(resp) => match judge(state, acct, resp, sent_at).await {
                Judged::Deliver(resp) => return Attempted::Delivered(resp),
                Judged::Held(outcome, held) => (Some(outcome), Some(held)),
                Judged::FailedStream(outcome, held) => {
                    moved_on = Some(held.duplicate());
                    (Some(outcome), Some(held))
                }
            },
            Err(SendError::Connect(e)) => {
                tracing::debug!(account = %acct.name, "upstream connection error: {e}");
                (None, None)
            }
            Err(SendError::Timeout) => {
                tracing::debug!(account = %acct.name, "upstream timed out");
                (None, None)
            }
        };
        match settle(
            state,
            acct,
            outcome,
            held,
            &mut tries,
            policy,
            creds.as_deref(),
        )
        .await
        {
            // Overload before any output, after the retries: the next account may serve it
            // (if none can, the client gets this stream as upstream sent it).
            Settled::Done(Attempted::Delivered(_)) if moved_on.is_some() => {
                return Attempted::Failed(moved_on);
            }
            Settled::Done(a) => return a,
            Settled::Again => {}
        }
    }
}

/// Put `acct`'s credentials (bearer, its `chatgpt-account-id`, its cookies) on `headers`,
/// refreshing the tokens first if they expire soon. With `--passthrough-auth` nothing is put
/// on and `None` is returned.
pub async fn authorize(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    headers: &mut HeaderMap,
) -> Result<Option<Arc<Creds>>, Unusable> {
    if state.config.passthrough_auth {
        return Ok(None);
    }
    let creds = match credentials::credentials(state, acct, now_ms()).await {
        Ok(c) => c,
        Err(e) => {
            let now = now_ms();
            let cool = matches!(e, CredError::Transient(_))
                .then_some(now + upstream::AUTH_FAILURE_COOLDOWN_MS);
            state.record_failure(acct, now, cool, false, &e.to_string());
            return Err(Unusable);
        }
    };
    if let Some(cookie) = acct.cookie_header() {
        headers.insert(header::COOKIE, cookie);
    }
    creds.put_on(headers);
    Ok(Some(creds))
}

/// One HTTP exchange of `replay` with `headers`, within `--timeout-ms` for the answer's head.
pub async fn send(
    state: &GatewayState,
    replay: &Replay,
    headers: HeaderMap,
) -> Result<http::Response<crate::net::client::Body>, SendError> {
    let mut req = http::Request::new(Full::new(replay.body.clone()));
    *req.method_mut() = replay.method.clone();
    *req.uri_mut() = replay.uri.clone();
    *req.headers_mut() = headers;
    let timeout = Duration::from_millis(state.config.timeout_ms);
    match tokio::time::timeout(timeout, state.client.request(req)).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(SendError::Connect(e)),
        Err(_) => Err(SendError::Timeout),
    }
}

/// Look at `acct`'s answer before the client does: an answer that cannot be retried is a
/// success for the account and streams back as it arrives (its usage observed on the way);
/// a retryable one (401/403/429/5xx) is held, its bounded body read, and classified.
pub async fn judge(
    state: &Arc<GatewayState>,
    acct: &Account,
    resp: http::Response<crate::net::client::Body>,
    sent_at_ms: i64,
) -> Judged {
    if !state.config.passthrough_auth {
        acct.store_cookies(resp.headers());
    }
    let status = resp.status();
    if status == StatusCode::OK && sse_first::is_event_stream(resp.headers()) {
        return match sse_first::peek(state, acct, resp).await {
            sse_first::Peeked::Deliver(resp) => {
                let now = now_ms();
                state.record_success(acct, sent_at_ms, now);
                Judged::Deliver(state.usage.observe_response(&acct.name, resp, now))
            }
            sse_first::Peeked::Failed(outcome, held) => Judged::FailedStream(outcome, held),
        };
    }
    if !upstream::is_retryable_status(status.as_u16()) {
        let now = now_ms();
        state.record_success(acct, sent_at_ms, now);
        let resp = stream_back(state, resp);
        return Judged::Deliver(state.usage.observe_response(&acct.name, resp, now));
    }
    let (parts, incoming) = resp.into_parts();
    let timeout = Duration::from_millis(state.config.timeout_ms);
    let body = match tokio::time::timeout(timeout, Limited::new(incoming, MAX_ERROR_BODY).collect())
        .await
    {
        Ok(Ok(c)) => c.to_bytes(),
        _ => Bytes::new(),
    };
    let mut headers = parts.headers;
    state.usage.observe_headers(&acct.name, &headers, now_ms());
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    let outcome = upstream::classify(status.as_u16(), Some(&body), now_ms());
    let held = Held {
        status,
        headers,
        body,
    };
    Judged::Held(outcome, held)
}

/// What follows a failed exchange on one account.
pub enum Settled {
    /// The attempt on this account is over.
    Done(Attempted),
    /// Try this account again (after a backoff or a refresh already done).
    Again,
}

/// Decide and do what follows `outcome` (None: no answer at all) on `acct`: record the
/// failure and its cooldown, wait out a backoff, or refresh the tokens (`creds` are the ones
/// just refused).
pub async fn settle(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    outcome: Option<Outcome>,
    held: Option<Held>,
    tries: &mut Attempt,
    policy: &RetryPolicy,
    creds: Option<&Creds>,
) -> Settled {
    let cfg = &state.config;
    let jitter = if cfg.upstream_retry_jitter_ms > 0 {
        fastrand::u64(0..=cfg.upstream_retry_jitter_ms)
    } else {
        0
    };
    let now = now_ms();
    match upstream::next_step(outcome.as_ref(), *tries, policy, now, jitter) {
        Next::Deliver => Settled::Done(Attempted::Delivered(match held {
            Some(h) => h.into_response(),
            None => {
                state.record_failure(acct, now, None, false, "upstream unreachable");
                GatewayError::UpstreamUnreachable.into_response()
            }
        })),
        Next::RetrySame { delay_ms } => {
            tries.retries_used += 1;
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            Settled::Again
        }
        Next::RefreshAndRetry => {
            tries.refreshed = true;
            if cfg.passthrough_auth {
                let resp = held.map_or_else(
                    || GatewayError::ClientCredentialsRefused.into_response(),
                    IntoResponse::into_response,
                );
                return Settled::Done(Attempted::Delivered(resp));
            }
            let stale = creds.map(|c| c.tokens.access_token.as_str());
            match credentials::refresh(state, acct, stale).await {
                Ok(_) => Settled::Again,
                Err(e) => {
                    let cool = (!matches!(e, CredError::NeedsLogin))
                        .then_some(now + upstream::AUTH_FAILURE_COOLDOWN_MS);
                    state.record_failure(acct, now, cool, false, &e.to_string());
                    Settled::Done(Attempted::Failed(held))
                }
            }
        }
        Next::NextAccount { cooldown_until_ms } => {
            let quota = matches!(outcome, Some(Outcome::UsageLimit { .. }));
            let why = match &outcome {
                Some(Outcome::UsageLimit { .. }) => "usage limit reached",
                Some(Outcome::RateLimited) => "rate limited",
                _ => "upstream refused the credentials",
            };
            state.record_failure(acct, now, cooldown_until_ms, quota, why);
            if quota {
                tracing::info!(account = %acct.name, until = %cooldown_until_ms.map_or_else(|| "unknown".to_string(), crate::render::time::moment_from_now), "usage limit reached; cooling down");
            }
            Settled::Done(Attempted::Failed(held))
        }
    }
}

/// Forward once with the client's own credentials, still in `replay`'s headers (see
/// [`crate::policy::route::is_client_identity_call`]); no account is chosen or charged. Not
/// used with an access key, which a client may send as its bearer.
pub async fn as_client(state: &GatewayState, mut replay: Replay) -> Response {
    let headers = std::mem::take(&mut replay.headers);
    match send(state, &replay, headers).await {
        Ok(resp) => stream_back(state, resp),
        Err(SendError::Connect(e)) => GatewayError::UpstreamConnect(e.to_string()).into_response(),
        Err(SendError::Timeout) => GatewayError::UpstreamTimeout.into_response(),
    }
}

/// Hand an upstream answer to the client as it arrives, ending it if it goes silent too long.
pub fn stream_back(
    state: &GatewayState,
    resp: http::Response<crate::net::client::Body>,
) -> Response {
    let (mut parts, incoming) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let idle = Duration::from_millis(state.config.idle_timeout_ms);
    let body = Body::new(IdleTimeoutBody::new(incoming, idle));
    Response::from_parts(parts, body)
}
