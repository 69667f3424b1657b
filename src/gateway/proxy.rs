//! Forwarding: every method and path goes upstream with the chosen account's credentials; usage
//! limits, rate limits, auth failures and 5xx are handled per [`crate::policy::upstream`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::json;

use super::body::IdleTimeoutBody;
use super::state::{Account, GatewayState};
use super::tokens::{self, CredError};
use crate::policy::upstream::{self, Attempt, Next, Outcome, RetryPolicy};
use crate::store::now_ms;

/// Largest error body kept in memory to classify and, if needed, hand back.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// Headers that describe one hop, never forwarded (RFC 9110 7.6.1), plus `host`.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that identify the client's own account; replaced unless `--passthrough-auth`.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "chatgpt-account-id"];

/// The header clients send the access key in.
pub const ACCESS_KEY_HEADER: &str = "x-cao-key";

pub fn json_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"type": kind, "message": message}}).to_string();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Names listed in a `Connection` header (also hop-by-hop).
fn connection_listed(h: &HeaderMap) -> Vec<HeaderName> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    for n in connection_listed(h) {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
}

/// Where a request path goes upstream: `base_url + path`, except that a path under
/// `/backend-api/` goes to the same path on the base URL's origin when the base URL itself lives
/// under `/backend-api` (the default `https://chatgpt.com/backend-api/codex`). So Codex can keep
/// its own ChatGPT paths (`chatgpt_base_url = <gateway>/backend-api` makes it call
/// `/backend-api/wham/usage` and friends) while model calls (`/responses`, `/models`) go under
/// `/backend-api/codex`.
pub fn upstream_url(base_url: &str, path_and_query: &str) -> String {
    if path_and_query.starts_with("/backend-api/")
        && let Some(at) = base_url.find("/backend-api")
    {
        return format!("{}{}", &base_url[..at], path_and_query);
    }
    format!("{base_url}{path_and_query}")
}

/// The fallback handler: forward anything that is not one of the gateway's own routes.
pub async fn forward(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let started = Instant::now();
    state
        .counters
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let is_ws = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let (resp, account, switched) = if is_ws {
        // Codex tries WebSocket first; 426 makes it use HTTP for the rest of the session at once.
        let r = json_error(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_unsupported",
            "cao gateway speaks HTTP only; use POST /responses",
        );
        (r, None, false)
    } else {
        run(&state, parts, body).await
    };
    tracing::info!(
        method = %method,
        path = %path,
        account = %account.as_deref().unwrap_or("-"),
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        switched,
        "request"
    );
    state.metrics.request(
        account.as_deref(),
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

/// An answer held back to decide on (its body is small: an error).
struct Held {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Held {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() = self.status;
        *r.headers_mut() = self.headers;
        r
    }
}

async fn run(
    state: &Arc<GatewayState>,
    parts: http::request::Parts,
    body: Body,
) -> (Response, Option<String>, bool) {
    let cfg = &state.config;
    let limit = usize::try_from(cfg.max_body_bytes).unwrap_or(usize::MAX);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            &format!(
                "request body is larger than the gateway limit of {} bytes (--max-body-bytes)",
                cfg.max_body_bytes
            ),
        )
    };
    if declared.is_some_and(|n| n > cfg.max_body_bytes) {
        return (too_large(), None, false);
    }
    // The body is kept so it can be replayed on another account.
    let body = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return (too_large(), None, false),
        Err(e) => {
            return (
                json_error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("could not read the request body: {e}"),
                ),
                None,
                false,
            );
        }
    };
    let Some(path_q) = parts.uri.path_and_query().map(|p| p.as_str()) else {
        return (
            json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "request has no path",
            ),
            None,
            false,
        );
    };
    let uri: http::Uri = match upstream_url(&cfg.base_url, path_q).parse() {
        Ok(u) => u,
        Err(_) => {
            return (
                json_error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "request path is not a valid URI",
                ),
                None,
                false,
            );
        }
    };
    let session =
        crate::policy::route::session_key(|h| parts.headers.get(h).and_then(|v| v.to_str().ok()))
            .map(str::to_string);
    let mut base_headers = parts.headers.clone();
    strip_hop_by_hop(&mut base_headers);
    base_headers.remove(header::HOST);
    base_headers.remove(header::CONTENT_LENGTH);
    base_headers.remove(ACCESS_KEY_HEADER);
    if crate::policy::route::is_client_identity_call(parts.method.as_str(), parts.uri.path())
        && !cfg.passthrough_auth
        && cfg.access_key.is_none()
        && parts.headers.contains_key(header::AUTHORIZATION)
    {
        // The client's credentials are still in `base_headers` here, on purpose.
        let resp = forward_as_client(state, &parts.method, &uri, base_headers, body).await;
        return (resp, None, false);
    }
    if !cfg.passthrough_auth {
        for h in CREDENTIAL_HEADERS {
            base_headers.remove(h);
        }
    }
    let policy = RetryPolicy {
        retries: cfg.upstream_retries,
        base_ms: cfg.upstream_retry_base_ms,
        max_ms: cfg.upstream_retry_max_ms,
        default_cooldown_s: cfg.cooldown_seconds,
    };
    let mut tried: Vec<String> = Vec::new();
    let mut first: Option<String> = None;
    let mut last_failure: Option<Held> = None;
    let mut soonest: Option<i64> = None;
    for _pass in 0..cfg.max_retry_passes.max(1) {
        tried.clear();
        loop {
            let tried_refs: Vec<&str> = tried.iter().map(String::as_str).collect();
            let acct = match state.choose(session.as_deref(), &tried_refs, now_ms()) {
                Ok(a) => a,
                Err(s) => {
                    soonest = s;
                    break;
                }
            };
            let switched = first.as_ref().is_some_and(|f| f != &acct.name);
            first.get_or_insert_with(|| acct.name.clone());
            match attempt_account(
                state,
                &acct,
                &parts.method,
                &uri,
                &base_headers,
                &body,
                &policy,
            )
            .await
            {
                AccountResult::Delivered(resp) => {
                    if switched {
                        state
                            .counters
                            .switches
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let failed = last_failure
                            .as_ref()
                            .map(|h| (h.status.as_u16(), &h.body[..]));
                        let why = super::routing::switch_reason(failed, now_ms());
                        let from = first.as_deref().unwrap_or("-");
                        state.metrics.switched(from, &acct.name);
                        state
                            .routing
                            .record_switch(from, &acct.name, &why, now_ms());
                    }
                    if let Some(s) = &session
                        && resp.status().is_success()
                    {
                        state.pin_session(s, &acct, now_ms());
                    }
                    return (resp, Some(acct.name.clone()), switched);
                }
                AccountResult::Failed(held) => {
                    if held.is_some() {
                        last_failure = held;
                    }
                    tried.push(acct.name.clone());
                }
            }
        }
    }
    let switched = tried.len() > 1;
    let now = now_ms();
    let last_was_limit = last_failure.as_ref().is_none_or(|h| {
        matches!(
            upstream::classify(h.status.as_u16(), Some(&h.body), now),
            Outcome::UsageLimit { .. }
        )
    });
    if let Some(reset) = soonest.filter(|_| last_was_limit) {
        let body = upstream::all_spent_body(Some(reset), now, cfg.cooldown_seconds).to_string();
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return (r, first, switched);
    }
    match last_failure {
        Some(held) => (held.into_response(), first, switched),
        None => (
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_usable_account",
                "no account is usable: every account needs a login (cao add <name>) or none is registered",
            ),
            first,
            switched,
        ),
    }
}

enum AccountResult {
    Delivered(Response),
    /// Move on; the answer to fall back to if nothing else works.
    Failed(Option<Held>),
}

#[allow(clippy::too_many_arguments)]
async fn attempt_account(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    method: &http::Method,
    uri: &http::Uri,
    base_headers: &HeaderMap,
    body: &Bytes,
    policy: &RetryPolicy,
) -> AccountResult {
    let cfg = &state.config;
    let mut attempt = Attempt::default();
    loop {
        let mut headers = base_headers.clone();
        let creds = if cfg.passthrough_auth {
            None
        } else {
            match tokens::credentials(state, acct, now_ms()).await {
                Ok(c) => Some(c),
                Err(e) => {
                    let now = now_ms();
                    let cool = matches!(e, CredError::Transient(_))
                        .then_some(now + upstream::AUTH_FAILURE_COOLDOWN_MS);
                    state.record_failure(acct, now, cool, false, &e.to_string());
                    return AccountResult::Failed(None);
                }
            }
        };
        if let Some(c) = &creds {
            if let Some(cookie) = acct.cookie_header() {
                headers.insert(header::COOKIE, cookie);
            }
            headers.insert(header::AUTHORIZATION, c.bearer.clone());
            if let Some(a) = &c.account_header {
                headers.insert("chatgpt-account-id", a.clone());
            }
        }
        let mut req = http::Request::new(Full::new(body.clone()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = headers;
        let sent = tokio::time::timeout(
            Duration::from_millis(cfg.timeout_ms),
            state.client.request(req),
        )
        .await;
        let (outcome, held) = match sent {
            Ok(Ok(resp)) => {
                if !cfg.passthrough_auth {
                    acct.store_cookies(resp.headers());
                }
                let status = resp.status();
                if !upstream::is_retryable_status(status.as_u16()) {
                    state.record_success(acct, now_ms());
                    let resp = stream_back(state, resp);
                    return AccountResult::Delivered(
                        state.usage.observe_response(&acct.name, resp),
                    );
                }
                let (parts, incoming) = resp.into_parts();
                let bytes = match tokio::time::timeout(
                    Duration::from_millis(cfg.timeout_ms),
                    Limited::new(incoming, MAX_ERROR_BODY).collect(),
                )
                .await
                {
                    Ok(Ok(c)) => c.to_bytes(),
                    _ => Bytes::new(),
                };
                let mut h = parts.headers;
                state.usage.observe_headers(&acct.name, &h, now_ms());
                strip_hop_by_hop(&mut h);
                h.remove(header::CONTENT_LENGTH);
                let outcome = upstream::classify(status.as_u16(), Some(&bytes), now_ms());
                (
                    Some(outcome),
                    Some(Held {
                        status,
                        headers: h,
                        body: bytes,
                    }),
                )
            }
            Ok(Err(e)) => {
                tracing::debug!(account = %acct.name, "upstream connection error: {e}");
                (None, None)
            }
            Err(_) => {
                tracing::debug!(account = %acct.name, "upstream timed out");
                (None, None)
            }
        };
        let jitter = if cfg.upstream_retry_jitter_ms > 0 {
            fastrand::u64(0..=cfg.upstream_retry_jitter_ms)
        } else {
            0
        };
        let now = now_ms();
        match upstream::next_step(outcome.as_ref(), attempt, policy, now, jitter) {
            Next::Deliver => {
                return AccountResult::Delivered(match held {
                    Some(h) => h.into_response(),
                    None => {
                        state.record_failure(acct, now, None, false, "upstream unreachable");
                        json_error(
                            StatusCode::BAD_GATEWAY,
                            "upstream_unreachable",
                            "cao gateway could not reach the upstream (connection failed or timed out after retries)",
                        )
                    }
                });
            }
            Next::RetrySame { delay_ms } => {
                attempt.retries_used += 1;
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            Next::RefreshAndRetry => {
                attempt.refreshed = true;
                if cfg.passthrough_auth {
                    return AccountResult::Delivered(held.map(Held::into_response).unwrap_or_else(
                        || {
                            json_error(
                                StatusCode::UNAUTHORIZED,
                                "unauthorized",
                                "upstream refused the client's credentials",
                            )
                        },
                    ));
                }
                let stale = creds.as_ref().map(|c| c.tokens.access_token.clone());
                if let Err(e) = tokens::refresh(state, acct, stale.as_deref()).await {
                    let cool = (!matches!(e, CredError::NeedsLogin))
                        .then_some(now + upstream::AUTH_FAILURE_COOLDOWN_MS);
                    state.record_failure(acct, now, cool, false, &e.to_string());
                    return AccountResult::Failed(held);
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
                    tracing::info!(account = %acct.name, until_ms = cooldown_until_ms.unwrap_or(0), "usage limit reached; cooling down");
                }
                return AccountResult::Failed(held);
            }
        }
    }
}

/// Hand an upstream answer to the client as it arrives, ending it if it goes silent too long.
/// Forward once with the client's own credentials, `headers` already cleaned of hop-by-hop
/// headers, host and access key (see
/// [`crate::policy::route::is_client_identity_call`]); no account is chosen or charged. Not used
/// with an access key, which a client may send as its bearer.
async fn forward_as_client(
    state: &GatewayState,
    method: &http::Method,
    uri: &http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut req = http::Request::new(Full::new(body));
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri.clone();
    *req.headers_mut() = headers;
    let sent = tokio::time::timeout(
        Duration::from_millis(state.config.timeout_ms),
        state.client.request(req),
    )
    .await;
    match sent {
        Ok(Ok(resp)) => stream_back(state, resp),
        Ok(Err(e)) => json_error(
            StatusCode::BAD_GATEWAY,
            "upstream_unreachable",
            &format!("could not reach upstream: {e}"),
        ),
        Err(_) => json_error(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "upstream did not answer within --timeout-ms",
        ),
    }
}

fn stream_back(state: &GatewayState, resp: http::Response<hyper::body::Incoming>) -> Response {
    let (mut parts, incoming) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let idle = Duration::from_millis(state.config.idle_timeout_ms);
    let body = Body::new(IdleTimeoutBody::new(incoming, idle));
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_keep_codex_and_chatgpt_paths_apart() {
        let base = "https://chatgpt.com/backend-api/codex";
        assert_eq!(
            upstream_url(base, "/responses"),
            "https://chatgpt.com/backend-api/codex/responses"
        );
        assert_eq!(
            upstream_url(base, "/models?client_version=1"),
            "https://chatgpt.com/backend-api/codex/models?client_version=1"
        );
        assert_eq!(
            upstream_url(base, "/backend-api/wham/usage"),
            "https://chatgpt.com/backend-api/wham/usage"
        );
        assert_eq!(
            upstream_url("http://127.0.0.1:9", "/backend-api/wham/usage"),
            "http://127.0.0.1:9/backend-api/wham/usage"
        );
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("session-id", HeaderValue::from_static("s"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("session-id"));
    }
}
