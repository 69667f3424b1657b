//! `cao status` in every mode on the real binary: compact, the dashboard, full, JSON, colour only
//! on a terminal, registry order, and reading without writing. Doctor and the reports are in
//! [`super::status_doctor`].
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;
use crate::common::status::{DAY, json_out, three_accounts};

use std::fs;

use common::{TestEnv, now_secs};
use predicates::prelude::*;
use serde_json::{Value, json};

#[test]
fn default_output_off_a_terminal_is_compact() {
    let env = three_accounts();
    let out = env.cao().arg("status").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("* alpha (logged-in) | expires: in 9d 23h | cooldown: none | last_quota: none | failures: 0"), "{text}");
    assert!(
        lines[1].starts_with("  beta (logged-in) | expires: in 2d 23h | cooldown: in 3h 1"),
        "{text}"
    );
    assert!(
        lines[1].contains("| last_quota: 5m ago | failures: 1"),
        "{text}"
    );
    assert!(!text.contains('\x1b'));
    let compact = env.cao().args(["status", "--compact"]).output().unwrap();
    assert_eq!(String::from_utf8(compact.stdout).unwrap(), text);
}

#[test]
fn pretty_is_a_framed_dashboard() {
    let env = three_accounts();
    let out = env.cao().args(["status", "--pretty"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("CAO Status") && text.contains("3 accounts: 2 ok, 1 warn · "),
        "{text}"
    );
    assert!(
        text.starts_with('┌') && text.trim_end().ends_with('┘'),
        "{text}"
    );
    // Every line of the frame has the same width.
    let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
    assert!(widths.iter().all(|w| *w == 88), "{widths:?}\n{text}");
    assert!(
        text.contains("* alpha  OK  alpha@example.com · plus · acc-alpha"),
        "{text}"
    );
    assert!(text.contains("beta  WARN"), "{text}");
    assert!(
        text.contains("cooling until ") && text.contains("(in 3h 1"),
        "{text}"
    );
    assert!(
        // A cooldown after a usage limit is one state, not also a last_error warning.
        text.contains("warn cooldown_active") && !text.contains("warn last_error"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour off a terminal");
}

#[test]
fn colour_only_when_forced_and_never_with_no_color() {
    let env = three_accounts();
    let out = env
        .cao()
        .args(["status", "--pretty"])
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\x1b["));
    let out = env
        .cao()
        .args(["status", "--pretty"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\x1b'));
}

#[test]
fn full_shows_absolute_and_relative_times() {
    let env = three_accounts();
    let out = env.cao().args(["status", "--full"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("* alpha\n  status: logged-in\n  email: alpha@example.com\n  plan: plus\n  account_id: acc-alpha\n"), "{text}");
    assert!(
        text.contains("  last_refresh_at: 2026-11-01T00:00:00.000Z ("),
        "{text}"
    );
    let beta = text.split("  beta\n").nth(1).unwrap();
    assert!(
        beta.contains("  last_quota_at: ") && beta.contains("Z (5m ago)"),
        "{beta}"
    );
    assert!(beta.contains("Z (in 3h 1"), "{beta}");
    assert!(beta.contains("  last_error: usage_limit_reached"), "{beta}");
    assert!(
        beta.contains(&format!(
            "  account_dir: {}",
            env.data_dir().join("beta").display()
        )),
        "{beta}"
    );
}

#[test]
fn json_has_the_typescript_fields_plus_email_and_plan() {
    let env = three_accounts();
    let (v, code) = json_out(&env, &["status", "--json"]);
    assert_eq!(code, 0);
    let recs = v.as_array().unwrap();
    assert_eq!(recs.len(), 3);
    let keys: Vec<&str> = recs[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let ts = [
        "name",
        "isDefault",
        "loggedIn",
        "accountId",
        "organizationId",
        "tokenExpiresAtMs",
        "tokenExpiresAtIso",
        "tokenExpiresInMs",
        "lastRefreshAtMs",
        "lastRefreshAtIso",
        "lastAttemptAtMs",
        "lastAttemptAtIso",
        "lastSuccessAtMs",
        "lastSuccessAtIso",
        "lastQuotaAtMs",
        "lastQuotaAtIso",
        "cooldownUntilMs",
        "cooldownUntilIso",
        "cooldownRemainingMs",
        "consecutiveFailures",
        "lastError",
        "accountDir",
        "authFilePath",
    ];
    assert_eq!(&keys[..ts.len()], &ts[..]);
    assert!(keys.contains(&"email") && keys.contains(&"planType"));
    let alpha = &recs[0];
    assert_eq!(alpha["isDefault"], true);
    assert_eq!(alpha["email"], "alpha@example.com");
    assert_eq!(alpha["planType"], "plus");
    // The fixture was written a moment ago: its expiry is 10 days from then, to the second.
    let expires = alpha["tokenExpiresAtMs"].as_i64().unwrap();
    let expected = (now_secs() + 10 * DAY) * 1000;
    assert!(
        (expected - 2000..=expected).contains(&expires),
        "{expires} vs {expected}"
    );
    assert_eq!(alpha["lastError"], Value::Null);
    assert_eq!(alpha["cooldownRemainingMs"], 0);
    assert_eq!(
        alpha["authFilePath"],
        json!(env.data_dir().join("alpha/auth.json"))
    );
    let beta = &recs[1];
    let remaining = beta["cooldownRemainingMs"].as_i64().unwrap();
    assert!(
        remaining > 3 * 3_600_000 && remaining <= 3 * 3_600_000 + 15 * 60_000,
        "{remaining}"
    );
    assert_eq!(beta["consecutiveFailures"], 1);
    assert!(beta["cooldownUntilIso"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn empty_data_dir() {
    let env = TestEnv::new();
    env.cao()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("No accounts registered"));
    env.cao()
        .args(["status", "--json"])
        .assert()
        .success()
        .stdout("[]\n");
    let (v, code) = json_out(&env, &["status", "--doctor", "--json"]);
    assert_eq!((v["totals"]["accounts"].clone(), code), (json!(0), 0));
}

#[test]
fn status_reads_without_writing() {
    let env = three_accounts();
    let before: Vec<_> = ["registry.json", "account_status.json", "alpha/auth.json"]
        .iter()
        .map(|f| fs::read(env.data_dir().join(f)).unwrap())
        .collect();
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["status", "--pretty"],
        vec!["status", "--full"],
        vec!["status", "--report"],
        vec!["list"],
    ] {
        env.cao().args(&args).assert().success();
    }
    let after: Vec<_> = ["registry.json", "account_status.json", "alpha/auth.json"]
        .iter()
        .map(|f| fs::read(env.data_dir().join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn many_accounts_keep_registry_order() {
    // Enough accounts for inspection to run on several threads.
    let env = TestEnv::new();
    let names: Vec<String> = (0..150).rev().map(|i| format!("acct-{i:03}")).collect();
    for (i, n) in names.iter().enumerate() {
        common::write_account(&env.data_dir(), n, &format!("acc-{i}"), now_secs() + DAY);
    }
    fs::write(
        env.data_dir().join("registry.json"),
        json!({"default_account": names[7], "accounts": names}).to_string(),
    )
    .unwrap();
    let (v, _) = json_out(&env, &["status", "--json"]);
    let got: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(v[7]["isDefault"], true);
    assert_eq!(v[149]["accountId"], "acc-149");
}

#[test]
fn on_a_terminal_status_is_the_coloured_dashboard_unless_no_color() {
    let env = three_accounts();
    let run = |no_color: bool| {
        let mut cmd = portable_pty::CommandBuilder::new(assert_cmd::cargo::cargo_bin("cao"));
        cmd.arg("--data-dir");
        cmd.arg(env.data_dir());
        cmd.arg("status");
        cmd.env("HOME", env.dir.path().join("home"));
        cmd.env("TERM", "xterm-256color");
        cmd.cwd(env.dir.path());
        cmd.env_remove("CLICOLOR_FORCE");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let (out, code) = common::run_on_pty(cmd, 40, 100, |_| {});
        assert_eq!(code, 0, "{out}");
        out
    };
    let coloured = run(false);
    assert!(
        coloured.contains("CAO Status") && coloured.contains('┌'),
        "{coloured}"
    );
    assert!(
        coloured.contains("\x1b["),
        "colour on a terminal: {coloured}"
    );
    // The frame follows the terminal width (100 columns).
    let plain = run(true);
    assert!(!plain.contains('\x1b'), "{plain}");
    let first = plain.lines().next().unwrap().trim_end_matches('\r');
    assert_eq!(first.chars().count(), 100, "{first}");
}
