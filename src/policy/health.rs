//! Account health: which accounts need attention and how badly (`cao status --doctor`).
//!
//! Pure: the caller gathers what it knows about each account into a [`HealthInput`] and passes
//! the time in. The rules follow the TypeScript tool's `account_health.ts` (same codes, same
//! order, same thresholds) plus three it lacked: an auth.json that does not parse,
//! `needs_login` (a refresh failed for good) and `insecure_permissions`.

use serde::Serialize;

/// How bad an issue is. Errors make doctor exit 2, warnings 1; information changes nothing
/// (the account still counts as ok).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

/// Machine-readable issue codes (the JSON `code` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    NotLoggedIn,
    /// auth.json exists but this user cannot read it (wrong owner or mode).
    AuthUnreadable,
    NeedsLogin,
    TokenUnknown,
    TokenExpired,
    TokenExpiringSoon,
    CooldownActive,
    FailuresHigh,
    LastError,
    InsecurePermissions,
    /// Main usage window at or above the switch threshold (issue 6).
    UsageHigh,
    /// Every logged-in account is spent (issue 6).
    AllSpent,
    /// No usage has ever been seen for this account (information; `cao status --refresh`).
    UsageUnknown,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotLoggedIn => "not_logged_in",
            Self::AuthUnreadable => "auth_unreadable",
            Self::NeedsLogin => "needs_login",
            Self::TokenUnknown => "token_unknown",
            Self::TokenExpired => "token_expired",
            Self::TokenExpiringSoon => "token_expiring_soon",
            Self::CooldownActive => "cooldown_active",
            Self::FailuresHigh => "failures_high",
            Self::LastError => "last_error",
            Self::InsecurePermissions => "insecure_permissions",
            Self::UsageHigh => "usage_high",
            Self::AllSpent => "all_spent",
            Self::UsageUnknown => "usage_unknown",
        }
    }
}

impl std::fmt::Display for IssueCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthIssue {
    pub account: String,
    pub severity: Severity,
    pub code: IssueCode,
    pub message: String,
}

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
            switch_at: super::strategy::DEFAULT_SWITCH_AT,
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
            switch_at: super::strategy::DEFAULT_SWITCH_AT,
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
    pub usage: Option<&'a crate::policy::usage::UsageSnapshot>,
}

/// Totals over all accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HealthSummary {
    pub issues: Vec<HealthIssue>,
    pub ok_count: usize,
    pub warn_count: usize,
    pub error_count: usize,
}

impl HealthSummary {
    /// Doctor's exit code: 2 with any error, 1 with any warning, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.error_count > 0 {
            2
        } else if self.warn_count > 0 {
            1
        } else {
            0
        }
    }

    /// The issues of one account, in evaluation order.
    pub fn for_account<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s HealthIssue> {
        self.issues.iter().filter(move |i| i.account == name)
    }

    /// The issues of one account that need attention (warnings and errors, not information).
    pub fn problems<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s HealthIssue> {
        self.for_account(name)
            .filter(|i| i.severity > Severity::Info)
    }

    /// The worst severity among one account's issues (`None`: healthy; information alone
    /// leaves an account healthy).
    pub fn worst(&self, name: &str) -> Option<Severity> {
        self.for_account(name)
            .map(|i| i.severity)
            .filter(|s| *s > Severity::Info)
            .max()
    }
}

/// True when a unix mode lets group or others read or write the file.
pub fn mode_is_loose(mode: u32) -> bool {
    mode & 0o077 != 0
}

const HOUR_MS: i64 = 60 * 60 * 1000;

/// The issues of one account at `now_ms`.
pub fn evaluate(input: &HealthInput<'_>, options: &HealthOptions, now_ms: i64) -> Vec<HealthIssue> {
    let mut issues = Vec::new();
    let mut push = |severity, code, message: String| {
        issues.push(HealthIssue {
            account: input.name.to_string(),
            severity,
            code,
            message,
        })
    };
    let name = input.name;

    if let Login::NoAccess(e) = &input.login {
        push(
            Severity::Error,
            IssueCode::AuthUnreadable,
            no_access_message(input.auth_path, e),
        );
        return issues;
    }
    let not_logged_in = match &input.login {
        Login::LoggedIn | Login::NoAccess(_) => None,
        Login::Missing => Some(format!(
            "No auth.json found for this account; log in with `cao add {name}`."
        )),
        Login::Unreadable(e) => Some(format!(
            "{} is not valid JSON ({e}); log in again with `cao add {name}`.",
            input.auth_path
        )),
        Login::ApiKeyOnly => Some(format!(
            "auth.json holds an API key, not a ChatGPT login; log in with `cao add {name}`."
        )),
        Login::NoTokens => Some(format!(
            "auth.json holds no access token; log in with `cao add {name}`."
        )),
    };
    if let Some(message) = not_logged_in {
        push(Severity::Error, IssueCode::NotLoggedIn, message);
        // Loose permissions still matter: the file may hold an API key.
        if let Some(mode) = input.loose_auth_mode {
            push(
                Severity::Warn,
                IssueCode::InsecurePermissions,
                loose_message(input.auth_path, mode),
            );
        }
        return issues;
    }

    if input.needs_login {
        push(
            Severity::Error,
            IssueCode::NeedsLogin,
            format!("Token refresh failed for good; log in again with `cao add {name}`."),
        );
    }

    match input.token_expires_at_ms {
        None => push(
            Severity::Warn,
            IssueCode::TokenUnknown,
            "Token expiry could not be determined.".to_string(),
        ),
        // With a refresh token, Codex and the gateway renew it on first use: routine.
        Some(exp) if exp <= now_ms && input.has_refresh_token => {}
        Some(exp) if exp <= now_ms => push(
            Severity::Error,
            IssueCode::TokenExpired,
            "Token is expired.".to_string(),
        ),
        Some(exp) => {
            let window = i64::try_from(options.expires_within_hours)
                .unwrap_or(i64::MAX)
                .saturating_mul(HOUR_MS);
            if exp - now_ms <= window {
                push(
                    Severity::Warn,
                    IssueCode::TokenExpiringSoon,
                    format!("Token expires within {}h.", options.expires_within_hours),
                );
            }
        }
    }

    if input.cooldown_until_ms.is_some_and(|until| until > now_ms) {
        push(
            Severity::Warn,
            IssueCode::CooldownActive,
            "Account is currently in cooldown.".to_string(),
        );
    }

    if input
        .consecutive_failures
        .is_some_and(|n| n >= options.max_failures)
    {
        push(
            Severity::Warn,
            IssueCode::FailuresHigh,
            format!("Consecutive failures >= {}.", options.max_failures),
        );
    }

    // A usage limit is the cooldown above (or history once it has passed), not a second
    // warning: only other errors are reported here.
    if let Some(err) = input
        .last_error
        .filter(|e| !e.trim().is_empty() && !is_usage_limit_error(e))
    {
        push(
            Severity::Warn,
            IssueCode::LastError,
            format!("Last error: {err}"),
        );
    }

    if let Some(mode) = input.loose_auth_mode {
        push(
            Severity::Warn,
            IssueCode::InsecurePermissions,
            loose_message(input.auth_path, mode),
        );
    }

    issues.extend(super::usage_health::account_issue(
        input,
        options.switch_at,
        now_ms,
    ));
    issues
}

/// Whether a recorded `lastError` is a usage-limit hit (cao's and the TypeScript tool's words
/// for it), which is routine and shown as the cooldown instead.
pub fn is_usage_limit_error(error: &str) -> bool {
    matches!(
        error.trim(),
        "usage_limit_reached" | "usage limit reached" | "insufficient_quota" | "quota_exceeded"
    )
}

/// What to do about an auth.json this user cannot read.
pub fn no_access_message(path: &str, error: &str) -> String {
    format!(
        "{path} cannot be read by this user ({error}); give it back with `sudo chown \"$USER\" {path} && chmod 600 {path}`."
    )
}

fn loose_message(path: &str, mode: u32) -> String {
    format!(
        "{path} is readable by other users (mode {mode:03o}); run `chmod 600 {path}` (any cao write of it also fixes this)."
    )
}

/// Evaluate every account and count: `ok_count` is the number of accounts without any issue.
pub fn summarize(
    inputs: &[HealthInput<'_>],
    options: &HealthOptions,
    now_ms: i64,
) -> HealthSummary {
    let mut summary = HealthSummary::default();
    for input in inputs {
        summary.issues.extend(evaluate(input, options, now_ms));
        summary
            .issues
            .extend(super::usage_health::unknown_issue(input));
    }
    summary
        .issues
        .extend(super::usage_health::all_spent(inputs, now_ms));
    // Counted last: an account-level issue added above (all_spent) also makes it not ok.
    let with_issues: std::collections::HashSet<&str> = summary
        .issues
        .iter()
        .filter(|i| i.severity > Severity::Info)
        .map(|i| i.account.as_str())
        .collect();
    summary.ok_count = inputs
        .iter()
        .filter(|i| !with_issues.contains(i.name))
        .count();
    summary.warn_count = summary
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Warn)
        .count();
    summary.error_count = summary
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count();
    summary
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
