//! What doctor is told about an account, and its thresholds.

use serde::Serialize;

/// Thresholds (`--expires-within-hours`, `--max-failures`, and the gateway's `--switch-at`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthOptions {
    pub expires_within_hours: u64,
    pub max_failures: u32,
    /// Usage percent at which `usage_high` warns (the gateway's saved `switchAt`, default 98).
    pub switch_at: f64,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            expires_within_hours: 24,
            max_failures: 3,
            switch_at: crate::strategy::DEFAULT_SWITCH_AT,
        }
    }
}

impl HealthOptions {
    /// Like the TypeScript tool, thresholds below 1 are raised to 1 (a 0-hour window or a
    /// 0-failure limit would flag every account).
    pub fn new(expires_within_hours: u64, max_failures: u32) -> Self {
        Self {
            expires_within_hours: expires_within_hours.max(1),
            max_failures: max_failures.max(1),
            switch_at: crate::strategy::DEFAULT_SWITCH_AT,
        }
    }

    /// Use the gateway's switch threshold for `usage_high`.
    pub fn with_switch_at(self, switch_at: f64) -> Self {
        Self { switch_at, ..self }
    }
}

/// Why an account cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// ChatGPT tokens are present.
    LoggedIn,
    /// No auth.json.
    Missing,
    /// auth.json exists but is not JSON (the parse error, never the content).
    Unreadable(String),
    /// auth.json exists but cannot be read by this user (the I/O error).
    NoAccess(String),
    /// auth.json holds an API key, not a ChatGPT login.
    ApiKeyOnly,
    /// auth.json parses but holds no access token.
    NoTokens,
}

/// Another place holding the same login as an account's auth.json (`shared_login`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedWith {
    /// The other file (another account's auth.json, or Codex's own `~/.codex/auth.json`).
    pub place: String,
    /// Both paths lead to one file (a symlink), rather than two copies of one refresh token.
    pub linked: bool,
}

/// Everything health evaluation needs to know about one account.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthInput<'a> {
    pub name: &'a str,
    pub login: Login,
    /// Access-token expiry, milliseconds since the epoch.
    pub token_expires_at_ms: Option<i64>,
    /// auth.json holds a refresh token: an expired access token is renewed on first use
    /// (by Codex or the gateway), so expiry is routine, not a problem.
    pub has_refresh_token: bool,
    pub cooldown_until_ms: Option<i64>,
    /// When the last attempt was made and when the last usage limit was hit: a cooldown whose
    /// account's latest attempt was a usage-limit hit means the account is spent.
    pub last_attempt_at_ms: Option<i64>,
    pub last_quota_at_ms: Option<i64>,
    pub consecutive_failures: Option<u32>,
    pub last_error: Option<&'a str>,
    /// A refresh failed for good (invalid_grant, reused refresh token): log in again.
    pub needs_login: bool,
    /// Unix mode of auth.json when it is readable by group or others (e.g. 0o644).
    pub loose_auth_mode: Option<u32>,
    /// Path of auth.json, for messages.
    pub auth_path: &'a str,
    /// Last usage upstream reported (issue 6).
    pub usage: Option<&'a crate::usage::UsageSnapshot>,
    /// Other places holding this login: two custodians of one refresh token revoke it for
    /// both on the second refresh.
    pub shared_with: &'a [SharedWith],
}
