//! Doctor rules about usage (used by [`super::evaluate`] and [`super::summarize`]): an account whose main window is at or
//! above the switch threshold gets a warning (`usage_high`); when every logged-in account is
//! spent (window at 100 % or cooling down after a usage limit) that is an error
//! (`all_spent`) naming the account that resets first and when.

use super::input::{HealthInput, Login};
use super::issue::{HealthIssue, IssueCode, Severity};
use crate::duration::words;

/// The usage issue of one account, if its main window is at least `switch_at` percent full.
pub fn account_issue(input: &HealthInput<'_>, switch_at: f64, now_ms: i64) -> Option<HealthIssue> {
    let u = input.usage?;
    let f = u.fullness(now_ms)?;
    if f.used_percent < switch_at {
        return None;
    }
    let reset = match f.window.resets_at_ms.filter(|&r| r > now_ms) {
        Some(r) => format!(", resets in {}", words(r - now_ms)),
        None => String::new(),
    };
    Some(HealthIssue {
        account: input.name.to_string(),
        severity: Severity::Warn,
        code: IssueCode::UsageHigh,
        message: format!(
            "{} window at {:.0}%{reset}; new sessions go to other accounts (switch at {:.0}%).",
            f.window.display_name(),
            f.used_percent,
            switch_at
        ),
    })
}

/// `usage_unknown` (information) for a logged-in account whose usage was never seen: the gateway
/// learns it from traffic or its poller, `cao status --refresh` asks for it.
pub fn unknown_issue(input: &HealthInput<'_>) -> Option<HealthIssue> {
    if input.usage.is_some() || input.login != Login::LoggedIn || input.needs_login {
        return None;
    }
    Some(HealthIssue {
        account: input.name.to_string(),
        severity: Severity::Info,
        code: IssueCode::UsageUnknown,
        message: format!(
            "No usage seen yet for {}; `cao status --refresh` asks the backend.",
            input.name
        ),
    })
}

/// Whether the account's active cooldown comes from a usage-limit hit: its latest attempt hit the
/// limit (cooldowns after short rate limits or auth failures do not count).
fn cooling_after_quota(input: &HealthInput<'_>, now_ms: i64) -> bool {
    input.cooldown_until_ms.is_some_and(|c| c > now_ms)
        && input
            .last_quota_at_ms
            .is_some_and(|q| input.last_attempt_at_ms.is_none_or(|a| q >= a))
}

/// When the account can serve again, if it cannot now: its cooldown or its spent window's
/// reset (`i64::MAX` when spent with no known reset).
fn spent_until(input: &HealthInput<'_>, now_ms: i64) -> Option<i64> {
    let cooling = input.cooldown_until_ms.filter(|&c| c > now_ms);
    let spent = input.usage.and_then(|u| u.spent_until_ms(now_ms));
    match (cooling, spent) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The `all_spent` error when every logged-in account is spent, on the account that resets
/// first. Nothing when some account can still serve or none is logged in. It needs evidence
/// of a usage limit (some account's window at 100 %, or a cooldown that followed a usage-limit
/// hit): other cooldowns alone stay the TypeScript tool's `cooldown_active` warning, since they
/// may come from short rate limits or auth failures.
pub fn all_spent(inputs: &[HealthInput<'_>], now_ms: i64) -> Option<HealthIssue> {
    let usable: Vec<&HealthInput<'_>> = inputs
        .iter()
        .filter(|i| i.login == Login::LoggedIn && !i.needs_login)
        .collect();
    let evidence = usable.iter().any(|i| {
        i.usage.and_then(|u| u.spent_until_ms(now_ms)).is_some() || cooling_after_quota(i, now_ms)
    });
    if !evidence {
        return None;
    }
    let mut first: Option<(&str, i64)> = None;
    for i in &usable {
        let until = spent_until(i, now_ms)?;
        if first.is_none_or(|(_, f)| until < f) {
            first = Some((i.name, until));
        }
    }
    let (name, until) = first?;
    let when = if until == i64::MAX {
        "no reset time is known".to_string()
    } else {
        format!("the first to reset is {name}, in {}", words(until - now_ms))
    };
    Some(HealthIssue {
        account: name.to_string(),
        severity: Severity::Error,
        code: IssueCode::AllSpent,
        message: format!(
            "Every account has hit its usage limit; {when}. Add another account with `cao add <name>` or wait."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{UsageSnapshot, from_headers};

    const NOW: i64 = 1_800_000_000_000;

    fn snap(used: &str, reset_in_s: i64) -> UsageSnapshot {
        let reset = (NOW / 1000 + reset_in_s).to_string();
        let h = [
            ("x-codex-primary-used-percent", used),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", reset.as_str()),
        ];
        from_headers(h.iter().copied(), NOW).unwrap()
    }

    fn input<'a>(name: &'a str, usage: Option<&'a UsageSnapshot>) -> HealthInput<'a> {
        HealthInput {
            name,
            login: Login::LoggedIn,
            token_expires_at_ms: Some(NOW + 100_000_000),
            has_refresh_token: false,
            cooldown_until_ms: None,
            last_attempt_at_ms: None,
            last_quota_at_ms: None,
            consecutive_failures: None,
            last_error: None,
            needs_login: false,
            loose_auth_mode: None,
            auth_path: "/x/auth.json",
            usage,
            shared_with: &[],
        }
    }

    #[test]
    fn warns_at_the_switch_threshold_with_reset() {
        let s = snap("98", 7380);
        let i = account_issue(&input("a", Some(&s)), 98.0, NOW).unwrap();
        assert_eq!(i.code, IssueCode::UsageHigh);
        assert_eq!(i.severity, Severity::Warn);
        assert_eq!(
            i.message,
            "5h window at 98%, resets in 2h 3m; new sessions go to other accounts (switch at 98%)."
        );
        let s = snap("97.9", 60);
        assert_eq!(account_issue(&input("a", Some(&s)), 98.0, NOW), None);
        assert_eq!(account_issue(&input("a", None), 98.0, NOW), None);
        // After the reset the window counts as empty again.
        let s = snap("100", 60);
        assert_eq!(
            account_issue(&input("a", Some(&s)), 98.0, NOW + 61_000),
            None
        );
    }

    #[test]
    fn all_spent_names_the_first_reset() {
        let (s1, s2) = (snap("100", 7200), snap("100", 600));
        let mut cooling = input("c", None);
        cooling.cooldown_until_ms = Some(NOW + 3_600_000);
        let mut logged_out = input("x", None);
        logged_out.login = Login::Missing;
        let inputs = [
            input("a", Some(&s1)),
            input("b", Some(&s2)),
            cooling,
            logged_out,
        ];
        let e = all_spent(&inputs, NOW).unwrap();
        assert_eq!(e.code, IssueCode::AllSpent);
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.account, "b");
        assert!(
            e.message.contains("the first to reset is b, in 10m"),
            "{}",
            e.message
        );
    }

    #[test]
    fn one_usable_account_means_not_all_spent() {
        let (s1, s2) = (snap("100", 7200), snap("50", 600));
        assert_eq!(
            all_spent(&[input("a", Some(&s1)), input("b", Some(&s2))], NOW),
            None
        );
        assert_eq!(
            all_spent(&[input("a", Some(&s1)), input("b", None)], NOW),
            None
        );
        assert_eq!(all_spent(&[], NOW), None);
        // Cooldowns alone (no usage evidence) stay a warning elsewhere.
        let mut cooling = input("c", None);
        cooling.cooldown_until_ms = Some(NOW + 60_000);
        assert_eq!(all_spent(&[cooling], NOW), None);
        // Spent with no reset time still counts, and says so.
        let s3 = from_headers([("x-codex-primary-used-percent", "100")], NOW).unwrap();
        let e = all_spent(&[input("a", Some(&s3))], NOW).unwrap();
        assert!(
            e.message.contains("no reset time is known"),
            "{}",
            e.message
        );
    }

    #[test]
    fn never_seen_accounts_are_information_only() {
        let i = unknown_issue(&input("a", None)).unwrap();
        assert_eq!(i.code, IssueCode::UsageUnknown);
        assert_eq!(i.severity, Severity::Info);
        let s = snap("10", 60);
        assert_eq!(unknown_issue(&input("a", Some(&s))), None);
        let mut out = input("a", None);
        out.login = Login::Missing;
        assert_eq!(unknown_issue(&out), None);
        let h = super::super::summarize(&[input("a", None)], &Default::default(), NOW);
        assert_eq!((h.ok_count, h.warn_count, h.exit_code()), (1, 0, 0));
        assert_eq!(h.worst("a"), None);
    }

    #[test]
    fn the_threshold_is_the_gateways_switch_at() {
        let s = snap("91", 600);
        assert_eq!(account_issue(&input("a", Some(&s)), 98.0, NOW), None);
        let i = account_issue(&input("a", Some(&s)), 90.0, NOW).unwrap();
        assert!(i.message.ends_with("(switch at 90%)."), "{}", i.message);
    }

    #[test]
    fn cooldowns_after_usage_limits_on_every_account_are_all_spent() {
        let quota_cooldown = |name, until_in_ms: i64| {
            let mut i = input(name, None);
            i.cooldown_until_ms = Some(NOW + until_in_ms);
            i.last_attempt_at_ms = Some(NOW - 1_000);
            i.last_quota_at_ms = Some(NOW - 1_000);
            i
        };
        let inputs = [quota_cooldown("a", 7_200_000), quota_cooldown("b", 900_000)];
        let e = all_spent(&inputs, NOW).unwrap();
        assert_eq!(e.account, "b");
        assert!(e.message.contains("in 15m"), "{}", e.message);
        // A cooldown whose latest attempt was not a usage-limit hit (a 401, a short rate limit)
        // is no evidence: the account may serve again at once.
        let mut auth_cooldown = quota_cooldown("c", 60_000);
        auth_cooldown.last_attempt_at_ms = Some(NOW - 500);
        assert_eq!(all_spent(&[auth_cooldown], NOW), None);
        // A quota hit whose cooldown has ended is not spent.
        assert_eq!(all_spent(&[quota_cooldown("d", -1)], NOW), None);
    }
}
