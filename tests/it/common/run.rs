//! Helpers of the `cao run` tests ([`crate::run`] and its siblings): a fake codex over two
//! accounts and the usage-limit message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::PathBuf;

use common::TestEnv;
use serde_json::Value;

pub const MSG: &str = "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at Nov 26th, 2031 7:37 AM.";

/// Two logged-in accounts, `a` (default) then `b`, and a fake codex made from `body`.
/// Every fake logs `<account> <args>` to `calls.log` first.
pub struct Fixture {
    pub env: TestEnv,
    pub codex: PathBuf,
}

impl Fixture {
    pub fn new(accounts: &[&str], body: &str) -> Self {
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

    pub fn cao(&self) -> assert_cmd::Command {
        let mut c = self.env.cao();
        c.arg("run").arg("--codex").arg(&self.codex);
        c
    }

    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.env.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn status(&self, name: &str) -> Value {
        let s: Value = serde_json::from_str(
            &std::fs::read_to_string(self.env.data_dir().join("account_status.json")).unwrap(),
        )
        .unwrap();
        s["statuses"][name].clone()
    }

    pub fn set_cooldown(&self, name: &str, until_ms: i64) {
        let path = self.env.data_dir().join("account_status.json");
        let mut s: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::json!({"statuses": {}}));
        s["statuses"][name] =
            serde_json::json!({"cooldownUntilMs": until_ms, "lastError": "usage_limit_reached"});
        std::fs::write(path, s.to_string()).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }
}

pub fn now_ms() -> i64 {
    common::now_secs() * 1000
}

// ---- pseudo-terminal -------------------------------------------------------------------------

/// `cao run --codex <fake>` with `args`, ready to start on a pseudo-terminal.
pub fn cao_pty_command(f: &Fixture, args: &[&str]) -> portable_pty::CommandBuilder {
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
pub fn run_on_pty(f: &Fixture, args: &[&str]) -> (String, u32) {
    common::run_on_pty(cao_pty_command(f, args), 30, 100, |_| {})
}
