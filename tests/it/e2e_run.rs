//! `cao run` driving the real Codex CLI (npm `@openai/codex@0.169.0`) against the mock upstream
//! on 127.0.0.1: account 1 is at its usage limit (429 `usage_limit_reached` with `resets_at`),
//! account 2 answers. Codex is pointed at the mock with `-c` overrides after `--`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use cao::mock::{AccountFaults, MockUpstream, QuotaFault, Scenario};
use common::TestEnv;
use common::codex::route_args;
use serde_json::Value;

struct E2e {
    env: TestEnv,
    rt: tokio::runtime::Runtime,
    mock: Option<MockUpstream>,
    codex: std::path::PathBuf,
}

impl E2e {
    /// Accounts `one` (acct-1, at its limit until `resets_at`) and `two` (acct-2, answers).
    fn start(resets_at: i64) -> Option<Self> {
        Self::start_after(resets_at, 0)
    }

    /// Like [`E2e::start`], but account 1 serves `served` model calls before its limit hits.
    fn start_after(resets_at: i64, served: u32) -> Option<Self> {
        let codex = common::real_codex()?;
        let env = TestEnv::new();
        let exp = common::now_secs() + 3600;
        env.add_logged_in("one", "acct-1", exp);
        env.add_logged_in("two", "acct-2", exp);
        let mut scenario = Scenario {
            reply: "Hello from {account}.".into(),
            ..Scenario::default()
        };
        scenario.accounts.insert(
            "acct-1".into(),
            AccountFaults {
                quota: Some(QuotaFault {
                    resets_at: Some(resets_at),
                    after_requests: served,
                    ..QuotaFault::default()
                }),
                ..AccountFaults::default()
            },
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mock = rt
            .block_on(MockUpstream::spawn("127.0.0.1", 0, scenario))
            .unwrap();
        Some(Self {
            env,
            rt,
            mock: Some(mock),
            codex,
        })
    }

    fn base(&self) -> String {
        self.mock.as_ref().unwrap().base_url()
    }

    fn status(&self, name: &str) -> Value {
        let s: Value = serde_json::from_str(
            &std::fs::read_to_string(self.env.data_dir().join("account_status.json")).unwrap(),
        )
        .unwrap();
        s["statuses"][name].clone()
    }

    /// `account:status` per turn asked of upstream: HTTP model calls and WebSocket request
    /// frames (Codex's prewarms left out: they are not turns).
    fn model_calls_by(&self) -> Vec<String> {
        let m = self.mock.as_ref().unwrap();
        let http = m
            .requests()
            .into_iter()
            .filter(|r| r.is_model_call())
            .map(|r| format!("{}:{}", r.account().unwrap_or("?"), r.status));
        let ws = m
            .ws_frames()
            .into_iter()
            .filter(|f| !f.prewarm)
            .map(|f| format!("{}:{}", f.account.as_deref().unwrap_or("?"), f.status()));
        http.chain(ws).collect()
    }

    /// `cao run [--account <account>] --codex <real codex> -- <args>` in the work dir.
    fn cao_run(&self, account: Option<&str>, args: Vec<String>) -> std::process::Output {
        let mut c = self.env.cao();
        c.current_dir(self.work_dir())
            .arg("run")
            .arg("--codex")
            .arg(&self.codex);
        if let Some(a) = account {
            c.args(["--account", a]);
        }
        c.arg("--")
            .args(args)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap()
    }

    fn work_dir(&self) -> std::path::PathBuf {
        let d = self.env.dir.path().join("work");
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

impl Drop for E2e {
    fn drop(&mut self) {
        if let Some(m) = self.mock.take() {
            self.rt.block_on(m.shutdown());
        }
    }
}

fn codex_exec_args(base: &str, prompt: &str) -> Vec<String> {
    let mut a = route_args(base);
    a.extend(
        ["exec", "--skip-git-repo-check", prompt]
            .iter()
            .map(|s| s.to_string()),
    );
    a
}

#[test]
fn real_codex_falls_back_from_a_spent_account_to_the_next() {
    let resets_at = common::now_secs() + 2 * 3600 + 17;
    let Some(e) = E2e::start(resets_at) else {
        return;
    };
    let out = e.cao_run(None, codex_exec_args(&e.base(), "say hello"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Account 2's reply reaches the user.
    assert!(
        stdout.contains("Hello from acct-2."),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Codex's own message for account 1 passed through, and cao said what it did.
    assert!(stderr.contains("You’ve hit your usage limit"), "{stderr}");
    assert!(stderr.contains("using account two"), "{stderr}");
    // Upstream saw account 1 refused, then account 2 served.
    let calls = e.model_calls_by();
    assert!(calls.iter().any(|c| c == "acct-1:429"), "{calls:?}");
    assert!(calls.last().is_some_and(|c| c == "acct-2:200"), "{calls:?}");
    // Account 1's quota hit and cooldown are recorded, the cooldown ending at the reset Codex
    // printed (to the minute: Codex prints hours and minutes).
    let one = e.status("one");
    assert_eq!(one["lastError"], "usage_limit_reached", "{one}");
    assert!(one["lastQuotaAtMs"].is_i64(), "{one}");
    let until = one["cooldownUntilMs"].as_i64().unwrap();
    let reset_ms = resets_at * 1000;
    assert!(
        until >= reset_ms && until <= reset_ms + 60_000,
        "cooldown {until} vs reset {reset_ms}: {one}"
    );
    let two = e.status("two");
    assert!(two["lastSuccessAtMs"].is_i64(), "{two}");
    assert!(two.get("cooldownUntilMs").is_none(), "{two}");
}

/// Codex's session files for `home` (rollout-*.jsonl under sessions/).
fn rollouts(home: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![home.join("sessions")];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "jsonl") {
                    out.push(p);
                }
            }
        }
    }
    out
}

#[test]
fn the_second_run_skips_the_cooling_account_without_asking_upstream() {
    let resets_at = common::now_secs() + 3600;
    let Some(e) = E2e::start(resets_at) else {
        return;
    };
    for _ in 0..2 {
        let out = e.cao_run(None, codex_exec_args(&e.base(), "again"));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let calls = e.model_calls_by();
    // Account 1 was asked once (first run); the second run went straight to account 2.
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("acct-1")).count(),
        1,
        "{calls:?}"
    );
    assert!(!rollouts(&e.env.data_dir().join("two")).is_empty());
}

#[test]
fn real_codex_resumes_the_same_session_on_the_next_account() {
    let Some(e) = E2e::start_after(common::now_secs() + 3600, 1) else {
        return;
    };
    let run = |args: Vec<String>, account: Option<&str>| e.cao_run(account, args);
    // A first turn on account one (it still has one answer left).
    let out = run(codex_exec_args(&e.base(), "first question"), Some("one"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello from acct-1."));
    let first = rollouts(&e.env.data_dir().join("one"));
    assert_eq!(first.len(), 1, "{first:?}");
    let name = first[0].file_name().unwrap().to_str().unwrap().to_string();
    let id = cao::policy::codex_args::session_id_from_rollout_name(&name)
        .unwrap()
        .to_string();

    // Resume it by id: account one is now at its limit, so cao moves to account two, which
    // has never seen the session: cao copies it there and Codex resumes it.
    let mut args = route_args(&e.base());
    args.extend(
        [
            "exec",
            "--skip-git-repo-check",
            "resume",
            &id,
            "second question",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let out = run(args, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("Hello from acct-2."), "{stdout}\n{stderr}");
    assert!(!stderr.contains("no rollout found"), "{stderr}");
    // Account two's copy of the session holds the whole conversation.
    let two = rollouts(&e.env.data_dir().join("two"));
    let copy = two
        .iter()
        .find(|p| p.to_string_lossy().contains(&id))
        .unwrap_or_else(|| panic!("{two:?}"));
    let text = std::fs::read_to_string(copy).unwrap();
    for needle in [
        "first question",
        "Hello from acct-1.",
        "second question",
        "Hello from acct-2.",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from {}",
            copy.display()
        );
    }
}

/// Run `cao run <args>` on a 40x120 pseudo-terminal in the work dir.
fn run_on_pty(e: &E2e, args: &[String]) -> (String, u32) {
    let mut cmd = portable_pty::CommandBuilder::new(assert_cmd::cargo::cargo_bin("cao"));
    cmd.arg("--data-dir");
    cmd.arg(e.env.data_dir());
    cmd.args(["run", "--codex"]);
    cmd.arg(&e.codex);
    cmd.arg("--");
    cmd.args(args);
    cmd.env("HOME", e.env.dir.path().join("home"));
    cmd.env("TERM", "xterm-256color");
    cmd.cwd(e.work_dir());
    common::run_on_pty(cmd, 40, 120, |_| {})
}

#[test]
fn real_codex_on_a_terminal_falls_back_too() {
    let resets_at = common::now_secs() + 3 * 3600;
    let Some(e) = E2e::start(resets_at) else {
        return;
    };
    let (out, code) = run_on_pty(&e, &codex_exec_args(&e.base(), "say hello"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Hello from acct-2."), "{out}");
    assert!(out.contains("using account two"), "{out}");
    let one = e.status("one");
    let until = one["cooldownUntilMs"].as_i64().unwrap();
    assert!(
        until >= resets_at * 1000 && until <= resets_at * 1000 + 60_000,
        "{one}"
    );
}
