//! Account health: which accounts need attention and how badly (`cao status --doctor`).
//!
//! Pure: the caller gathers what it knows about each account into a [`HealthInput`] and passes
//! the time in. The rules follow the TypeScript tool's `account_health.ts` (same codes, same
//! order, same thresholds) plus three it lacked: an auth.json that does not parse,
//! `needs_login` (a refresh failed for good), `insecure_permissions` and `shared_login` (one
//! login in two places). The usage rules
//! (`usage_high`, `all_spent`, `usage_unknown`) are in [`usage`].

pub mod gateway;
mod input;
mod issue;
mod usage;

pub use input::{HealthInput, HealthOptions, Login, SharedWith};
pub use issue::{GatewayIssue, HealthIssue, HealthSummary, IssueCode, Severity};

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

    for other in input.shared_with {
        push(
            Severity::Error,
            IssueCode::SharedLogin,
            shared_message(input, other),
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

    issues.extend(usage::account_issue(input, options.switch_at, now_ms));
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

/// One login in two places: name both and say how to give this account a login of its own
/// without revoking the shared one (`codex logout` / `codex login` over it would).
fn shared_message(input: &HealthInput<'_>, other: &SharedWith) -> String {
    let (path, name, place) = (input.auth_path, input.name, &other.place);
    let what = if other.linked {
        format!("{path} leads to the same file as {place} (a symlink)")
    } else {
        format!("{path} holds the same login (refresh token) as {place}")
    };
    format!(
        "{what}: two programs refresh one login, and the second refresh revokes it for both. Give {name} a login of its own: `rm {path}` (not `codex logout`, which revokes the shared login), then `cao add {name}`."
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
        summary.issues.extend(usage::unknown_issue(input));
    }
    summary.issues.extend(usage::all_spent(inputs, now_ms));
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
mod tests;
