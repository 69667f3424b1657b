//! Unit tests of [`super`] (health evaluation), kept apart so the rules read in one sitting.
use super::*;

const NOW: i64 = 1_800_000_000_000;
const H: i64 = HOUR_MS;

fn healthy(name: &str) -> HealthInput<'_> {
    HealthInput {
        name,
        login: Login::LoggedIn,
        token_expires_at_ms: Some(NOW + 48 * H),
        has_refresh_token: false,
        cooldown_until_ms: None,
        last_attempt_at_ms: None,
        last_quota_at_ms: None,
        consecutive_failures: None,
        last_error: None,
        needs_login: false,
        loose_auth_mode: None,
        auth_path: "/d/a/auth.json",
        usage: None,
        shared_with: &[],
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
    i.last_error = Some("exit_code_1");
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
    assert_eq!(s.problems("w").count(), 2);
    let empty = summarize(&[], &opts, NOW);
    assert_eq!(empty.exit_code(), 0);
}

#[test]
fn issue_serializes_like_the_typescript_tool() {
    let mut i = healthy("a");
    i.token_expires_at_ms = Some(NOW - 1);
    let v =
        serde_json::to_value(&evaluate(&i, &HealthOptions::default(), NOW)[0]).unwrap_or_default();
    assert_eq!(
        v,
        serde_json::json!({"account": "a", "severity": "error", "code": "token_expired", "message": "Token is expired."})
    );
    let o = serde_json::to_value(HealthOptions::default()).unwrap_or_default();
    assert_eq!(
        o,
        serde_json::json!({"expiresWithinHours": 24, "maxFailures": 3, "switchAt": 98.0})
    );
}

#[test]
fn routine_states_are_not_problems() {
    // An expired access token with a refresh token is renewed on use.
    let mut i = healthy("a");
    i.token_expires_at_ms = Some(NOW - H);
    i.has_refresh_token = true;
    assert!(codes(&i).is_empty());
    i.has_refresh_token = false;
    assert_eq!(codes(&i), vec!["token_expired"]);
    // A cooldown after a usage limit is one warning; the limit as last error is not another.
    let mut i = healthy("a");
    i.cooldown_until_ms = Some(NOW + H);
    i.last_error = Some("usage_limit_reached");
    assert_eq!(codes(&i), vec!["cooldown_active"]);
    i.cooldown_until_ms = Some(NOW - H);
    i.last_error = Some("usage limit reached");
    assert!(codes(&i).is_empty());
}

#[test]
fn one_login_in_two_places_is_an_error_naming_both_and_the_fix() {
    let shared = [SharedWith {
        place: "/home/me/.codex/auth.json".into(),
        linked: false,
    }];
    let mut i = healthy("a");
    i.shared_with = &shared;
    assert_eq!(codes(&i), ["shared_login"]);
    let issue = &evaluate(&i, &HealthOptions::default(), NOW)[0];
    assert_eq!(issue.severity, Severity::Error);
    for part in [
        "/d/a/auth.json holds the same login",
        "/home/me/.codex/auth.json",
        "`rm /d/a/auth.json`",
        "not `codex logout`",
        "`cao add a`",
    ] {
        assert!(issue.message.contains(part), "{part}: {}", issue.message);
    }
    let linked = [SharedWith {
        place: "/home/me/.codex/auth.json".into(),
        linked: true,
    }];
    i.shared_with = &linked;
    let issue = &evaluate(&i, &HealthOptions::default(), NOW)[0];
    assert!(issue.message.contains("(a symlink)"), "{}", issue.message);
    assert_eq!(
        summarize(&[i], &HealthOptions::default(), NOW).exit_code(),
        2
    );
}
