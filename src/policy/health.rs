//! Account health: which accounts need attention and how badly (`cao status --doctor`).
//!
//! Pure: the caller gathers what it knows about each account into a [`HealthInput`] and passes
//! the time in. The rules follow the TypeScript tool's `account_health.ts` (same codes, same
//! order, same thresholds) plus three it lacked: an auth.json that does not parse,
//! `needs_login` (a refresh failed for good) and `insecure_permissions`.

use serde::Serialize;

/// How bad an issue is. Errors make doctor exit 2, warnings 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warn,
    Error,
}

/// Machine-readable issue codes (the JSON `code` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    NotLoggedIn,
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
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotLoggedIn => "not_logged_in",
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

/// Thresholds (`--expires-within-hours`, `--max-failures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthOptions {
    pub expires_within_hours: u64,
    pub max_failures: u32,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            expires_within_hours: 24,
            max_failures: 3,
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
        }
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
    pub cooldown_until_ms: Option<i64>,
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

    /// The worst severity among one account's issues (`None`: healthy).
    pub fn worst(&self, name: &str) -> Option<Severity> {
        self.for_account(name).map(|i| i.severity).max()
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

    let not_logged_in = match &input.login {
        Login::LoggedIn => None,
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

    if let Some(err) = input.last_error.filter(|e| !e.trim().is_empty()) {
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

    issues.extend(super::usage_health::account_issue(input, now_ms));
    issues
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
        let issues = evaluate(input, options, now_ms);
        if issues.is_empty() {
            summary.ok_count += 1;
        }
        summary.issues.extend(issues);
    }
    summary
        .issues
        .extend(super::usage_health::all_spent(inputs, now_ms));
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
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const H: i64 = HOUR_MS;

    fn healthy(name: &str) -> HealthInput<'_> {
        HealthInput {
            name,
            login: Login::LoggedIn,
            token_expires_at_ms: Some(NOW + 48 * H),
            cooldown_until_ms: None,
            consecutive_failures: None,
            last_error: None,
            needs_login: false,
            loose_auth_mode: None,
            auth_path: "/d/a/auth.json",
            usage: None,
        }
    }

    fn codes(input: &HealthInput<'_>) -> Vec<&'static str> {
        evaluate(input, &HealthOptions::default(), NOW)
            .iter()
            .map(|i| i.code.as_str())
            .collect()
    }

    #[test]
    fn healthy_account_has_no_issues() {
        assert!(codes(&healthy("a")).is_empty());
        let s = summarize(
            &[healthy("a"), healthy("b")],
            &HealthOptions::default(),
            NOW,
        );
        assert_eq!((s.ok_count, s.warn_count, s.error_count), (2, 0, 0));
        assert_eq!(s.exit_code(), 0);
    }

    #[test]
    fn every_login_problem_is_not_logged_in_and_stops_there() {
        for login in [
            Login::Missing,
            Login::Unreadable("EOF".into()),
            Login::ApiKeyOnly,
            Login::NoTokens,
        ] {
            let mut i = healthy("a");
            i.login = login;
            // Would otherwise add token_expired, cooldown, failures, last_error.
            i.token_expires_at_ms = Some(NOW - 1);
            i.cooldown_until_ms = Some(NOW + 1);
            i.consecutive_failures = Some(10);
            i.last_error = Some("boom");
            let issues = evaluate(&i, &HealthOptions::default(), NOW);
            assert_eq!(issues.len(), 1, "{issues:?}");
            assert_eq!(issues[0].code, IssueCode::NotLoggedIn);
            assert_eq!(issues[0].severity, Severity::Error);
        }
    }

    #[test]
    fn unreadable_auth_names_the_file() {
        let mut i = healthy("a");
        i.login = Login::Unreadable("expected value at line 1".into());
        let msg = &evaluate(&i, &HealthOptions::default(), NOW)[0].message;
        assert!(msg.contains("/d/a/auth.json"), "{msg}");
        assert!(msg.contains("cao add a"), "{msg}");
    }

    #[test]
    fn token_expiry_boundaries() {
        let mut i = healthy("a");
        i.token_expires_at_ms = None;
        assert_eq!(codes(&i), ["token_unknown"]);
        i.token_expires_at_ms = Some(NOW);
        assert_eq!(codes(&i), ["token_expired"]);
        i.token_expires_at_ms = Some(NOW - 1);
        assert_eq!(codes(&i), ["token_expired"]);
        i.token_expires_at_ms = Some(NOW + 1);
        assert_eq!(codes(&i), ["token_expiring_soon"]);
        i.token_expires_at_ms = Some(NOW + 24 * H);
        assert_eq!(codes(&i), ["token_expiring_soon"]);
        i.token_expires_at_ms = Some(NOW + 24 * H + 1);
        assert!(codes(&i).is_empty());
    }

    #[test]
    fn severities_match_the_typescript_tool() {
        let opts = HealthOptions::default();
        let sev = |i: &HealthInput<'_>| evaluate(i, &opts, NOW)[0].severity;
        let mut i = healthy("a");
        i.token_expires_at_ms = None;
        assert_eq!(sev(&i), Severity::Warn);
        i.token_expires_at_ms = Some(NOW - 5);
        assert_eq!(sev(&i), Severity::Error);
        i.token_expires_at_ms = Some(NOW + H);
        assert_eq!(sev(&i), Severity::Warn);
    }

    #[test]
    fn expiry_window_follows_the_option() {
        let mut i = healthy("a");
        i.token_expires_at_ms = Some(NOW + 30 * H);
        assert!(evaluate(&i, &HealthOptions::new(24, 3), NOW).is_empty());
        let issues = evaluate(&i, &HealthOptions::new(48, 3), NOW);
        assert_eq!(issues[0].code, IssueCode::TokenExpiringSoon);
        assert_eq!(issues[0].message, "Token expires within 48h.");
    }

    #[test]
    fn thresholds_below_one_are_raised() {
        assert_eq!(HealthOptions::new(0, 0), HealthOptions::new(1, 1));
    }

    #[test]
    fn huge_window_does_not_overflow() {
        let mut i = healthy("a");
        i.token_expires_at_ms = Some(i64::MAX);
        let issues = evaluate(&i, &HealthOptions::new(u64::MAX, 3), NOW);
        assert_eq!(issues[0].code, IssueCode::TokenExpiringSoon);
    }

    #[test]
    fn cooldown_only_while_in_the_future() {
        let mut i = healthy("a");
        i.cooldown_until_ms = Some(NOW);
        assert!(codes(&i).is_empty());
        i.cooldown_until_ms = Some(NOW + 1);
        assert_eq!(codes(&i), ["cooldown_active"]);
    }

    #[test]
    fn failures_at_or_above_the_limit() {
        let mut i = healthy("a");
        i.consecutive_failures = Some(2);
        assert!(codes(&i).is_empty());
        i.consecutive_failures = Some(3);
        assert_eq!(codes(&i), ["failures_high"]);
        assert!(evaluate(&i, &HealthOptions::new(24, 4), NOW).is_empty());
    }

    #[test]
    fn last_error_is_a_warning_with_the_text() {
        let mut i = healthy("a");
        i.last_error = Some("exit_code_2");
        let issues = evaluate(&i, &HealthOptions::default(), NOW);
        assert_eq!(issues[0].code, IssueCode::LastError);
        assert_eq!(issues[0].message, "Last error: exit_code_2");
        i.last_error = Some("  ");
        assert!(codes(&i).is_empty());
    }

    #[test]
    fn needs_login_is_an_error_before_token_checks() {
        let mut i = healthy("a");
        i.needs_login = true;
        i.token_expires_at_ms = Some(NOW - 1);
        assert_eq!(codes(&i), ["needs_login", "token_expired"]);
        let s = summarize(&[i], &HealthOptions::default(), NOW);
        assert_eq!(s.exit_code(), 2);
    }

    #[test]
    fn loose_permissions_warn_even_when_not_logged_in() {
        let mut i = healthy("a");
        i.loose_auth_mode = Some(0o644);
        assert_eq!(codes(&i), ["insecure_permissions"]);
        let msg = &evaluate(&i, &HealthOptions::default(), NOW)[0].message;
        assert!(
            msg.contains("644") && msg.contains("chmod 600 /d/a/auth.json"),
            "{msg}"
        );
        i.login = Login::ApiKeyOnly;
        assert_eq!(codes(&i), ["not_logged_in", "insecure_permissions"]);
    }

    #[test]
    fn loose_mode_detection() {
        assert!(!mode_is_loose(0o600));
        assert!(!mode_is_loose(0o400));
        assert!(mode_is_loose(0o640));
        assert!(mode_is_loose(0o604));
        assert!(mode_is_loose(0o777));
    }

    #[test]
    fn all_codes_in_order() {
        let mut i = healthy("a");
        i.needs_login = true;
        i.token_expires_at_ms = Some(NOW + H);
        i.cooldown_until_ms = Some(NOW + H);
        i.consecutive_failures = Some(5);
        i.last_error = Some("usage_limit_reached");
        i.loose_auth_mode = Some(0o666);
        assert_eq!(
            codes(&i),
            [
                "needs_login",
                "token_expiring_soon",
                "cooldown_active",
                "failures_high",
                "last_error",
                "insecure_permissions"
            ]
        );
    }

    #[test]
    fn summary_counts_and_exit_codes() {
        let opts = HealthOptions::default();
        let mut warn = healthy("w");
        warn.cooldown_until_ms = Some(NOW + 1);
        warn.last_error = Some("x");
        let mut err = healthy("e");
        err.login = Login::Missing;
        let s = summarize(&[healthy("ok"), warn.clone()], &opts, NOW);
        assert_eq!((s.ok_count, s.warn_count, s.error_count), (1, 2, 0));
        assert_eq!(s.exit_code(), 1);
        assert_eq!(s.worst("w"), Some(Severity::Warn));
        assert_eq!(s.worst("ok"), None);
        let s = summarize(&[healthy("ok"), warn, err], &opts, NOW);
        assert_eq!((s.ok_count, s.warn_count, s.error_count), (1, 2, 1));
        assert_eq!(s.exit_code(), 2);
        assert_eq!(s.worst("e"), Some(Severity::Error));
        assert_eq!(s.for_account("w").count(), 2);
        let empty = summarize(&[], &opts, NOW);
        assert_eq!(empty.exit_code(), 0);
    }

    #[test]
    fn issue_serializes_like_the_typescript_tool() {
        let mut i = healthy("a");
        i.token_expires_at_ms = Some(NOW - 1);
        let v = serde_json::to_value(&evaluate(&i, &HealthOptions::default(), NOW)[0])
            .unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({"account": "a", "severity": "error", "code": "token_expired", "message": "Token is expired."})
        );
        let o = serde_json::to_value(HealthOptions::default()).unwrap_or_default();
        assert_eq!(
            o,
            serde_json::json!({"expiresWithinHours": 24, "maxFailures": 3})
        );
    }
}
