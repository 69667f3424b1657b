//! Sending one refresh to the token endpoint, the way Codex 0.171 does: `POST` JSON
//! `{client_id, grant_type, refresh_reason, refresh_token}` with `content-type`, and the
//! `user-agent` and `originator` of the Codex asking (cao's own refreshes: Codex's, from
//! [`crate::codex::identity`]). The answer is read frame by frame so a body cut off is noticed, and a request
//! that left without a status coming back is reported as possibly spent.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use crate::codex::identity;
use crate::net::client::HttpClient;
use crate::policy::token_answer::{self, TokenAnswer};

/// Most time a token refresh may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// How sending went.
pub(super) enum Sent {
    /// The request never left (connect failure): not spent.
    Unsent(String),
    /// It left, but no status came back (timeout, reset): it may be spent.
    Lost(String),
    Answer(TokenAnswer),
}

/// Where refreshes go.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub client_id: String,
}

/// Send one refresh of `refresh_token` to `endpoint`.
pub(super) async fn send(
    client: &HttpClient,
    endpoint: &Endpoint,
    refresh_token: &str,
    reason: &str,
    (user_agent, originator): (Option<String>, Option<String>),
) -> Sent {
    let body = json!({
        "client_id": endpoint.client_id,
        "grant_type": "refresh_token",
        "refresh_reason": reason,
        "refresh_token": refresh_token,
    })
    .to_string();
    let ua = user_agent.unwrap_or_else(identity::user_agent);
    let req = http::Request::post(&endpoint.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, ua)
        .header(
            "originator",
            originator.as_deref().unwrap_or(identity::ORIGINATOR),
        )
        .body(Full::new(Bytes::from(body)));
    let req = match req {
        Ok(r) => r,
        Err(e) => return Sent::Unsent(e.to_string()),
    };
    let resp = match tokio::time::timeout(REFRESH_TIMEOUT, client.request(req)).await {
        Err(_) => return Sent::Lost("token endpoint timed out".into()),
        Ok(Err(e)) if e.is_connect() => {
            return Sent::Unsent(format!("token endpoint unreachable: {e}"));
        }
        Ok(Err(e)) => return Sent::Lost(format!("token endpoint connection failed: {e}")),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    let mut complete = true;
    loop {
        match tokio::time::timeout(REFRESH_TIMEOUT, body.frame()).await {
            Ok(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    bytes.extend_from_slice(&d);
                }
                if bytes.len() > 1 << 20 {
                    complete = false;
                    break;
                }
            }
            Ok(None) => break,
            Ok(Some(Err(_))) | Err(_) => {
                complete = false;
                break;
            }
        }
    }
    Sent::Answer(token_answer::interpret(status, &bytes, complete))
}
