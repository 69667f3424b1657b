//! What the mock upstream does, per account: a serde JSON file (`Scenario::from_file`) or built
//! in code. Faults are keyed by the ChatGPT account id (the `chatgpt-account-id` header, else the
//! account id inside the bearer JWT).
//!
//! ```json
//! {
//!   "reply": "Mock reply from {account}.",
//!   "deltas": 3,
//!   "event_delay_ms": 0,
//!   "access_token_ttl_seconds": 3600,
//!   "accounts": {
//!     "acc-1": { "quota": { "resets_in_seconds": 3600 } },
//!     "acc-2": { "server_error": { "status": 503, "times": 1 }, "first_byte_delay_ms": 200 },
//!     "acc-3": { "unauthorized": true, "refresh": "reused",
//!                "headers": { "x-codex-primary-used-percent": "42" } }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// See [`Scenario::workspace_backend_origin`]: what the real backend answers personal accounts.
pub const DEFAULT_WORKSPACE_BACKEND_ORIGIN: &str = "NO_CONSTRAINT";
/// An `https://` loopback origin where nothing listens, for tests that point Codex's TUI at the
/// mock's plain-http address directly (no gateway, so no HTTPS): Codex only validates it.
pub const LOOPBACK_HTTPS_ORIGIN: &str = "https://127.0.0.1:9";

/// The whole mock set-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Text of the assistant message; `{account}` is replaced by the answering account id.
    pub reply: String,
    /// How many `response.output_text.delta` events the reply is split into (at least 1).
    pub deltas: u32,
    /// Pause between SSE events, so streaming is observable.
    pub event_delay_ms: u64,
    /// Lifetime of access tokens the token endpoint issues.
    pub access_token_ttl_seconds: i64,
    /// Answer 401 to a bearer whose JWT `exp` has passed (like the real backend).
    pub reject_expired_tokens: bool,
    /// Keep a log of requests for [`super::MockUpstream::requests`]. Turn off for long soaks.
    pub record_requests: bool,
    /// `workspace_backend_origin` of every workspace `GET .../accounts/check` lists. The default
    /// is `NO_CONSTRAINT`, what the real backend answers personal accounts: the Codex TUI (0.171)
    /// then requires an `https://` `chatgpt_base_url` and refuses to start otherwise ("workspace
    /// backend must use an HTTPS origin without credentials"), so every test meets the real case.
    /// A test that points the TUI at the mock's plain http directly sets
    /// [`LOOPBACK_HTTPS_ORIGIN`] (an https origin, which Codex only validates).
    pub workspace_backend_origin: String,
    /// Speak Responses over WebSocket on `GET .../responses` (else answer the upgrade 426, which
    /// sends Codex to HTTP at once).
    pub websocket: bool,
    /// Faults for accounts not listed in `accounts`.
    pub default_faults: AccountFaults,
    /// Faults by ChatGPT account id.
    pub accounts: BTreeMap<String, AccountFaults>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            reply: "Mock reply from {account}.".to_string(),
            deltas: 3,
            event_delay_ms: 0,
            access_token_ttl_seconds: 3600,
            reject_expired_tokens: true,
            record_requests: true,
            workspace_backend_origin: DEFAULT_WORKSPACE_BACKEND_ORIGIN.to_string(),
            websocket: true,
            default_faults: AccountFaults::default(),
            accounts: BTreeMap::new(),
        }
    }
}

/// Faults injected for one account. Everything is off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountFaults {
    /// Answer model calls (`POST /responses`) with 429 `usage_limit_reached`.
    pub quota: Option<QuotaFault>,
    /// Answer model calls with a short 429 that is not a usage limit (`rate_limit_exceeded`).
    pub rate_limited: Option<Times>,
    /// Answer every call with 401 until the bearer is a token this mock's token endpoint issued.
    pub unauthorized: bool,
    /// Answer model calls with a 5xx.
    pub server_error: Option<ServerErrorFault>,
    /// What the token endpoint does with this account's refresh token.
    pub refresh: RefreshFault,
    /// Fire `refresh` (when not `ok`) this many times, then rotate normally; `None`: always.
    pub refresh_fault_times: Option<u32>,
    /// Hold the token endpoint's answer back this long (after the rotation: a client that
    /// gives up meanwhile has spent its refresh token).
    pub refresh_delay_ms: u64,
    /// Wait this long before sending the response head of a model call.
    pub first_byte_delay_ms: u64,
    /// Send this many SSE events, then go silent forever (until the client hangs up).
    pub stall_after_events: Option<u32>,
    /// Send this many SSE events, then drop the connection without finishing the stream.
    pub disconnect_after_events: Option<u32>,
    /// Extra response headers on model calls (e.g. `x-codex-primary-used-percent`).
    pub headers: BTreeMap<String, String>,
    /// A `codex.rate_limits` event (its JSON `data`) sent as the second event of every model
    /// call's stream, as the ChatGPT backend reports usage mid-stream.
    pub rate_limit_event: Option<serde_json::Value>,
    /// What the usage endpoint (`GET …/wham/usage`) answers for this account.
    pub usage: Option<UsageFault>,
    /// Misbehaviour of the Responses WebSocket (`GET /responses` upgraded), see [`WsFaults`].
    pub ws: WsFaults,
    /// Answer model calls (HTTP) `200 text/event-stream` and fail the stream in its first
    /// events, before any output, see [`StreamFailure`].
    pub stream_failure: Option<StreamFailure>,
}

/// A model call's event stream that fails before any output: `response.created`, the
/// `codex.rate_limits` event if one is set, then `response.failed` with `error.code` = `code`
/// (`usage_limit_reached` also carries `resets_at`), then the end. Recorded with the status the
/// failure stands for (429 for a usage or rate limit, else 503).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamFailure {
    /// `usage_limit_reached`, `rate_limit_exceeded`, `server_is_overloaded`,
    /// `context_length_exceeded`, ...
    pub code: String,
    /// Seconds until the reported reset (`usage_limit_reached`).
    pub resets_in_seconds: i64,
    /// Fire this many times, then answer normally; `None` means always.
    pub times: Option<u32>,
}

impl Default for StreamFailure {
    fn default() -> Self {
        Self {
            code: "usage_limit_reached".to_string(),
            resets_in_seconds: 3600,
            times: None,
        }
    }
}

/// Faults of the mock's WebSocket endpoint for one account. Turn numbers count this account's
/// `response.create` frames with output (prewarms not counted) over all its sockets, from 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsFaults {
    /// Refuse the upgrade itself with this HTTP status (e.g. 503).
    pub refuse_upgrade: Option<u16>,
    /// Answer the upgrade without permessage-deflate even when it is offered (a backend that
    /// does not compress): the socket runs uncompressed.
    pub refuse_deflate: bool,
    /// Close the socket (close frame, no event) instead of answering these turns.
    pub close_on_turns: Vec<u32>,
    /// Close the socket after this many events of these turns (output already sent).
    pub close_mid_turns: Vec<u32>,
    /// How many events [`WsFaults::close_mid_turns`] sends before the close.
    pub close_after_events: u32,
    /// Answer `websocket_connection_limit_reached` once a socket has answered this many
    /// requests (the backend's 60-minute socket age limit, by count).
    pub connection_limit_after: Option<u32>,
    /// Answer these turns with an error frame `status` 401 (a token the backend stopped taking).
    pub unauthorized_turns: Vec<u32>,
    /// Answer these turns with `response.failed` (`server_is_overloaded`) before any output.
    pub overloaded_turns: Vec<u32>,
    /// Forget every response at once: each delta is answered `previous_response_not_found`.
    pub forget_responses: bool,
    /// Pause before every event frame (slow frames).
    pub frame_delay_ms: u64,
    /// Pause before answering the upgrade (a slow handshake, e.g. a far or busy backend).
    pub handshake_delay_ms: u64,
    /// Put a reasoning item with `encrypted_content` bound to this account in every answer, and
    /// refuse input reasoning produced by another account with `invalid_encrypted_content`.
    pub reasoning: bool,
}

/// A usage-limit answer: `{"error": {"type": "usage_limit_reached", ...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaFault {
    /// Absolute reset time (unix seconds) to report.
    pub resets_at: Option<i64>,
    /// Seconds until reset to report (also used to compute `resets_at` when that is unset).
    pub resets_in_seconds: Option<i64>,
    /// Leave both reset fields out of the body.
    pub omit_reset: bool,
    /// Serve this many successful model calls before the limit hits.
    pub after_requests: u32,
    pub plan_type: Option<String>,
}

/// How many times a fault fires; `None` means every time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Times {
    pub times: Option<u32>,
}

/// A 5xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerErrorFault {
    pub status: u16,
    /// Fire this many times, then answer normally; `None` means always.
    pub times: Option<u32>,
}

impl Default for ServerErrorFault {
    fn default() -> Self {
        Self {
            status: 500,
            times: None,
        }
    }
}

/// Token endpoint behaviour for one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshFault {
    /// Rotate: issue new access/id/refresh tokens (the strict endpoint of [`super::token`]).
    #[default]
    Ok,
    /// Always answer 401 `refresh_token_reused`.
    Reused,
    /// Always answer 400 `invalid_grant`.
    InvalidGrant,
    /// Always answer 500 (a transient failure).
    Error,
    /// Rotate, then answer 200 with half the JSON body and break the connection.
    CutOff,
    /// Rotate, then answer 200 with a new refresh token but no `access_token`.
    NoAccessToken,
    /// Rotate, then answer 200 with an access token that is not a valid header value.
    BadAccessToken,
}

impl Scenario {
    /// Read a scenario JSON file. Unknown keys are errors, so typos do not silently do nothing.
    pub fn from_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read scenario file {}", path.display()))?;
        Self::from_json(&text).with_context(|| {
            format!(
                "scenario file {} is not valid (see docs/mock-upstream.md)",
                path.display()
            )
        })
    }

    /// Parse scenario JSON text.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        Ok(serde_json::from_str(text)?)
    }

    /// Builder: set the faults of one account.
    pub fn with_account(mut self, account_id: &str, faults: AccountFaults) -> Self {
        self.accounts.insert(account_id.to_string(), faults);
        self
    }

    /// The faults that apply to `account_id`.
    pub fn faults_for(&self, account_id: Option<&str>) -> &AccountFaults {
        account_id
            .and_then(|a| self.accounts.get(a))
            .unwrap_or(&self.default_faults)
    }
}

impl AccountFaults {
    /// An account whose usage limit is spent, resetting in `seconds`.
    pub fn spent(seconds: i64) -> Self {
        Self {
            quota: Some(QuotaFault {
                resets_in_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_example_and_rejects_typos() {
        let s = Scenario::from_json(
            r#"{"accounts":{"a":{"quota":{"resets_in_seconds":60}},
                "b":{"server_error":{"status":503,"times":1},"refresh":"reused",
                     "headers":{"x-codex-primary-used-percent":"42"}}}}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            s.accounts["a"]
                .quota
                .as_ref()
                .and_then(|q| q.resets_in_seconds),
            Some(60)
        );
        assert_eq!(s.accounts["b"].refresh, RefreshFault::Reused);
        assert_eq!(s.deltas, 3);
        assert!(Scenario::from_json(r#"{"acounts":{}}"#).is_err());
        assert!(Scenario::from_json(r#"{"accounts":{"a":{"qouta":{}}}}"#).is_err());
    }
}

/// What `…/wham/usage` answers for one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageFault {
    /// Used percent of the 5-hour window (default 0).
    pub primary_used_percent: Option<i64>,
    /// Used percent of the weekly window (default 0).
    pub secondary_used_percent: Option<i64>,
    /// Seconds until the 5-hour window resets (default 5 hours).
    pub primary_reset_in_seconds: Option<i64>,
    /// Seconds until the weekly window resets (default a week).
    pub secondary_reset_in_seconds: Option<i64>,
    /// `plan_type` of the answer (default `plus`).
    pub plan_type: Option<String>,
    /// Answer this HTTP status with an error body instead (401, 403, 500, ...).
    pub status: Option<u16>,
    /// Answer like a deactivated workspace: 402 `{"detail": {"code": "deactivated_workspace"}}`.
    pub deactivated: bool,
    /// Hold every answer this long first (a slow endpoint: tests of how many calls a client
    /// has open at once, [`crate::mock::MockUpstream::usage_max_in_flight`]).
    pub delay_ms: Option<u64>,
}
