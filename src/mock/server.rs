//! Request handling of the mock upstream: one fallback handler for every path, plus the token
//! endpoint.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::RecordedRequest;
use super::scenario::{AccountFaults, Scenario};
use super::shared::{MockState, Shared, header_str, now_secs, usage_limit_error};
use super::sse::{self, Ending};
use crate::store::auth_file::decode_claims;

/// Counts an SSE answer as open until its stream is dropped (finished, or the client left).
struct OpenStream(Arc<Shared>);

impl OpenStream {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open_streams.fetch_add(1, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a usage-endpoint call as in flight until its answer is made (or the client left).
struct UsageInFlight(Arc<Shared>);

impl UsageInFlight {
    fn new(shared: Arc<Shared>) -> Self {
        let now = shared.usage_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.usage_max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for UsageInFlight {
    fn drop(&mut self) {
        self.0.usage_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// What the mock decided to answer, before it is turned into a response.
enum Answer {
    Json(StatusCode, Value),
    /// A usage-endpoint answer, held `delay` first.
    Usage(StatusCode, Value, Duration),
    Stream {
        account: String,
        ending: Ending,
        first_byte_delay: Duration,
        headers: Vec<(String, String)>,
        rate_limit_event: Option<Value>,
        /// Fail the stream before any output with this `error` object ([`super::StreamFailure`]).
        fail: Option<Value>,
    },
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if crate::net::ws::server::is_upgrade(&parts.headers)
        && parts.uri.path().ends_with("/responses")
    {
        return super::ws::handle(shared, parts).await;
    }
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let method = parts.method.as_str().to_string();
    if method == "POST" && path.ends_with("/oauth/token") {
        return super::token::handle(&shared, &parts, &body).await;
    }
    let h = &parts.headers;
    let bearer = header_str(h, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")))
        .map(str::to_string);
    let claims = bearer.as_deref().and_then(decode_claims);
    let bearer_account = claims.as_ref().and_then(|c| c.chatgpt_account_id.clone());
    let header_account = header_str(h, "chatgpt-account-id").map(str::to_string);
    let account = header_account.clone().or(bearer_account.clone());
    let session_id = header_str(h, "session-id")
        .or(header_str(h, "thread-id"))
        .or(header_str(h, "x-session-id"))
        .map(str::to_string);
    let is_ws = header_str(h, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));

    let (record, answer) = {
        // Read-locked, not cloned: the mock is also the benchmarks' fast upstream.
        let scenario = match shared.scenario.read() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let faults = scenario.faults_for(account.as_deref());
        let mut st = match shared.state.lock() {
            Ok(st) => st,
            Err(p) => p.into_inner(),
        };
        let answer = decide(
            &scenario,
            faults,
            &mut st,
            &method,
            &path,
            is_ws,
            bearer.as_deref(),
            claims.as_ref().and_then(|c| c.exp),
            account.as_deref(),
        );
        (scenario.record_requests, answer)
    };

    let status = match &answer {
        Answer::Json(s, _) | Answer::Usage(s, _, _) => s.as_u16(),
        Answer::Stream {
            fail: Some(err), ..
        } => sse::failure_status(err),
        Answer::Stream { .. } => 200,
    };
    tracing::debug!(
        target: "cao::mock",
        "{method} {} bearer={} header={} -> {status}",
        parts.uri,
        bearer_account.as_deref().unwrap_or("-"),
        header_account.as_deref().unwrap_or("-"),
    );
    if record && let Ok(mut st) = shared.state.lock() {
        let at_ms = shared.started.elapsed().as_millis() as u64;
        st.requests.push(RecordedRequest {
            method,
            path,
            bearer_account,
            header_account,
            session_id,
            had_cookie: h.contains_key(header::COOKIE),
            cookie: header_str(h, "cookie").map(str::to_string),
            body_len: body.len(),
            status,
            at_ms,
            version: parts.version,
        });
        st.identities.push(super::ClientIdentity {
            path: parts.uri.path().to_string(),
            originator: header_str(h, "originator").map(str::to_string),
            user_agent: header_str(h, "user-agent").map(str::to_string),
        });
    }
    match answer {
        Answer::Json(status, v) => json_response(status, &v),
        Answer::Usage(status, v, delay) => {
            let _in_flight = UsageInFlight::new(shared.clone());
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            json_response(status, &v)
        }
        Answer::Stream {
            account,
            ending,
            first_byte_delay,
            headers,
            rate_limit_event,
            fail,
        } => {
            if !first_byte_delay.is_zero() {
                tokio::time::sleep(first_byte_delay).await;
            }
            let (text, deltas, delay, seq) = {
                let s = shared
                    .scenario
                    .read()
                    .map(|s| (s.reply.clone(), s.deltas, s.event_delay_ms))
                    .unwrap_or_default();
                let seq = shared
                    .state
                    .lock()
                    .map(|mut st| {
                        st.next_seq += 1;
                        st.next_seq
                    })
                    .unwrap_or(0);
                (s.0.replace("{account}", &account), s.1, s.2, seq)
            };
            let mut events = match &fail {
                Some(err) => sse::failed_events(seq, err),
                None => sse::response_events(seq, &text, deltas),
            };
            if let Some(ev) = rate_limit_event {
                let at = events.len().min(1);
                events.insert(
                    at,
                    format!("event: codex.rate_limits\ndata: {ev}\n\n").into(),
                );
            }
            let guard = OpenStream::new(shared.clone());
            let stream =
                sse::event_stream(events, Duration::from_millis(delay), ending).map(move |item| {
                    let _alive = &guard;
                    item
                });
            let mut r = Response::new(Body::from_stream(stream));
            let hm = r.headers_mut();
            hm.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            hm.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    hm.insert(k, v);
                }
            }
            r
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn decide(
    scenario: &Scenario,
    faults: &AccountFaults,
    st: &mut MockState,
    method: &str,
    path: &str,
    is_ws: bool,
    bearer: Option<&str>,
    exp: Option<i64>,
    account: Option<&str>,
) -> Answer {
    let unauthorized = |code: &str, msg: &str| {
        Answer::Json(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": msg, "type": "invalid_request_error", "code": code}}),
        )
    };
    let is_responses = path.ends_with("/responses");
    if is_ws && is_responses {
        return Answer::Json(
            StatusCode::UPGRADE_REQUIRED,
            json!({"error": {"message": "websocket transport is not available; use HTTP"}}),
        );
    }
    let Some(bearer) = bearer else {
        return unauthorized("missing_authorization", "missing bearer token");
    };
    if scenario.reject_expired_tokens && exp.is_some_and(|e| e <= now_secs()) {
        return unauthorized("token_expired", "Provided authentication token is expired.");
    }
    if faults.unauthorized && !st.tokens.issued_access_tokens.contains(bearer) {
        return unauthorized("invalid_token", "Provided authentication token is invalid.");
    }
    let key = account.unwrap_or("").to_string();
    if !(method == "POST" && is_responses) {
        if path.ends_with("/accounts/check") {
            return Answer::Json(
                StatusCode::OK,
                accounts_check_body(bearer, &scenario.workspace_backend_origin),
            );
        }
        if super::usage::is_usage_path(path) {
            let (status, body) = super::usage::answer(faults, account, now_secs());
            let delay = faults.usage.as_ref().and_then(|u| u.delay_ms).unwrap_or(0);
            return Answer::Usage(status, body, Duration::from_millis(delay));
        }
        return Answer::Json(StatusCode::OK, other_path_body(path));
    }
    let counters = st.counters.entry(key).or_default();
    if let Some(q) = &faults.quota
        && counters.served >= q.after_requests
    {
        return Answer::Json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "error": usage_limit_error(q) }),
        );
    }
    if let Some(rl) = &faults.rate_limited
        && rl.times.is_none_or(|t| counters.rate_limits < t)
    {
        counters.rate_limits += 1;
        return Answer::Json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"type": "rate_limit_exceeded", "code": "rate_limit_exceeded",
                             "message": "Rate limit reached. Please try again in 1s."}}),
        );
    }
    if let Some(se) = &faults.server_error
        && se.times.is_none_or(|t| counters.server_errors < t)
    {
        counters.server_errors += 1;
        let status = StatusCode::from_u16(se.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Answer::Json(
            status,
            json!({"error": {"type": "server_error", "message": "mock upstream: injected server error"}}),
        );
    }
    let fail = match &faults.stream_failure {
        Some(f) if f.times.is_none_or(|t| counters.stream_failures < t) => {
            counters.stream_failures += 1;
            Some(stream_failure_error(f))
        }
        _ => {
            counters.served += 1;
            None
        }
    };
    let ending = match (faults.stall_after_events, faults.disconnect_after_events) {
        (Some(n), _) => Ending::StallAfter(n),
        (None, Some(n)) => Ending::DisconnectAfter(n),
        _ => Ending::Complete,
    };
    Answer::Stream {
        account: account.unwrap_or("unknown").to_string(),
        ending,
        first_byte_delay: Duration::from_millis(faults.first_byte_delay_ms),
        headers: faults
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        rate_limit_event: faults.rate_limit_event.clone(),
        fail,
    }
}

/// The `error` of a [`super::StreamFailure`]'s `response.failed` event.
fn stream_failure_error(f: &super::StreamFailure) -> Value {
    if f.code == "usage_limit_reached" {
        let mut err = usage_limit_error(&super::QuotaFault {
            resets_in_seconds: Some(f.resets_in_seconds),
            ..Default::default()
        });
        err["code"] = json!(f.code);
        return err;
    }
    json!({"code": f.code, "message": format!("mock upstream: injected {}", f.code)})
}

/// 200 JSON for every non-model path Codex calls.
fn other_path_body(path: &str) -> Value {
    if path.ends_with("/models") {
        json!({"models": []})
    } else {
        json!({})
    }
}

/// `GET {chatgpt_base_url}/wham/accounts/check` (`/api/codex/accounts/check` without
/// `/backend-api`): the workspaces the bearer's user may use. At start-up the Codex TUI (0.169,
/// `account/read`) looks up its own account id (`tokens.account_id` of auth.json) in this list:
/// missing -> "selected workspace missing from routing discovery"; listed twice -> "duplicate
/// workspace"; no `workspace_backend_origin` -> "missing backend origin"; an
/// `account_routing_override` other than `NO_CONSTRAINT`/`us`/`us_cr` -> "invalid account routing
/// override"; a non-https origin -> "workspace backend must use an HTTPS origin". So the list
/// holds the one workspace named in the bearer JWT, the way the real backend lists the token
/// owner's workspaces (the list form; the backend's map form `{id: {"account": {...}}}` is not
/// matched by Codex 0.169).
fn accounts_check_body(bearer: &str, backend_origin: &str) -> Value {
    let claims = decode_claims(bearer);
    let id = claims.as_ref().and_then(|c| c.chatgpt_account_id.clone());
    let Some(id) = id else {
        return json!({"accounts": [], "account_ordering": [], "default_account_id": null});
    };
    let plan = claims
        .and_then(|c| c.plan_type)
        .unwrap_or_else(|| "plus".to_string());
    json!({
        "accounts": [{
            "id": id,
            "name": null,
            "plan_type": plan,
            "structure": "personal",
            "profile_picture_url": null,
            "is_deactivated": false,
            "workspace_backend_origin": backend_origin,
            "account_routing_override": "NO_CONSTRAINT",
        }],
        "account_ordering": [id],
        "default_account_id": id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::auth_file::make_unsigned_jwt;

    #[test]
    fn accounts_check_lists_the_bearer_workspace_as_codex_expects() {
        let bearer = make_unsigned_jwt(&json!({"https://api.openai.com/auth": {
            "chatgpt_account_id": "acc-7", "chatgpt_plan_type": "pro"}}));
        let v = accounts_check_body(&bearer, "https://127.0.0.1:9");
        let list = v["accounts"].as_array().expect("list form");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["id"], "acc-7");
        assert_eq!(list[0]["plan_type"], "pro");
        assert_eq!(list[0]["workspace_backend_origin"], "https://127.0.0.1:9");
        assert_eq!(list[0]["account_routing_override"], "NO_CONSTRAINT");
        assert_eq!(v["default_account_id"], "acc-7");
        assert_eq!(v["account_ordering"], json!(["acc-7"]));
        let none = accounts_check_body("not-a-jwt", "https://127.0.0.1:9");
        assert_eq!(none["accounts"], json!([]));
    }
}
