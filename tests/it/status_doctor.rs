//! `cao status --doctor` exit codes and issue codes, `--report`, and the deprecated `doctor` /
//! `report` commands, on the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;
use crate::common::files::chmod;
use crate::common::status::{DAY, json_out, three_accounts, write_statuses};

use std::fs;

use common::{TestEnv, now_secs};
use predicates::prelude::*;
use serde_json::{Value, json};

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
