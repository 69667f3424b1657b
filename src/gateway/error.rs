//! Every answer the gateway makes up itself (rather than passing on upstream's), as one enum:
//! the status, the OpenAI-style `{"error": {"type", "message"}}` body, and the words.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::policy::upstream;

/// Why the gateway answers on its own.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request body is over `--max-body-bytes` (declared or read).
    #[error("request body is larger than the gateway limit of {limit} bytes (--max-body-bytes)")]
    RequestTooLarge { limit: u64 },
    /// The request body could not be read.
    #[error("could not read the request body: {0}")]
    BadBody(String),
    #[error("request has no path")]
    NoPath,
    #[error("request path is not a valid URI")]
    BadUri,
    /// A WebSocket upgrade: Codex then uses HTTP for the rest of the session at once.
    #[error("cao gateway speaks HTTP only; use POST /responses")]
    WebSocketUnsupported,
    /// Every account is spent: answered the way upstream answers one spent account (429
    /// `usage_limit_reached` with the earliest reset), so Codex shows its usual message.
    #[error("every account has reached its usage limit")]
    AllSpent {
        soonest_reset_ms: Option<i64>,
        now_ms: i64,
        default_cooldown_s: u64,
    },
    /// Nothing to route to: no account registered, or every one needs a login.
    #[error(
        "no account is usable: every account needs a login (cao add <name>) or none is registered"
    )]
    NoUsableAccount,
    /// The upstream could not be reached for an account, after the retries.
    #[error(
        "cao gateway could not reach the upstream (connection failed or timed out after retries)"
    )]
    UpstreamUnreachable,
    /// With `--passthrough-auth`: upstream refused the client's own credentials.
    #[error("upstream refused the client's credentials")]
    ClientCredentialsRefused,
    /// A call made with the client's own credentials could not connect.
    #[error("could not reach upstream: {0}")]
    UpstreamConnect(String),
    /// A call made with the client's own credentials got no answer in time.
    #[error("upstream did not answer within --timeout-ms")]
    UpstreamTimeout,
    /// The access key is set and the request did not carry it.
    #[error("this cao gateway needs its access key in the x-cao-key header")]
    InvalidAccessKey,
}

impl GatewayError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::RequestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadBody(_) | Self::NoPath | Self::BadUri => StatusCode::BAD_REQUEST,
            Self::WebSocketUnsupported => StatusCode::UPGRADE_REQUIRED,
            Self::AllSpent { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NoUsableAccount => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamUnreachable | Self::UpstreamConnect(_) => StatusCode::BAD_GATEWAY,
            Self::ClientCredentialsRefused | Self::InvalidAccessKey => StatusCode::UNAUTHORIZED,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `error.type` of the body.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RequestTooLarge { .. } => "request_too_large",
            Self::BadBody(_) | Self::NoPath | Self::BadUri => "bad_request",
            Self::WebSocketUnsupported => "websocket_unsupported",
            Self::AllSpent { .. } => "usage_limit_reached",
            Self::NoUsableAccount => "no_usable_account",
            Self::UpstreamUnreachable | Self::UpstreamConnect(_) => "upstream_unreachable",
            Self::ClientCredentialsRefused => "unauthorized",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::InvalidAccessKey => "invalid_access_key",
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        match self {
            Self::AllSpent {
                soonest_reset_ms,
                now_ms,
                default_cooldown_s,
            } => json_response(
                self.status(),
                upstream::all_spent_body(soonest_reset_ms, now_ms, default_cooldown_s).to_string(),
            ),
            e => json_error(e.status(), e.kind(), &e.to_string()),
        }
    }
}

/// An error answer `{"error": {"type": kind, "message": message}}` with `status`. For the
/// gateway's own errors use [`GatewayError`]; this is the body it builds, also for the checks
/// in front of forwarding whose kinds are their own.
pub fn json_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"type": kind, "message": message}}).to_string();
    json_response(status, body)
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response) -> serde_json::Value {
        let b = r.into_body().collect().await.map(|c| c.to_bytes());
        serde_json::from_slice(&b.unwrap_or_default()).unwrap_or_default()
    }

    #[tokio::test]
    async fn errors_answer_with_their_status_type_and_words() {
        let r = GatewayError::RequestTooLarge { limit: 10 }.into_response();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        assert_eq!(
            body(r).await,
            json!({"error": {"type": "request_too_large",
                "message": "request body is larger than the gateway limit of 10 bytes (--max-body-bytes)"}})
        );
        let r = GatewayError::WebSocketUnsupported.into_response();
        assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(body(r).await["error"]["type"], "websocket_unsupported");
    }

    #[tokio::test]
    async fn all_spent_answers_like_upstream() {
        let now = 1_800_000_000_000;
        let r = GatewayError::AllSpent {
            soonest_reset_ms: Some(now + 90_500),
            now_ms: now,
            default_cooldown_s: 900,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let v = body(r).await;
        assert_eq!(v["error"]["type"], "usage_limit_reached");
        assert_eq!(
            v,
            upstream::all_spent_body(Some(now + 90_500), now, 900),
            "the one body builder"
        );
    }
}
