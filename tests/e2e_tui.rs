//! The real Codex CLI's interactive UI (npm `@openai/codex@0.169.0`, no subcommand) driven like a
//! person at a terminal: inside tmux (a real terminal emulator, so the screen can be read back),
//! typing prompts and pressing keys, against the mock upstream on 127.0.0.1 where account 1 is
//! spent (429 `usage_limit_reached`) and account 2 answers.
//!
//! Every wait polls the screen against a deadline; on failure the screen is in the message.
//! Skipped (returns early) when the real codex or tmux is missing locally.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cao::mock::{AccountFaults, MockUpstream, QuotaFault, Scenario};
use common::TestEnv;
use common::gateway::GatewayProc;

/// How long the TUI may take to come up, or to show an answer (2 slow CI cores).
const DEADLINE: Duration = Duration::from_secs(90);

/// A tmux server of this test alone (own socket), holding one window of `cols` x `rows`.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Run `argv` (with `env` and `cwd`) in a new detached tmux window.
    fn start(name: &str, cwd: &Path, env: &[(&str, String)], argv: &[String]) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            if std::env::var_os("CI").is_some() {
                panic!("tmux is required under CI (scripts/test installs it)");
            }
            eprintln!("skipping: tmux not found");
            return None;
        }
        let socket = format!("cao-e2e-{}-{name}", std::process::id());
        // `env -i` so the window sees exactly this environment, not the tmux server's.
        let mut cmd = vec!["env".to_string(), "-i".to_string()];
        cmd.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.extend(argv.iter().cloned());
        let line = cmd
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        let t = Self { socket };
        let out = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                "40",
                "-c",
            ])
            .arg(cwd)
            .arg(format!("{line}; echo '[exited '$?']'; sleep 600"))
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux: {out:?}");
        Some(t)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// The visible screen plus scrollback, as text.
    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-J", "-S", "-200", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Type `text` literally.
    fn type_text(&self, text: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", "-t", "t", "-l", text])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Press keys by tmux name (`Enter`, `C-c`).
    fn key(&self, key: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", "-t", "t", key])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Type a prompt and submit it. The pause keeps Codex from taking the Enter as part of a
    /// paste (it treats very fast input as pasted text).
    fn submit(&self, text: &str) {
        self.type_text(text);
        std::thread::sleep(Duration::from_millis(400));
        self.key("Enter");
    }

    /// Quit Codex the way a person does: Ctrl-C (the first one may only clear the composer or
    /// interrupt a turn, so press again while it still runs).
    fn quit_codex(&self, context: &dyn Fn() -> String) {
        for _ in 0..4 {
            self.key("C-c");
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if self.screen().contains("[exited ") {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        self.wait_for("Codex to quit", context, |s| s.contains("[exited "));
    }

    /// Wait until `pred(screen)` holds; panic with the screen (and `context`) at the deadline.
    fn wait_for(&self, what: &str, context: &dyn Fn() -> String, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let s = self.screen();
            if pred(&s) {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}\n{}", context());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only this test's tmux server (its own socket) and what runs in it.
        let _ = self.cmd().arg("kill-server").status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The TUI is up and waiting for input.
fn tui_ready(screen: &str) -> bool {
    screen.contains("for shortcuts")
}

/// A Codex home logged in as `account_id`, with file credentials (as cao's account dirs).
fn codex_home(dir: &Path, account_id: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let auth = common::auth_json(account_id, "me@example.com", common::now_secs() + 3600);
    std::fs::write(dir.join("auth.json"), auth.to_string()).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "cli_auth_credentials_store = \"file\"\n",
    )
    .unwrap();
}

/// Codex's TUI starts a background app-server daemon per CODEX_HOME when its URLs come from
/// config.toml (not with `-c` overrides); stop one if it appeared, so nothing outlives the test.
fn stop_daemon(codex: &Path, home: &Path) {
    if home.join("packages/app-server-daemon").exists() {
        let _ = Command::new(codex)
            .args(["app-server", "daemon", "stop"])
            .env("CODEX_HOME", home)
            .output();
    }
}

fn scenario(acct1_serves: u32) -> Scenario {
    Scenario {
        reply: "Hello from {account}.".into(),
        ..Scenario::default()
    }
    .with_account(
        "acct-1",
        AccountFaults {
            quota: Some(QuotaFault {
                resets_in_seconds: Some(7200),
                after_requests: acct1_serves,
                ..QuotaFault::default()
            }),
            ..AccountFaults::default()
        },
    )
}

struct Setup {
    env: TestEnv,
    rt: tokio::runtime::Runtime,
    mock: Option<MockUpstream>,
    codex: PathBuf,
}

impl Setup {
    fn new(acct1_serves: u32) -> Option<Self> {
        let codex = common::real_codex()?;
        let env = TestEnv::new();
        let exp = common::now_secs() + 3600;
        env.add_logged_in("one", "acct-1", exp);
        env.add_logged_in("two", "acct-2", exp);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mock = rt
            .block_on(MockUpstream::spawn("127.0.0.1", 0, scenario(acct1_serves)))
            .unwrap();
        std::fs::create_dir_all(env.dir.path().join("work")).unwrap();
        Some(Self {
            env,
            rt,
            mock: Some(mock),
            codex,
        })
    }

    fn mock(&self) -> &MockUpstream {
        self.mock.as_ref().unwrap()
    }

    fn work(&self) -> PathBuf {
        self.env.dir.path().join("work")
    }

    /// The environment of the terminal: a temp HOME, the real codex's dir on PATH.
    fn term_env(&self, codex_home: Option<&Path>) -> Vec<(&'static str, String)> {
        let path = std::env::join_paths([
            self.codex.parent().unwrap().to_path_buf(),
            "/usr/local/bin".into(),
            "/usr/bin".into(),
            "/bin".into(),
        ])
        .unwrap();
        let mut v = vec![
            (
                "HOME",
                self.env.dir.path().join("home").display().to_string(),
            ),
            ("PATH", path.to_string_lossy().into_owned()),
            ("TERM", "xterm-256color".to_string()),
            ("LANG", "C.UTF-8".to_string()),
        ];
        if let Some(h) = codex_home {
            v.push(("CODEX_HOME", h.display().to_string()));
        }
        v
    }

    /// `account:status` of every model call upstream saw.
    fn model_calls(&self) -> Vec<String> {
        self.mock()
            .requests()
            .iter()
            .filter(|r| r.is_model_call())
            .map(|r| format!("{}:{}", r.account().unwrap_or("?"), r.status))
            .collect()
    }

    /// Upstream never saw one account's token next to another account's id.
    fn assert_bearer_matches_header(&self) {
        for r in self.mock().requests() {
            if let (Some(b), Some(h)) = (&r.bearer_account, &r.header_account) {
                assert_eq!(b, h, "mismatched bearer/chatgpt-account-id: {r:?}");
            }
        }
    }

    fn requests_text(&self) -> String {
        self.mock()
            .requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {} bearer={:?} header={:?} -> {}",
                    r.method, r.path, r.bearer_account, r.header_account, r.status
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(m) = self.mock.take() {
            self.rt.block_on(m.shutdown());
        }
    }
}

/// The TUI routed through a real `cao gateway start` with the `-c` overrides `cao run --gateway`
/// and the shim use. Codex runs logged in as account 1 (as `cao run --gateway` runs it with the
/// default account's CODEX_HOME); the gateway meets account 1's limit and answers from account 2.
#[test]
fn tui_through_the_gateway_gets_its_answer_from_account_two() {
    let Some(s) = Setup::new(0) else { return };
    let gw = GatewayProc::start(
        &s.env,
        &[
            "--base-url",
            &s.mock().base_url(),
            "--token-url",
            &s.mock().token_url(),
        ],
    );
    let home = s.env.dir.path().join("client-codex-home");
    codex_home(&home, "acct-1");
    let mut argv = vec![s.codex.display().to_string()];
    argv.extend(cao::codex::config_edit::cli_overrides(&gw.url));
    let Some(t) = Tmux::start("gw", &s.work(), &s.term_env(Some(&home)), &argv) else {
        return;
    };
    let context = || {
        format!(
            "upstream saw:\n{}\ngateway log:\n{}",
            s.requests_text(),
            gw.log()
        )
    };
    t.wait_for("the TUI to start", &context, tui_ready);

    t.submit("say hello");
    t.wait_for("the answer from account 2", &context, |scr| {
        scr.contains("Hello from acct-2.")
    });
    let screen = t.screen();
    assert!(!screen.contains("usage limit"), "{screen}");
    assert!(!screen.contains("Hello from acct-1."), "{screen}");

    let calls = s.model_calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("acct-1:")).count(),
        1,
        "account 1 asked once: {calls:?}"
    );
    assert_eq!(
        calls.first().map(String::as_str),
        Some("acct-1:429"),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c == "acct-2:200"), "{calls:?}");
    s.assert_bearer_matches_header();
    // The TUI's start-up workspace check went through the gateway too.
    assert!(
        s.mock()
            .requests()
            .iter()
            .any(|r| r.path == "/backend-api/wham/accounts/check" && r.status == 200),
        "{}",
        s.requests_text()
    );

    t.quit_codex(&context);
    drop(t);
    stop_daemon(&s.codex, &home);
    gw.stop();
}
