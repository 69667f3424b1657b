//! `cao run` with small fake codex programs: fallback to the next account, cooldowns and their
//! reset times, exit codes, and which accounts are tried. Signals, terminals and pipes are in
//! [`super::run_terminal`], resumed conversations in [`super::run_sessions`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::run::{Fixture, MSG, now_ms};

use common::TestEnv;
use predicates::prelude::*;

/// Prints the usage-limit message and exits 1 on account `a`, succeeds elsewhere.
fn quota_on_a() -> String {
    format!(
        "if [ \"$acct\" = a ]; then echo 'ERROR: {MSG}' >&2; exit 1; fi\necho \"answer from $acct\""
    )
}

#[test]
fn usage_limit_falls_back_to_the_next_account_and_records_the_reset() {
    let f = Fixture::new(&["a", "b"], &quota_on_a());
    f.cao()
        .args(["--", "exec", "hi"])
        .assert()
        .success()
        .stdout("answer from b\n")
        .stderr(predicate::str::contains("You’ve hit your usage limit"))
        .stderr(predicate::str::contains("using account b"));
    assert_eq!(f.calls(), vec!["a exec hi", "b exec hi"]);
    let a = f.status("a");
    let reset = jiff::civil::date(2031, 11, 26)
        .at(7, 38, 0, 0)
        .to_zoned(jiff::tz::TimeZone::system())
        .unwrap()
        .timestamp()
        .as_millisecond();
    assert_eq!(a["cooldownUntilMs"], reset, "{a}");
    assert!(a["lastQuotaAtMs"].as_i64().unwrap() >= now_ms() - 60_000);
    // A usage limit is routine: the cooldown says it, it is not a failure of the account.
    assert!(a["consecutiveFailures"].as_u64().unwrap_or(0) == 0, "{a}");
    assert_eq!(a["lastError"], "usage_limit_reached");
    let b = f.status("b");
    assert!(b["lastSuccessAtMs"].is_i64(), "{b}");
    assert_eq!(b["consecutiveFailures"], 0);
    assert!(b.get("cooldownUntilMs").is_none());
}

#[test]
fn without_a_reset_time_the_cooldown_is_fifteen_minutes() {
    let f = Fixture::new(
        &["a", "b"],
        "if [ \"$acct\" = a ]; then echo \"ERROR: You've hit your usage limit. Try again later.\"; exit 1; fi",
    );
    let before = now_ms();
    f.cao().args(["--", "exec", "x"]).assert().success();
    let a = f.status("a");
    let until = a["cooldownUntilMs"].as_i64().unwrap();
    let seen = a["lastQuotaAtMs"].as_i64().unwrap();
    assert_eq!(until - seen, 15 * 60 * 1000);
    assert!(seen >= before - 1000);
}

#[test]
fn backend_error_types_count_as_quota() {
    let f = Fixture::new(
        &["a", "b"],
        r#"if [ "$acct" = a ]; then echo 'unexpected status 429: {"error":{"type":"usage_limit_reached","resets_at":1950000000}}' >&2; exit 1; fi"#,
    );
    f.cao().args(["--", "exec", "x"]).assert().success();
    assert_eq!(f.status("a")["cooldownUntilMs"], 1_950_000_000_000i64);
}

#[test]
fn ordinary_errors_do_not_switch_accounts() {
    for msg in [
        "Error: context length exceeded",
        "RecursionError: maximum recursion depth exceeded",
        "error[E0425]: cannot find value in src/policy/quota.rs",
    ] {
        let f = Fixture::new(&["a", "b"], &format!("echo '{msg}' >&2; exit 3"));
        f.cao()
            .args(["--", "exec", "x"])
            .assert()
            .code(3)
            .stderr(predicate::str::contains(msg));
        assert_eq!(f.calls(), vec!["a exec x"], "{msg}");
        let a = f.status("a");
        assert_eq!(a["lastError"], "exit_code_3");
        assert_eq!(a["consecutiveFailures"], 1);
        assert!(a.get("cooldownUntilMs").is_none());
    }
}

#[test]
fn success_passes_output_through_unchanged() {
    // Colours, a carriage return, bytes that are not UTF-8, no trailing newline.
    let f = Fixture::new(
        &["a"],
        r"printf '\033[1mbold\033[0m\r\nraw \377\376 end'; printf 'to stderr\n' >&2",
    );
    let out = f.cao().args(["--", "exec", "x"]).assert().success();
    assert_eq!(
        out.get_output().stdout,
        b"\x1b[1mbold\x1b[0m\r\nraw \xff\xfe end".to_vec()
    );
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("to stderr\n"));
}

#[test]
fn leading_codex_word_is_dropped_and_args_pass_untouched() {
    let f = Fixture::new(&["a"], "exit 0");
    f.cao()
        .args(["--", "codex", "exec", "--json", "-c", "x=1", "two words"])
        .assert()
        .success();
    assert_eq!(f.calls(), vec!["a exec --json -c x=1 two words"]);
}

#[test]
fn message_split_across_writes_with_escapes_is_detected() {
    // The phrase is cut mid-word and mid-character (the 3-byte apostrophe), wrapped in colours.
    let f = Fixture::new(
        &["a", "b"],
        r"if [ $acct = a ]; then printf '\033[31mERROR: You\342\200'; sleep 0.2; printf '\231ve hit your us'; sleep 0.2; printf 'age limit.\033[0m Try again at 11:59 PM.'; exit 1; fi",
    );
    f.cao().args(["--", "exec", "x"]).assert().success();
    assert_eq!(f.calls(), vec!["a exec x", "b exec x"]);
}

#[test]
fn every_account_at_its_limit_exits_with_codex_status_and_names_the_soonest_reset() {
    let f = Fixture::new(
        &["a", "b"],
        r#"if [ $acct = a ]; then echo '{"error":{"type":"usage_limit_reached","resets_at":1960000000}}'; else echo '{"error":{"type":"usage_limit_reached","resets_at":1950000000}}'; fi; exit 4"#,
    );
    f.cao()
        .args(["--", "exec", "x"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "every account hit its usage limit",
        ))
        .stderr(predicate::str::contains("b resets first"));
    // The second pass finds both cooling and does not retry them.
    assert_eq!(f.calls().len(), 2);
}

#[test]
fn passes_retry_accounts_whose_reset_has_come() {
    // resets_in_seconds 0: the account is usable again at once, so pass two tries both again.
    let f = Fixture::new(
        &["a", "b"],
        r#"echo '{"error":{"type":"usage_limit_reached","resets_in_seconds":0}}'; exit 1"#,
    );
    f.cao()
        .args(["--max-passes", "3", "--", "exec", "x"])
        .assert()
        .code(1);
    assert_eq!(f.calls().len(), 6);
    // Three usage limits, no failure: quota hits are routine (doctor stays quiet about them).
    assert!(f.status("a").get("consecutiveFailures").is_none());
    assert_eq!(f.status("a")["lastError"], "usage_limit_reached");
}

#[test]
fn cooling_accounts_are_skipped() {
    let f = Fixture::new(&["a", "b"], "echo ok");
    f.set_cooldown("a", now_ms() + 3_600_000);
    f.cao()
        .args(["--", "exec", "x"])
        .assert()
        .success()
        .stderr(predicate::str::contains("skipping account a"));
    assert_eq!(f.calls(), vec!["b exec x"]);
}

#[test]
fn all_cooling_says_which_resets_first_and_fails() {
    let f = Fixture::new(&["a", "b"], "echo ok");
    f.set_cooldown("a", now_ms() + 7_200_000);
    f.set_cooldown("b", now_ms() + 3_600_000);
    f.cao()
        .args(["--", "exec", "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("b resets first"))
        .stderr(predicate::str::contains("--wait"));
    assert!(f.calls().is_empty());
}

#[test]
fn wait_counts_down_to_the_soonest_reset_then_runs() {
    let f = Fixture::new(&["a", "b"], "echo \"ran $acct\"");
    f.set_cooldown("a", now_ms() + 3_600_000);
    f.set_cooldown("b", now_ms() + 1_500);
    f.cao()
        .args(["--wait", "--", "exec", "x"])
        .assert()
        .success()
        .stdout("ran b\n")
        .stderr(predicate::str::contains("waiting for b"));
}

#[test]
fn named_account_runs_alone_even_when_cooling() {
    let f = Fixture::new(&["a", "b"], &quota_on_a());
    f.set_cooldown("b", now_ms() + 3_600_000);
    f.cao()
        .args(["--account", "b", "--", "exec", "x"])
        .assert()
        .success()
        .stderr(predicate::str::contains("anyway"));
    assert_eq!(f.calls(), vec!["b exec x"]);
    let f = Fixture::new(&["a", "b"], &quota_on_a());
    f.cao()
        .args(["--account", "a", "--", "exec", "x"])
        .assert()
        .code(1);
    assert_eq!(f.calls(), vec!["a exec x"]);
    f.cao()
        .args(["--account", "nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn no_fallback_stops_at_the_first_limit() {
    let f = Fixture::new(&["a", "b"], &quota_on_a());
    f.cao()
        .args(["--no-fallback", "--", "exec", "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--no-fallback"));
    assert_eq!(f.calls(), vec!["a exec x"]);
    assert!(f.status("a")["cooldownUntilMs"].is_i64());
}

#[test]
fn user_quota_patterns_from_config_toml() {
    let f = Fixture::new(
        &["a", "b"],
        "if [ $acct = a ]; then echo 'Weekly plan cap reached'; exit 1; fi",
    );
    std::fs::write(
        f.env.data_dir().join("config.toml"),
        "# cao settings\nquota_patterns = [\"plan cap reached\"]\n",
    )
    .unwrap();
    f.cao().args(["--", "exec", "x"]).assert().success();
    assert_eq!(f.calls(), vec!["a exec x", "b exec x"]);

    std::fs::write(
        f.env.data_dir().join("config.toml"),
        "quota_patterns = [\"ok\", \"(unclosed\"]\n",
    )
    .unwrap();
    f.cao()
        .args(["--", "exec", "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("config.toml"))
        .stderr(predicate::str::contains("(unclosed"));
}

#[test]
fn missing_codex_binary_is_a_clear_error() {
    let f = Fixture::new(&["a"], "exit 0");
    f.env
        .cao()
        .args(["run", "--codex", "/nonexistent/codex"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--codex"));
    let empty = TestEnv::new();
    empty
        .cao()
        .args(["run", "--codex", "/bin/true"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cao add"));
}

#[test]
fn accounts_that_need_a_new_login_are_skipped() {
    let f = Fixture::new(&["a", "b"], "echo ok");
    std::fs::write(
        f.env.data_dir().join("account_status.json"),
        r#"{"statuses":{"a":{"needsLogin":true}}}"#,
    )
    .unwrap();
    std::fs::remove_file(f.env.data_dir().join("b/auth.json")).unwrap();
    f.cao()
        .args(["--", "exec", "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "skipping account a: its token refresh failed",
        ))
        .stderr(predicate::str::contains(
            "skipping account b: it has no auth.json",
        ))
        .stderr(predicate::str::contains("no account is logged in"));
    assert!(f.calls().is_empty());
}

#[test]
fn no_fallback_runs_only_the_default_and_says_when_it_is_cooling() {
    let f = Fixture::new(&["a", "b"], "echo \"ran $acct\"");
    f.set_cooldown("a", now_ms() + 3_600_000);
    f.cao()
        .args(["--no-fallback", "--", "exec", "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("account a is cooling down"))
        .stderr(predicate::str::contains("Not cooling: b"))
        .stderr(predicate::str::contains("every account").not());
    assert!(f.calls().is_empty(), "{:?}", f.calls());
    // With --wait it waits for that account, not for another.
    f.set_cooldown("a", now_ms() + 1_500);
    f.cao()
        .args(["--no-fallback", "--wait", "--", "exec", "x"])
        .assert()
        .success()
        .stdout("ran a\n");
    assert_eq!(f.calls(), vec!["a exec x"]);
}

#[test]
fn a_named_account_at_its_limit_does_not_claim_every_account_is_spent() {
    let f = Fixture::new(&["a", "b"], &quota_on_a());
    f.cao()
        .args(["--account", "a", "--", "exec", "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("account a hit its usage limit"))
        .stderr(predicate::str::contains(
            "Not cooling: b; run without --account",
        ))
        .stderr(predicate::str::contains("every account").not());
    assert_eq!(f.calls(), vec!["a exec x"]);
}
