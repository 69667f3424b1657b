//! The real Codex TUI under tmux, like a person at a terminal: a tmux server of the test's own
//! (a real terminal emulator, so the screen can be read back) and the [`Setup`] the TUI tests
//! share (two logged-in accounts, the mock upstream with account 1 spent after some answers,
//! a gateway in front of it). Every wait polls the screen against a deadline; on failure the
//! screen is in the message.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::TestEnv;
use super::gateway::GatewayProc;
use cao::mock::{AccountFaults, MockUpstream, QuotaFault, Scenario};

/// How long the TUI may take to come up, or to show an answer (2 slow CI cores).
const DEADLINE: Duration = Duration::from_secs(90);

/// A tmux server of this test alone (own socket), holding one window of `cols` x `rows`.
pub(crate) struct Tmux {
    socket: String,
    /// The raw terminal output (`pipe-pane`).
    log: PathBuf,
}

impl Tmux {
    /// Run `argv` (with `env` and `cwd`) in a new detached tmux window.
    pub(crate) fn start(
        name: &str,
        cwd: &Path,
        env: &[(&str, String)],
        argv: &[String],
    ) -> Option<Self> {
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
        let t = Self {
            socket,
            log: cwd.join(format!("terminal-{name}.log")),
        };
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
        // Everything written to the terminal, also what a full-screen redraw wipes later.
        let _ = t
            .cmd()
            .args(["pipe-pane", "-t", "t", "-o"])
            .arg(format!(
                "cat >> {}",
                shell_quote(&t.log.display().to_string())
            ))
            .status();
        Some(t)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// The visible screen plus scrollback, as text.
    pub(crate) fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-J", "-S", "-200", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// All output so far, escapes and all (text a redraw removed from the screen included).
    pub(crate) fn raw(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Type `text` literally.
    pub(crate) fn type_text(&self, text: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", "-t", "t", "-l", text])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Press keys by tmux name (`Enter`, `C-c`).
    pub(crate) fn key(&self, key: &str) {
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
    pub(crate) fn submit(&self, text: &str) {
        self.type_text(text);
        std::thread::sleep(Duration::from_millis(400));
        self.key("Enter");
    }

    /// Press `key` until `pred(screen)` holds (up to 4 times, 5 s apart): the first Ctrl-C may
    /// only interrupt a turn that is finishing.
    pub(crate) fn press_until(&self, key: &str, pred: impl Fn(&str) -> bool) {
        for _ in 0..4 {
            self.key(key);
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if pred(&self.screen()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// Quit Codex the way a person does: Ctrl-C (the first one may only clear the composer or
    /// interrupt a turn, so press again while it still runs).
    pub(crate) fn quit_codex(&self, context: &dyn Fn() -> String) {
        self.press_until("C-c", |s| s.contains("[exited "));
        self.wait_for("Codex to quit", context, |s| s.contains("[exited "));
    }

    /// Wait until `pred(screen)` holds; panic with the screen (and `context`) at the deadline.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        context: &dyn Fn() -> String,
        pred: impl Fn(&str) -> bool,
    ) {
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
pub(crate) fn tui_ready(screen: &str) -> bool {
    screen.contains("for shortcuts")
}

/// A Codex home logged in as `account_id`, with file credentials (as cao's account dirs).
pub(crate) fn codex_home(dir: &Path, account_id: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let auth = super::auth_json(account_id, "me@example.com", super::now_secs() + 3600);
    std::fs::write(dir.join("auth.json"), auth.to_string()).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "cli_auth_credentials_store = \"file\"\n",
    )
    .unwrap();
}

/// Codex's TUI starts a background app-server daemon per CODEX_HOME when its URLs come from
/// config.toml (not with `-c` overrides); stop one if it appeared, so nothing outlives the test.
pub(crate) fn stop_daemon(codex: &Path, home: &Path) {
    if home.join("packages/app-server-daemon").exists() {
        let _ = Command::new(codex)
            .args(["app-server", "daemon", "stop"])
            .env("CODEX_HOME", home)
            .output();
    }
}

/// Account 1 answers `acct1_serves` model calls, then is spent (a 2 h limit); every account
/// replies "Hello from {account}.".
pub(crate) fn scenario(acct1_serves: u32) -> Scenario {
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

pub(crate) struct Setup {
    pub(crate) env: TestEnv,
    rt: tokio::runtime::Runtime,
    mock: Option<MockUpstream>,
    pub(crate) codex: PathBuf,
}

impl Setup {
    /// The mock answers the workspace check as for a personal account (`NO_CONSTRAINT`).
    pub(crate) fn new(acct1_serves: u32) -> Option<Self> {
        Self::with_scenario(scenario(acct1_serves))
    }

    pub(crate) fn with_scenario(scenario: Scenario) -> Option<Self> {
        let codex = super::real_codex()?;
        let env = TestEnv::new();
        let exp = super::now_secs() + 3600;
        env.add_logged_in("one", "acct-1", exp);
        env.add_logged_in("two", "acct-2", exp);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mock = rt
            .block_on(MockUpstream::spawn("127.0.0.1", 0, scenario))
            .unwrap();
        std::fs::create_dir_all(env.dir.path().join("work")).unwrap();
        Some(Self {
            env,
            rt,
            mock: Some(mock),
            codex,
        })
    }

    /// The CA bundle the gateway wrote for Codex.
    pub(crate) fn bundle(&self) -> PathBuf {
        self.env.data_dir().join("tls").join("codex-ca-bundle.pem")
    }

    pub(crate) fn mock(&self) -> &MockUpstream {
        self.mock.as_ref().unwrap()
    }

    pub(crate) fn work(&self) -> PathBuf {
        self.env.dir.path().join("work")
    }

    /// The environment of the terminal: a temp HOME, the real codex's dir on PATH.
    pub(crate) fn term_env(&self, codex_home: Option<&Path>) -> Vec<(&'static str, String)> {
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

    /// `account:status` of every model call upstream saw (HTTP, then WebSocket frames).
    pub(crate) fn model_calls(&self) -> Vec<String> {
        self.mock().model_calls()
    }

    /// `account:status` of the model calls made over HTTP (a fallback from WebSocket).
    pub(crate) fn http_model_calls(&self) -> Vec<String> {
        self.mock()
            .requests()
            .iter()
            .filter(|r| r.is_model_call())
            .map(|r| format!("{}:{}", r.account().unwrap_or("?"), r.status))
            .collect()
    }

    /// `account:delta|full:answer` of every WebSocket request frame upstream saw (prewarms
    /// marked `prewarm`).
    pub(crate) fn ws_turns(&self) -> Vec<String> {
        self.mock()
            .ws_frames()
            .iter()
            .map(cao::mock::RecordedFrame::summary)
            .collect()
    }

    pub(crate) fn ws_frames_text(&self) -> String {
        self.mock()
            .ws_frames()
            .iter()
            .map(|f| {
                format!(
                    "socket {} {:?} prev={:?} items={} bytes={} -> {} {:?}",
                    f.socket,
                    f.account,
                    f.previous_response_id,
                    f.input_items,
                    f.bytes,
                    f.answer,
                    f.response_id
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Upstream never saw one account's token next to another account's id.
    pub(crate) fn assert_bearer_matches_header(&self) {
        for r in self.mock().requests() {
            if let (Some(b), Some(h)) = (&r.bearer_account, &r.header_account) {
                assert_eq!(b, h, "mismatched bearer/chatgpt-account-id: {r:?}");
            }
        }
        for f in self.mock().ws_frames() {
            assert_eq!(
                f.bearer_account, f.header_account,
                "mismatched frame credentials: {f:?}"
            );
        }
    }

    pub(crate) fn requests_text(&self) -> String {
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

    /// The TUI's start-up workspace check reached upstream (through the gateway) and was answered.
    pub(crate) fn assert_workspace_checked(&self) {
        assert!(
            self.mock()
                .requests()
                .iter()
                .any(|r| r.path == "/backend-api/wham/accounts/check" && r.status == 200),
            "{}",
            self.requests_text()
        );
    }

    /// What upstream saw and what the gateway logged, for a failure's message.
    pub(crate) fn gateway_context(&self, gw: &GatewayProc) -> String {
        format!(
            "upstream saw:\n{}\ngateway log:\n{}",
            self.requests_text(),
            gw.log()
        )
    }

    /// Ask the TUI to say hello and wait for account 2's answer.
    pub(crate) fn hello_from_account_two(&self, t: &Tmux, context: &dyn Fn() -> String) {
        t.submit("say hello");
        t.wait_for("the answer from account 2", context, |scr| {
            scr.contains("Hello from acct-2.")
        });
    }

    /// The end of a TUI test: quit Codex, close its tmux, and stop the daemon of its `home`.
    pub(crate) fn leave(&self, t: Tmux, home: &Path, context: &dyn Fn() -> String) {
        t.quit_codex(context);
        drop(t);
        stop_daemon(&self.codex, home);
    }

    /// A real `cao gateway start` in front of the mock, and the TUI logged in as `account`
    /// (its own CODEX_HOME) routed through it with the `-c` overrides the shim and
    /// `cao run --gateway` use: over the gateway's HTTPS with cao's CA bundle, as they do.
    /// `None` when tmux is missing.
    pub(crate) fn tui_through_gateway(
        &self,
        session: &str,
        account: &str,
    ) -> Option<(GatewayProc, PathBuf, Tmux)> {
        self.tui_through_gateway_over(session, account, true)
    }

    /// [`Setup::tui_through_gateway`], over plain `http://` when `https` is false.
    pub(crate) fn tui_through_gateway_over(
        &self,
        session: &str,
        account: &str,
        https: bool,
    ) -> Option<(GatewayProc, PathBuf, Tmux)> {
        let gw = GatewayProc::start(
            &self.env,
            &[
                "--base-url",
                &self.mock().base_url(),
                "--token-url",
                &self.mock().token_url(),
            ],
        );
        let home = self.env.dir.path().join(format!("{account}-codex-home"));
        codex_home(&home, account);
        let url = match https {
            true => gw
                .tls_url
                .clone()
                .expect("the gateway serves https on loopback"),
            false => gw.url.clone(),
        };
        let mut argv = vec![self.codex.display().to_string()];
        argv.extend(cao::codex::config_edit::cli_overrides(&url));
        let mut env = self.term_env(Some(&home));
        if https {
            env.push(("CODEX_CA_CERTIFICATE", self.bundle().display().to_string()));
        }
        let t = Tmux::start(session, &self.work(), &env, &argv)?;
        Some((gw, home, t))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(m) = self.mock.take() {
            self.rt.block_on(m.shutdown());
        }
    }
}
