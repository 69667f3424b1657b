//! What doctor says about an account: the issue codes, their severity, and the totals.

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
    /// The account's login is also held elsewhere (a copy or a link): error.
    SharedLogin,
    /// Gateway section: Codex is routed to the gateway over plain http, which the TUI of a
    /// personal account refuses (issue 16).
    RoutingPlainHttp,
    /// Gateway section: Codex is routed over https but its CA bundle is missing.
    CaBundleMissing,
    /// Gateway section: the CA bundle lacks the gateway's current CA.
    CaBundleStale,
    /// Gateway section: the server certificate is near (or past) its end.
    TlsLeafExpiring,
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
            Self::SharedLogin => "shared_login",
            Self::RoutingPlainHttp => "routing_plain_http",
            Self::CaBundleMissing => "ca_bundle_missing",
            Self::CaBundleStale => "ca_bundle_stale",
            Self::TlsLeafExpiring => "tls_leaf_expiring",
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

/// Totals over all accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HealthSummary {
    pub issues: Vec<HealthIssue>,
    pub ok_count: usize,
    /// Warnings and errors, the gateway section's included.
    pub warn_count: usize,
    pub error_count: usize,
    /// The gateway section ([`super::gateway`]): not about any one account.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<GatewayIssue>,
}

impl HealthSummary {
    /// Add the gateway section's findings, counted in the totals (and so in the exit code).
    pub fn add_gateway(&mut self, issues: Vec<GatewayIssue>) {
        for issue in &issues {
            match issue.severity {
                Severity::Error => self.error_count += 1,
                Severity::Warn => self.warn_count += 1,
                Severity::Info => {}
            }
        }
        self.gateway.extend(issues);
    }

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

/// One finding of the gateway section (JSON: `{"severity", "code", "message"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayIssue {
    pub severity: Severity,
    pub code: IssueCode,
    pub message: String,
}
