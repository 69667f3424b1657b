//! The real Codex CLI's interactive UI (npm `@openai/codex@0.169.0`, no subcommand) driven like a
//! person at a terminal: inside tmux (a real terminal emulator, so the screen can be read back),
//! typing prompts and pressing keys, against the mock upstream on 127.0.0.1 where account 1 is
//! spent (429 `usage_limit_reached`) and account 2 answers.
//!
//! Every wait polls the screen against a deadline; on failure the screen is in the message.
//! Skipped (returns early) when the real codex or tmux is missing locally.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cao::mock::{AccountFaults, MockUpstream, QuotaFault, Scenario};
use common::TestEnv;
use common::gateway::GatewayProc;

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
    fn press_until(&self, key: &str, pred: impl Fn(&str) -> bool) {
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
pub(crate) fn stop_daemon(codex: &Path, home: &Path) {
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

    fn with_scenario(scenario: Scenario) -> Option<Self> {
        let codex = common::real_codex()?;
        let env = TestEnv::new();
        let exp = common::now_secs() + 3600;
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
    fn http_model_calls(&self) -> Vec<String> {
        self.mock()
            .requests()
            .iter()
            .filter(|r| r.is_model_call())
            .map(|r| format!("{}:{}", r.account().unwrap_or("?"), r.status))
            .collect()
    }

    /// `account:delta|full:answer` of every WebSocket request frame upstream saw (prewarms
    /// marked `prewarm`).
    fn ws_turns(&self) -> Vec<String> {
        self.mock()
            .ws_frames()
            .iter()
            .map(cao::mock::RecordedFrame::summary)
            .collect()
    }

    fn ws_frames_text(&self) -> String {
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
    fn tui_through_gateway_over(
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

/// The TUI routed through a real `cao gateway start` with the `-c` overrides `cao run --gateway`
/// and the shim use. Codex runs logged in as account 1 (as `cao run --gateway` runs it with the
/// default account's CODEX_HOME); the gateway meets account 1's limit and answers from account 2.
#[test]
fn tui_through_the_gateway_gets_its_answer_from_account_two() {
    let Some(s) = Setup::new(0) else { return };
    let Some((gw, home, t)) = s.tui_through_gateway("gw", "acct-1") else {
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

    // Over WebSocket (no HTTP fallback): account 1 refuses the prewarm once; from then on
    // account 2 serves the session.
    assert!(
        s.http_model_calls().is_empty(),
        "no HTTP model call: {:?}",
        s.http_model_calls()
    );
    let turns = s.ws_turns();
    assert_eq!(
        turns
            .iter()
            .filter(|c| c.starts_with("acct-1:"))
            .collect::<Vec<_>>(),
        ["acct-1:prewarm:error:usage_limit_reached"],
        "account 1 asked once: {turns:?}"
    );
    assert!(
        turns
            .iter()
            .any(|c| c.starts_with("acct-2:") && c.ends_with(":completed")),
        "{turns:?}"
    );
    s.assert_bearer_matches_header();
    // Nothing the TUI calls (plugins, MCP, settings, analytics, ...) met the perimeter.
    assert_eq!(gw.refusals(), Vec::<String>::new(), "{}", context());
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

/// Why the gateway serves HTTPS: the backend answers a personal account's workspace check with
/// `NO_CONSTRAINT` (the mock's default), and the TUI then refuses a plain-http
/// `chatgpt_base_url`. Routed over `http://` exactly as before issue 16, it never gets to a
/// prompt, and no model call is made.
#[test]
fn tui_routed_over_plain_http_refuses_to_start_for_a_personal_account() {
    let Some(s) = Setup::new(0) else { return };
    let Some((gw, home, t)) = s.tui_through_gateway_over("plain", "acct-1", false) else {
        return;
    };
    let context = || format!("upstream saw:\n{}", s.requests_text());
    // Codex 0.171 prints "Error: account/read failed: account/read failed: workspace backend
    // must use an HTTPS origin without credentials (code -32603)" and exits 1.
    t.wait_for("Codex's refusal", &context, |scr| scr.contains("[exited "));
    let screen = t.screen();
    assert!(
        screen.contains("workspace backend must use an HTTPS origin without credentials"),
        "{screen}"
    );
    assert!(screen.contains("[exited 1]"), "{screen}");
    assert!(s.model_calls().is_empty(), "{:?}", s.model_calls());
    drop(t);
    stop_daemon(&s.codex, &home);
    gw.stop();
}

/// `cao run -- <routing flags>` (interactive: no prompt, no subcommand) on a terminal, without
/// the gateway. Account 1 answers the first prompt, then hits its limit on the next; cao notices
/// the limit message live and says so; after the person quits Codex, cao starts Codex again on
/// account 2 with `resume <session id>`, so the conversation goes on there.
#[test]
fn cao_run_interactive_resumes_the_conversation_on_account_two() {
    // Codex goes straight to the mock's plain http here (no gateway, so no HTTPS): the mock
    // names an https workspace origin, which Codex only validates.
    let Some(s) = Setup::with_scenario(Scenario {
        workspace_backend_origin: cao::mock::LOOPBACK_HTTPS_ORIGIN.into(),
        ..scenario(1)
    }) else {
        return;
    };
    let base = s.mock().base_url();
    let cao = assert_cmd::cargo::cargo_bin("cao");
    let argv = vec![
        cao.display().to_string(),
        "--data-dir".into(),
        s.env.data_dir().display().to_string(),
        "run".into(),
        "--codex".into(),
        s.codex.display().to_string(),
        "--".into(),
        "-c".into(),
        format!("openai_base_url=\"{base}\""),
        "-c".into(),
        format!("chatgpt_base_url=\"{base}/backend-api\""),
    ];
    let mut env = s.term_env(None);
    env.push(("NO_COLOR", "1".into()));
    let Some(t) = Tmux::start("run", &s.work(), &env, &argv) else {
        return;
    };
    let context = || format!("upstream saw:\n{}", s.requests_text());
    t.wait_for("the TUI to start on account one", &context, tui_ready);
    t.submit("first question");
    t.wait_for("account 1's answer", &context, |scr| {
        scr.contains("Hello from acct-1.")
    });
    t.submit("second question");
    // Codex shows the limit; cao, watching the output live, says what happens next.
    t.wait_for("cao's note about the limit", &context, |scr| {
        scr.contains("hit your usage limit")
            && scr.contains("[cao] account one hit its usage limit")
    });

    // The person leaves Codex; cao continues the conversation on account two. The resumed UI
    // clears the screen and draws the same conversation again, so the switch is seen in the raw
    // terminal output and upstream (account two's start-up calls).
    let two_started = || {
        s.mock()
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/accounts/check") && r.account() == Some("acct-2"))
    };
    t.press_until("C-c", |_| t.raw().contains("[cao] using account two"));
    t.wait_for("Codex to start again on account two", &context, |_| {
        two_started()
    });
    let raw = t.raw();
    assert!(
        raw.contains("[cao] continuing the same conversation (session"),
        "{raw}"
    );
    std::thread::sleep(Duration::from_secs(3));
    t.wait_for("the resumed UI", &context, tui_ready);
    // The earlier exchange is on screen again (the rollout was carried over).
    let screen = t.screen();
    assert!(screen.contains("Hello from acct-1."), "{screen}");
    assert!(screen.contains("second question"), "{screen}");
    t.submit("third question");
    t.wait_for("account 2's answer", &context, |scr| {
        scr.contains("Hello from acct-2.")
    });

    t.quit_codex(&context);
    let raw = t.raw();
    let after = raw.rsplit("[cao] using account two").next().unwrap();
    // Account two was not taken for spent because the old limit message was drawn again.
    assert!(!after.contains("hit its usage limit"), "{after}");
    assert!(after.contains("[exited 0]"), "{after}");

    // Upstream: account 1 answered once and then refused; account 2 answered after that, with
    // the conversation's history (same session); tokens and account ids never mixed.
    let calls = s.model_calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("acct-1:200"),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c == "acct-1:429"), "{calls:?}");
    assert!(calls.iter().all(|c| c != "acct-2:429"), "{calls:?}");
    assert_eq!(
        calls.last().map(String::as_str),
        Some("acct-2:200"),
        "{calls:?}"
    );
    s.assert_bearer_matches_header();
    // The conversation account one left is the one resumed on account two.
    let raw = t.raw();
    let id = raw
        .split("[cao] continuing the same conversation (session ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap()
        .to_string();
    let before = raw.split("[cao] using account two").next().unwrap();
    assert!(before.contains(&format!("codex resume {id}")), "{raw}");

    // cao recorded account one's limit, not account two's.
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.env.data_dir().join("account_status.json")).unwrap(),
    )
    .unwrap();
    assert!(
        status["statuses"]["one"]["cooldownUntilMs"].is_number(),
        "{status}"
    );
    assert!(
        !status["statuses"]["two"]["cooldownUntilMs"].is_number(),
        "{status}"
    );
    drop(t);
    for name in ["one", "two"] {
        stop_daemon(&s.codex, &s.env.data_dir().join(name));
    }
}

/// Routed the way `cao gateway enable` routes a person's own Codex (logged in as an account cao
/// does not hold, `acct-user`). At start-up the TUI asks `GET /backend-api/wham/accounts/check`
/// and looks for its own account in the answer; the gateway forwards that one call with the
/// client's own credentials (no account swap), so the TUI starts, and its model calls are then
/// served by account 2 while account 1 is spent.
#[test]
fn tui_logged_in_as_its_own_account_starts_through_the_gateway() {
    let Some(s) = Setup::new(0) else { return };
    let Some((gw, home, t)) = s.tui_through_gateway("user", "acct-user") else {
        return;
    };
    let context = || {
        format!(
            "upstream saw:\n{}\ngateway log:\n{}",
            s.requests_text(),
            gw.log()
        )
    };
    t.wait_for("the TUI to start (or fail)", &context, |scr| {
        tui_ready(scr) || scr.contains("[exited ") || scr.contains("Error: ")
    });
    t.submit("say hello");
    let failed = |scr: &str| scr.contains("routing discovery") || scr.contains("Error: ");
    t.wait_for(
        "the answer from account 2 (or a failure)",
        &context,
        |scr| scr.contains("Hello from acct-2.") || failed(scr),
    );
    let screen = t.screen();
    assert!(!failed(&screen), "{screen}");
    // The workspace check went upstream as the client itself (bearer and header agreeing); model
    // calls never carried the client's account.
    let reqs = s.mock().requests();
    let check = reqs
        .iter()
        .find(|r| r.path.ends_with("/accounts/check"))
        .unwrap_or_else(|| panic!("no accounts/check upstream\n{}", context()));
    assert_eq!(
        check.bearer_account.as_deref(),
        Some("acct-user"),
        "{check:?}"
    );
    assert_eq!(
        check.header_account.as_deref(),
        Some("acct-user"),
        "{check:?}"
    );
    assert!(
        reqs.iter()
            .filter(|r| r.is_model_call())
            .all(|r| r.account() != Some("acct-user")),
        "{}",
        context()
    );
    assert!(
        s.mock()
            .ws_frames()
            .iter()
            .all(|f| f.account.as_deref() != Some("acct-user")),
        "{}",
        context()
    );
    t.quit_codex(&context);
    drop(t);
    stop_daemon(&s.codex, &home);
    gw.stop();
}

/// Routed like `cao gateway enable` (the shim's `-c` overrides), logged in as an account cao
/// does not hold, over Responses-over-WebSocket: two turns on account 1 as deltas on one
/// socket, account 1 spent on the third, which account 2 answers with nothing on screen, and
/// the turn after that a delta again, on account 2. No HTTP model call at all.
#[test]
fn tui_over_websocket_switches_accounts_mid_session_and_keeps_deltas() {
    // Account 1 serves three responses: turns 1 and 2 and the side request the TUI makes on a
    // second socket of its own (a full request after its own prewarm).
    let Some(s) = Setup::new(3) else { return };
    let Some((gw, home, t)) = s.tui_through_gateway("ws", "acct-own") else {
        return;
    };
    let context = || {
        format!(
            "upstream saw:\n{}\nframes:\n{}\ngateway log:\n{}",
            s.requests_text(),
            s.ws_frames_text(),
            gw.log()
        )
    };
    t.wait_for("the TUI to start", &context, tui_ready);
    let from = ["acct-1", "acct-1", "acct-2", "acct-2", "acct-2"];
    for (n, acct) in from.iter().enumerate() {
        t.submit(&format!("question {n}"));
        let want = format!("Hello from {acct}.");
        let times = from[..=n].iter().filter(|a| *a == acct).count();
        t.wait_for(&format!("answer {n} from {acct}"), &context, |scr| {
            scr.matches(&want).count() >= times
        });
    }
    let screen = t.screen();
    assert!(!screen.contains("usage limit"), "{screen}");
    assert!(!screen.to_lowercase().contains("reconnecting"), "{screen}");
    assert!(
        s.http_model_calls().is_empty(),
        "no HTTP fallback: {:?}",
        s.http_model_calls()
    );
    let turns: Vec<String> = s
        .ws_turns()
        .into_iter()
        .filter(|t| !t.contains(":prewarm:"))
        .collect();
    let hit = turns
        .iter()
        .position(|t| t.ends_with("usage_limit_reached"))
        .unwrap_or_else(|| panic!("no usage limit met: {}", context()));
    assert_eq!(
        turns[hit],
        "acct-1:delta:error:usage_limit_reached",
        "{}",
        context()
    );
    assert_eq!(
        turns.iter().filter(|t| t.contains("error")).count(),
        1,
        "{}",
        context()
    );
    assert!(
        turns[..hit]
            .iter()
            .all(|t| t.starts_with("acct-1:") && t.ends_with(":completed")),
        "{}",
        context()
    );
    assert!(
        turns[..hit]
            .iter()
            .filter(|t| t.contains(":delta:"))
            .count()
            >= 2,
        "turns 1-2 are deltas on account 1: {}",
        context()
    );
    // The spent turn, expanded for account 2, then deltas there again.
    assert_eq!(turns[hit + 1], "acct-2:full:completed", "{}", context());
    assert_eq!(
        &turns[hit + 2..],
        ["acct-2:delta:completed", "acct-2:delta:completed"],
        "{}",
        context()
    );
    s.assert_bearer_matches_header();
    for f in s.mock().ws_frames() {
        assert_ne!(
            f.account.as_deref(),
            Some("acct-own"),
            "the client's own account served a turn: {f:?}"
        );
    }
    assert!(!gw.log().contains("status=426"), "{}", gw.log());
    t.quit_codex(&context);
    drop(t);
    stop_daemon(&s.codex, &home);
    gw.stop();
}
