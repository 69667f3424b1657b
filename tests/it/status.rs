//! `cao status` in every mode, doctor exit codes and issue codes, reports, and the deprecated
//! `doctor` / `report` commands, on the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;

use std::fs;
use std::path::Path;

use common::{TestEnv, now_secs};
use predicates::prelude::*;
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn chmod(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

fn write_statuses(env: &TestEnv, statuses: Value) {
    fs::write(
        env.data_dir().join("account_status.json"),
        serde_json::to_string_pretty(&json!({ "statuses": statuses })).unwrap(),
    )
    .unwrap();
}

fn json_out(env: &TestEnv, args: &[&str]) -> (Value, i32) {
    let out = env.cao().args(args).output().unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (v, out.status.code().unwrap())
}

/// The doctor's issue codes and exit code.
fn doctor(env: &TestEnv, extra: &[&str]) -> (Vec<String>, i32) {
    let mut args = vec!["status", "--doctor", "--json"];
    args.extend_from_slice(extra);
    let (v, code) = json_out(env, &args);
    // Information (`usage_unknown`) is not a problem; tests/it/usage_poll.rs checks it.
    let codes = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["severity"] != "info")
        .map(|i| {
            format!(
                "{}:{}:{}",
                i["account"].as_str().unwrap(),
                i["severity"].as_str().unwrap(),
                i["code"].as_str().unwrap()
            )
        })
        .collect();
    (codes, code)
}

/// Two healthy accounts and one with history.
fn three_accounts() -> TestEnv {
    let env = TestEnv::new();
    let now = now_secs();
    env.add_logged_in("alpha", "acc-alpha", now + 10 * DAY);
    env.add_logged_in("beta", "acc-beta", now + 3 * DAY);
    env.add_logged_in("gamma", "acc-gamma", now + 5 * DAY);
    // The clock to the millisecond (not `now * 1000`, up to a second behind), so "5m ago"
    // holds for a whole second after this, however busy the machine.
    let now_ms = common::now_ms();
    write_statuses(
        &env,
        json!({
            "beta": {"lastAttemptAtMs": now_ms - 60_000, "lastQuotaAtMs": now_ms - 300_000, "cooldownUntilMs": now_ms + 3 * 3_600_000 + 15 * 60_000, "consecutiveFailures": 1, "lastError": "usage_limit_reached"},
            "gamma": {"lastSuccessAtMs": now_ms - 120_000, "consecutiveFailures": 0}
        }),
    );
    env
}

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
fn doctor_exit_zero_when_all_healthy() {
    let env = TestEnv::new();
    env.add_logged_in("alpha", "acc-a", now_secs() + 10 * DAY);
    env.cao()
        .args(["status", "--doctor"])
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("Totals: 1 account: 1 ok (0 warnings, 0 errors)")
                .and(predicate::str::contains("All accounts look healthy.")),
        );
    let (v, code) = json_out(&env, &["status", "--doctor", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        v["thresholds"],
        json!({"expiresWithinHours": 24, "maxFailures": 3, "switchAt": 98.0})
    );
    assert_eq!(
        v["totals"],
        json!({"accounts": 1, "ok": 1, "warnings": 0, "errors": 0})
    );
    assert!(v["generatedAt"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn doctor_exit_one_for_each_warning() {
    let now = now_secs();
    let now_ms = now * 1000;
    // (setup, expected code)
    type Setup = Box<dyn Fn(&TestEnv)>;
    let cases: Vec<(&str, Setup)> = vec![
        (
            "token_expiring_soon",
            Box::new(move |e: &TestEnv| e.add_logged_in("a", "acc", now + 3600)),
        ),
        (
            "token_unknown",
            Box::new(|e: &TestEnv| {
                e.add_logged_in("a", "acc", 0);
                let p = e.data_dir().join("a/auth.json");
                let mut v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
                v["tokens"]["access_token"] = json!("opaque");
                v["tokens"]["id_token"] = json!("opaque");
                fs::write(&p, v.to_string()).unwrap();
            }),
        ),
        (
            "cooldown_active",
            Box::new(move |e: &TestEnv| {
                e.add_logged_in("a", "acc", now + 10 * DAY);
                write_statuses(e, json!({"a": {"cooldownUntilMs": now_ms + 60_000}}));
            }),
        ),
        (
            "failures_high",
            Box::new(move |e: &TestEnv| {
                e.add_logged_in("a", "acc", now + 10 * DAY);
                write_statuses(e, json!({"a": {"consecutiveFailures": 3}}));
            }),
        ),
        (
            "last_error",
            Box::new(move |e: &TestEnv| {
                e.add_logged_in("a", "acc", now + 10 * DAY);
                write_statuses(e, json!({"a": {"lastError": "exit_code_2"}}));
            }),
        ),
        (
            "insecure_permissions",
            Box::new(move |e: &TestEnv| {
                e.add_logged_in("a", "acc", now + 10 * DAY);
                chmod(&e.data_dir().join("a/auth.json"), 0o644);
            }),
        ),
    ];
    for (code_name, setup) in cases {
        let env = TestEnv::new();
        setup(&env);
        let (codes, exit) = doctor(&env, &[]);
        assert_eq!(codes, vec![format!("a:warn:{code_name}")], "{code_name}");
        assert_eq!(exit, 1, "{code_name}");
        env.cao()
            .args(["status", "--doctor"])
            .assert()
            .code(1)
            .stdout(
                predicate::str::contains("* a: WARN (").and(predicate::str::contains(format!(
                    "\n  - [warn] {code_name}: "
                ))),
            );
    }
}

#[test]
fn doctor_exit_two_for_each_error() {
    let now = now_secs();
    // not_logged_in
    let env = TestEnv::new();
    env.cao()
        .args(["add", "a", "--no-login"])
        .assert()
        .success();
    assert_eq!(
        doctor(&env, &[]),
        (vec!["a:error:not_logged_in".to_string()], 2)
    );
    // an unreadable auth.json is not logged in, and the message names the file
    fs::write(env.data_dir().join("a/auth.json"), "{oops").unwrap();
    chmod(&env.data_dir().join("a/auth.json"), 0o600);
    env.cao()
        .args(["status", "--doctor"])
        .assert()
        .code(2)
        .stdout(
            predicate::str::contains("not_logged_in")
                .and(predicate::str::contains("a/auth.json is not valid JSON")),
        );
    // token_expired: only without a refresh token (with one it is renewed on use)
    let env = TestEnv::new();
    env.add_logged_in("a", "acc", now - 60);
    assert_eq!(doctor(&env, &[]), (vec![], 0));
    let auth = env.data_dir().join("a/auth.json");
    let mut v: Value = serde_json::from_str(&fs::read_to_string(&auth).unwrap()).unwrap();
    v["tokens"].as_object_mut().unwrap().remove("refresh_token");
    fs::write(&auth, v.to_string()).unwrap();
    assert_eq!(
        doctor(&env, &[]),
        (vec!["a:error:token_expired".to_string()], 2)
    );
    // needs_login (written by the gateway when a refresh failed for good)
    let env = TestEnv::new();
    env.add_logged_in("a", "acc", now + 10 * DAY);
    write_statuses(&env, json!({"a": {"needsLogin": true}}));
    assert_eq!(
        doctor(&env, &[]),
        (vec!["a:error:needs_login".to_string()], 2)
    );
    env.cao()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("| needs-login"));
    let (v, _) = json_out(&env, &["status", "--json"]);
    assert_eq!(v[0]["needsLogin"], true);
    // errors win over warnings
    env.add_logged_in("b", "acc-b", now + 3600);
    let (codes, exit) = doctor(&env, &[]);
    assert_eq!(
        codes,
        vec!["a:error:needs_login", "b:warn:token_expiring_soon"]
    );
    assert_eq!(exit, 2);
}

#[test]
fn doctor_thresholds_are_options() {
    let env = TestEnv::new();
    let now = now_secs();
    env.add_logged_in("a", "acc", now + 30 * 3600);
    write_statuses(&env, json!({"a": {"consecutiveFailures": 3}}));
    assert_eq!(
        doctor(&env, &[]),
        (vec!["a:warn:failures_high".to_string()], 1)
    );
    assert_eq!(doctor(&env, &["--max-failures", "4"]), (vec![], 0));
    assert_eq!(
        doctor(
            &env,
            &["--max-failures", "4", "--expires-within-hours", "48"]
        ),
        (vec!["a:warn:token_expiring_soon".to_string()], 1)
    );
    let (v, _) = json_out(
        &env,
        &[
            "status",
            "--doctor",
            "--json",
            "--expires-within-hours",
            "0",
            "--max-failures",
            "0",
        ],
    );
    assert_eq!(
        v["thresholds"],
        json!({"expiresWithinHours": 1, "maxFailures": 1, "switchAt": 98.0})
    );
}

#[test]
fn insecure_permissions_are_reported_and_fixed_by_a_write() {
    let env = TestEnv::new();
    env.add_logged_in("a", "acc", now_secs() + 10 * DAY);
    let auth = env.data_dir().join("a/auth.json");
    chmod(&auth, 0o644);
    env.cao()
        .args(["status", "--doctor"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("insecure_permissions").and(predicate::str::contains(
                format!("chmod 600 {}", auth.display()),
            )),
        );
    // Re-importing the account rewrites auth.json atomically with 0600.
    let src = env.dir.path().join("snapshots");
    fs::create_dir_all(&src).unwrap();
    fs::copy(&auth, src.join("a.json")).unwrap();
    env.cao()
        .args(["import", "codex-auth", "--overwrite", "--source"])
        .arg(&src)
        .assert()
        .success();
    assert_eq!(doctor(&env, &[]), (vec![], 0));
    // `cao add` on an existing account tightens it too.
    chmod(&auth, 0o640);
    env.cao()
        .args(["add", "a", "--no-login"])
        .assert()
        .success();
    assert_eq!(doctor(&env, &[]), (vec![], 0));
}

#[test]
fn report_markdown_and_json() {
    let env = three_accounts();
    let out = env.cao().args(["status", "--report"]).output().unwrap();
    assert!(out.status.success());
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.starts_with("# CAO Account Report\n\nGenerated: "),
        "{md}"
    );
    assert!(md.contains("| Account | Default | Login | Plan | Token Expires | Cooldown | Last Quota | Failures | Health |"), "{md}");
    // Absolute times (a shared report is read later): dates, never "in 3h" or "5m ago".
    assert!(
        md.contains("| alpha | yes | logged-in | plus | 20")
            && md.contains(" | none | none | 0 | ok |"),
        "{md}"
    );
    assert!(md.contains("| beta | no | logged-in | plus | 20"), "{md}");
    assert!(md.contains(" | 1 | cooldown_active |"), "{md}");
    assert!(!md.contains(" ago ") && !md.contains("| in "), "{md}");
    assert!(
        !md.contains("@example.com"),
        "the shareable report has no email addresses"
    );
    let md2 = String::from_utf8(
        env.cao()
            .args(["status", "--report", "md"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        md.lines().skip(3).collect::<Vec<_>>(),
        md2.lines().skip(3).collect::<Vec<_>>()
    );

    let (v, code) = json_out(&env, &["status", "--report", "json"]);
    assert_eq!(code, 0);
    assert!(v["generatedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["accounts"].as_array().unwrap().len(), 3);
    assert_eq!(v["accounts"][1]["name"], "beta");
    assert_eq!(v["accounts"][1]["lastError"], "usage_limit_reached");
}

#[test]
fn deprecated_doctor_and_report_still_work() {
    let env = three_accounts();
    env.cao()
        .args(["doctor", "--json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`cao doctor` is deprecated; use `cao status --doctor`",
        ))
        .stdout(predicate::str::contains("\"code\": \"cooldown_active\""));
    env.cao()
        .args(["doctor", "--max-failures", "1"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("failures_high"));
    env.cao()
        .arg("report")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "`cao report` is deprecated; use `cao status --report`",
        ))
        .stdout(predicate::str::starts_with("# CAO Account Report"));
    let out = env
        .cao()
        .args(["report", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accounts"][0]["name"], "alpha");
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

#[test]
fn routine_usage_limits_are_one_state_and_doctor_stays_quiet_about_history() {
    let env = TestEnv::new();
    let now = now_secs();
    for n in ["a", "b", "c"] {
        env.add_logged_in(n, &format!("acc-{n}"), now + 10 * DAY);
    }
    let ms = now * 1000;
    write_statuses(
        &env,
        json!({
            // cooling after a usage limit: one warning (cooldown_active), not two
            "a": {"cooldownUntilMs": ms + 3_600_000, "lastQuotaAtMs": ms - 60_000,
                  "lastAttemptAtMs": ms - 60_000, "lastError": "usage_limit_reached"},
            // a limit that has reset: nothing to fix
            "b": {"cooldownUntilMs": ms - 60_000, "lastQuotaAtMs": ms - 7_200_000,
                  "lastError": "usage_limit_reached", "consecutiveFailures": 0},
            // a real error still warns
            "c": {"lastError": "exit_code_3", "consecutiveFailures": 1}
        }),
    );
    let (codes, exit) = doctor(&env, &[]);
    assert_eq!(codes, vec!["a:warn:cooldown_active", "c:warn:last_error"]);
    assert_eq!(exit, 1);
    write_statuses(&env, json!({"b": {"lastError": "usage_limit_reached"}}));
    assert_eq!(doctor(&env, &[]), (vec![], 0));
}
