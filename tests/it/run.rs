//! `cao run` with small fake codex programs: fallback, status, cooldowns, exit codes, signals,
//! pipes and pseudo-terminals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};

use common::TestEnv;
use predicates::prelude::*;
use serde_json::Value;

const MSG: &str = "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at Nov 26th, 2031 7:37 AM.";

/// Two logged-in accounts, `a` (default) then `b`, and a fake codex made from `body`.
/// Every fake logs `<account> <args>` to `calls.log` first.
struct Fixture {
    env: TestEnv,
    codex: PathBuf,
}

impl Fixture {
    fn new(accounts: &[&str], body: &str) -> Self {
        let env = TestEnv::new();
        for (i, a) in accounts.iter().enumerate() {
            env.add_logged_in(a, &format!("acct-{i}"), common::now_secs() + 3600);
        }
        let codex = env.dir.path().join("fake-codex");
        let script = format!(
            "#!/bin/sh\nacct=$(basename \"$CODEX_HOME\")\necho \"$acct $*\" >> \"{log}\"\n{body}\n",
            log = env.dir.path().join("calls.log").display()
        );
        std::fs::write(&codex, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&codex, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { env, codex }
    }

    fn cao(&self) -> assert_cmd::Command {
        let mut c = self.env.cao();
        c.arg("run").arg("--codex").arg(&self.codex);
        c
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.env.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn status(&self, name: &str) -> Value {
        let s: Value = serde_json::from_str(
            &std::fs::read_to_string(self.env.data_dir().join("account_status.json")).unwrap(),
        )
        .unwrap();
        s["statuses"][name].clone()
    }

    fn set_cooldown(&self, name: &str, until_ms: i64) {
        let path = self.env.data_dir().join("account_status.json");
        let mut s: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::json!({"statuses": {}}));
        s["statuses"][name] =
            serde_json::json!({"cooldownUntilMs": until_ms, "lastError": "usage_limit_reached"});
        std::fs::write(path, s.to_string()).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }
}

fn now_ms() -> i64 {
    common::now_secs() * 1000
}

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

// ---- signals -------------------------------------------------------------------------------

/// Start cao in its own process group (like a shell job), wait for `ready`, send `sig` to the
/// whole group (what a terminal does on Ctrl-C), then let the fake finish via `go`.
fn signal_run(f: &Fixture, sig: nix::sys::signal::Signal) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cao"));
    cmd.arg("--data-dir")
        .arg(f.env.data_dir())
        .args(["run", "--codex"])
        .arg(&f.codex)
        .args(["--", "exec", "x"])
        .env("HOME", f.env.dir.path().join("home"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let child = cmd.spawn().unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    wait_for_file(&f.path("ready"));
    nix::sys::signal::killpg(pid, sig).unwrap();
    std::fs::write(f.path("go"), "").unwrap();
    child.wait_with_output().unwrap()
}

fn wait_for_file(p: &Path) {
    for _ in 0..600 {
        if p.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} never appeared", p.display());
}

#[test]
fn ctrl_c_reaches_codex_and_cao_exits_with_its_status_without_falling_back() {
    let f = Fixture::new(
        &["a", "b"],
        &format!(
            "trap 'echo \"codex got INT\"; exit 130' INT\n[ $acct = a ] && echo 'ERROR: {MSG}'\ntouch \"$(dirname \"$0\")/ready\"\nwhile :; do sleep 0.05; done"
        ),
    );
    let out = signal_run(&f, nix::sys::signal::Signal::SIGINT);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("codex got INT"));
    // Even though account a printed the usage-limit message, an interrupt never falls back.
    assert_eq!(f.calls(), vec!["a exec x"]);
}

#[test]
fn codex_that_ignores_ctrl_c_keeps_running_and_cao_survives() {
    let f = Fixture::new(
        &["a", "b"],
        "trap '' INT\nd=$(dirname \"$0\")\ntouch \"$d/ready\"\nwhile [ ! -f \"$d/go\" ]; do sleep 0.05; done\necho finished\nexit 0",
    );
    let out = signal_run(&f, nix::sys::signal::Signal::SIGINT);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "finished\n");
}

// ---- pseudo-terminal -------------------------------------------------------------------------

/// `cao run --codex <fake>` with `args`, ready to start on a pseudo-terminal.
fn cao_pty_command(f: &Fixture, args: &[&str]) -> portable_pty::CommandBuilder {
    let mut cmd = portable_pty::CommandBuilder::new(assert_cmd::cargo::cargo_bin("cao"));
    cmd.arg("--data-dir");
    cmd.arg(f.env.data_dir());
    cmd.args(["run", "--codex"]);
    cmd.arg(&f.codex);
    cmd.args(args);
    cmd.env("HOME", f.env.dir.path().join("home"));
    cmd.env("NO_COLOR", "1");
    cmd.cwd(f.env.dir.path());
    cmd
}

/// Run `cao run <args>` on a 30x100 pseudo-terminal; returns what reached it and the exit code.
fn run_on_pty(f: &Fixture, args: &[&str]) -> (String, u32) {
    common::run_on_pty(cao_pty_command(f, args), 30, 100, |_| {})
}

#[test]
fn on_a_terminal_codex_gets_a_terminal_too() {
    let f = Fixture::new(
        &["a"],
        "if [ -t 0 ] && [ -t 1 ]; then echo \"codex on a tty: $(stty size)\"; else echo 'codex NOT on a tty'; fi",
    );
    let (out, code) = run_on_pty(&f, &["--", "exec", "x"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("codex on a tty: 30 100"), "{out}");
    // And through pipes it is not.
    f.cao()
        .args(["--", "exec", "x"])
        .assert()
        .success()
        .stdout("codex NOT on a tty\n");
}

#[test]
fn interactive_ui_limit_is_noticed_live_and_cao_moves_on_after_codex_exits_zero() {
    // Like the TUI: show the message, keep going, and exit 0 when the person leaves.
    let f = Fixture::new(
        &["a", "b"],
        &format!(
            "if [ $acct = a ]; then printf '\\033[2;1H\\033[1m■ {MSG}\\033[0m\\033[3;1H'; sleep 0.3; exit 0; fi\necho \"tty ui on $acct\""
        ),
    );
    let (out, code) = run_on_pty(&f, &["--", "fix the bug"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cao continues on the next account"), "{out}");
    assert!(out.contains("tty ui on b"), "{out}");
    assert_eq!(f.calls(), vec!["a fix the bug", "b fix the bug"]);
    assert!(f.status("a")["cooldownUntilMs"].is_i64());
}

/// Run cao on a pseudo-terminal inside a shell wrapper that afterwards prints cao's exit code
/// and whether the terminal is back in cooked mode (icanon, echo).
fn run_then_check_terminal(body: &str) -> String {
    let f = Fixture::new(&["a"], body);
    let wrapper = f.path("wrap.sh");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n\"$@\"\necho \"exit: $?\"\necho \"after: $(stty -a | tr ' ' '\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' ')\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = portable_pty::CommandBuilder::new(&wrapper);
    cmd.args(cao_pty_command(&f, &["--", "exec", "x"]).get_argv());
    cmd.env("NO_COLOR", "1");
    common::run_on_pty(cmd, 24, 80, |_| {}).0
}

#[test]
fn terminal_is_restored_after_the_run() {
    let out = run_then_check_terminal("echo child");
    assert!(out.contains("child"), "{out}");
    assert!(out.contains("exit: 0"), "{out}");
    assert!(out.contains("after: icanon echo"), "{out}");
}

#[test]
fn terminal_is_restored_when_codex_dies_from_a_signal() {
    // Codex put the terminal in raw mode and the alternate screen, then was killed.
    let out = run_then_check_terminal("stty raw -echo; printf '\\033[?1049h'; kill -KILL $$");
    assert!(out.contains("exit: 137"), "{out}");
    assert!(out.contains("\x1b[?1049l"), "{out:?}");
    assert!(out.contains("after: icanon echo"), "{out}");
}

// ---- continuing the conversation on the next account ----------------------------------------

const SESSION: &str = "01a20f6c-5deb-7bf0-b88f-0458697f3e9a";

/// On account a: record a session like Codex does (a rollout under $CODEX_HOME/sessions) with
/// or without a model answer in it, then hit the limit. On b: report whether the rollout is
/// visible there.
fn session_fake(model_answered: bool) -> String {
    let answer = if model_answered {
        r#"{"type":"response_item","payload":{"type":"message","role":"assistant","content":[]}}"#
    } else {
        r#"{"type":"event_msg","payload":{"type":"task_started"}}"#
    };
    format!(
        r#"f="$CODEX_HOME/sessions/2026/11/24/rollout-2026-11-24T21-18-09-{SESSION}.jsonl"
if [ $acct = a ]; then
  mkdir -p "$(dirname "$f")"
  echo '{{"type":"response_item","payload":{{"type":"message","role":"user","content":[]}}}}' > "$f"
  echo '{answer}' >> "$f"
  echo 'ERROR: {MSG}' >&2; exit 1
fi
[ -f "$f" ] && echo "session visible on $acct" || echo "no session on $acct""#
    )
}

#[test]
fn the_conversation_continues_on_the_next_account_with_exec_resume() {
    let f = Fixture::new(&["a", "b"], &session_fake(true));
    f.cao()
        .args(["--", "-c", "x=1", "exec", "--json", "do the thing"])
        .assert()
        .success()
        .stdout("session visible on b\n")
        .stderr(predicate::str::contains(format!(
            "continuing the same conversation (session {SESSION}) on account b"
        )));
    assert_eq!(
        f.calls(),
        vec![
            "a -c x=1 exec --json do the thing".to_string(),
            format!("b -c x=1 exec --json resume {SESSION} do the thing"),
        ]
    );
}

#[test]
fn a_session_the_model_never_answered_is_simply_run_again() {
    let f = Fixture::new(&["a", "b"], &session_fake(false));
    f.cao()
        .args(["--", "exec", "do it"])
        .assert()
        .success()
        .stdout("session visible on b\n");
    assert_eq!(f.calls(), vec!["a exec do it", "b exec do it"]);
}

#[test]
fn the_interactive_ui_resumes_the_session_on_the_next_account() {
    let f = Fixture::new(&["a", "b"], &session_fake(true));
    let (out, code) = run_on_pty(&f, &["--", "-m", "gpt-5", "fix the bug"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("session visible on b"), "{out}");
    assert_eq!(
        f.calls(),
        vec![
            "a -m gpt-5 fix the bug".to_string(),
            format!("b -m gpt-5 resume {SESSION}"),
        ]
    );
}

#[test]
fn window_size_changes_reach_codex() {
    // The fake waits until its terminal is 50x132 (polling, bounded), then reports the size.
    let f = Fixture::new(
        &["a"],
        "touch \"$(dirname \"$0\")/ready\"\ni=0\nwhile [ \"$(stty size)\" != '50 132' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\necho \"size now $(stty size)\"",
    );
    let (out, code) = common::run_on_pty(
        cao_pty_command(&f, &["--", "exec", "x"]),
        24,
        80,
        |master| {
            wait_for_file(&f.path("ready"));
            master
                .resize(portable_pty::PtySize {
                    rows: 50,
                    cols: 132,
                    pixel_width: 0,
                    pixel_height: 0,
                })
                .unwrap();
        },
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("size now 50 132"), "{out}");
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
fn piped_stdin_reaches_every_attempt() {
    // Like `echo prompt | cao run -- exec -`: each attempt reads all of stdin.
    let f = Fixture::new(
        &["a", "b"],
        "input=$(cat)\necho \"$acct read: $input\"\nif [ $acct = a ]; then echo 'ERROR: You’ve hit your usage limit.' >&2; exit 1; fi",
    );
    f.cao()
        .args(["--", "exec", "-"])
        .write_stdin("line one\nline two\n")
        .assert()
        .success()
        .stdout("a read: line one\nline two\nb read: line one\nline two\n");
}

#[test]
fn codex_that_ignores_piped_stdin_does_not_hang_cao() {
    let f = Fixture::new(&["a"], "echo done");
    f.cao()
        .args(["--", "exec", "x"])
        .write_stdin(vec![b'x'; 1 << 20])
        .assert()
        .success()
        .stdout("done\n");
}

/// A fake codex that answers like the backend served a turn: it records a session whose
/// rollout holds an assistant message (as the real Codex does under `$CODEX_HOME/sessions`).
const SERVED_TURN: &str = r#"d="$CODEX_HOME/sessions/2026/12/01"; mkdir -p "$d"
echo '{"type":"response_item","payload":{"type":"message","role":"assistant"}}' > "$d/rollout-2026-12-01T00-00-00-0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jsonl"
echo served"#;

#[test]
fn a_local_codex_command_does_not_clear_a_cooldown_only_a_served_turn_does() {
    let f = Fixture::new(&["a", "b"], "echo codex-cli 0.171.0");
    let until = now_ms() + 3_600_000;
    f.set_cooldown("a", until);
    f.cao()
        .args(["--account", "a", "--", "--version"])
        .assert()
        .success()
        .stdout("codex-cli 0.171.0\n");
    let a = f.status("a");
    assert_eq!(a["cooldownUntilMs"], until, "{a}");
    assert_eq!(a["lastError"], "usage_limit_reached", "{a}");

    let f = Fixture::new(&["a", "b"], SERVED_TURN);
    f.set_cooldown("a", until);
    f.cao()
        .args(["--account", "a", "--", "exec", "hi"])
        .assert()
        .success();
    let a = f.status("a");
    assert!(a.get("cooldownUntilMs").is_none(), "{a}");
    assert!(a.get("lastError").is_none(), "{a}");
    assert!(a["lastSuccessAtMs"].is_i64(), "{a}");
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
