//! The real Codex CLI (npm `@openai/codex@0.169.0`) routed through the gateway by
//! `cao gateway enable`, by the shim, and by `cao run --gateway`, against the mock upstream on
//! 127.0.0.1 where account 1 is spent (429 `usage_limit_reached`) and account 2 answers.
//! HOME and CODEX_HOME are temp dirs; the real ~/.codex and ~/.local/bin are never touched.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use cao::gateway::{GatewayConfig, GatewayHandle};
use cao::mock::{AccountFaults, MockUpstream, Scenario};
use common::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(120);
const USER_CONFIG: &str = "# my Codex settings\ncli_auth_credentials_store = \"file\" # keep tokens in auth.json\n\n[tui]\nnotifications = false\n";

struct E2e {
    env: TestEnv,
    rt: tokio::runtime::Runtime,
    mock: Option<MockUpstream>,
    gateway: Option<GatewayHandle>,
    codex: PathBuf,
}

impl E2e {
    /// Accounts `one` (acct-1, spent) and `two` (acct-2, answers) and the user's own Codex home
    /// (logged in as acct-user, never seen upstream once routed).
    fn start() -> Option<Self> {
        let codex = common::real_codex()?;
        let env = TestEnv::new();
        let exp = common::now_secs() + 3600;
        env.add_logged_in("one", "acct-1", exp);
        env.add_logged_in("two", "acct-2", exp);
        let scenario = Scenario {
            reply: "Hello from {account}.".into(),
            ..Scenario::default()
        }
        .with_account("acct-1", AccountFaults::spent(7200));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mock = rt
            .block_on(MockUpstream::spawn("127.0.0.1", 0, scenario))
            .unwrap();
        let e = Self {
            env,
            rt,
            mock: Some(mock),
            gateway: None,
            codex,
        };
        for dir in [e.home(), e.work()] {
            std::fs::create_dir_all(dir).unwrap();
        }
        e.user_codex_home(&e.codex_home());
        Some(e)
    }

    fn mock(&self) -> &MockUpstream {
        self.mock.as_ref().unwrap()
    }

    /// A gateway in the test process, in front of the mock; returns its URL.
    fn start_gateway(&mut self) -> String {
        let config = GatewayConfig {
            port: 0,
            base_url: self.mock().base_url(),
            token_url: self.mock().token_url(),
            ..GatewayConfig::default()
        };
        let store = Arc::new(cao::store::Store::at(self.env.data_dir()));
        let handle = self
            .rt
            .block_on(cao::gateway::spawn(store, config))
            .unwrap();
        let url = handle.base_url();
        self.gateway = Some(handle);
        url
    }

    fn home(&self) -> PathBuf {
        self.env.dir.path().join("home")
    }
    fn codex_home(&self) -> PathBuf {
        self.home().join(".codex")
    }
    fn work(&self) -> PathBuf {
        self.env.dir.path().join("work")
    }
    fn codex_dir(&self) -> PathBuf {
        self.codex.parent().unwrap().to_path_buf()
    }
    /// PATH as a user who followed `enable`'s advice has it: shim first, then the real codex.
    fn path(&self) -> std::ffi::OsString {
        std::env::join_paths([
            self.home().join(".local/bin"),
            self.codex_dir(),
            "/usr/local/bin".into(),
            "/usr/bin".into(),
            "/bin".into(),
        ])
        .unwrap()
    }

    /// A Codex home logged in as the user's own account, with the user's settings.
    fn user_codex_home(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let auth = common::auth_json("acct-user", "me@example.com", common::now_secs() + 3600);
        std::fs::write(dir.join("auth.json"), auth.to_string()).unwrap();
        std::fs::write(dir.join("config.toml"), USER_CONFIG).unwrap();
    }

    fn cao(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cao();
        cmd.env("PATH", self.path())
            .env("CODEX_HOME", self.codex_home())
            .current_dir(self.work())
            .timeout(TIMEOUT);
        cmd
    }

    /// `program` (the real codex or the shim) with the user's environment.
    fn codex_cmd(&self, program: &Path, codex_home: &Path) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(program);
        cmd.env("HOME", self.home())
            .env("CODEX_HOME", codex_home)
            .env("PATH", self.path())
            .env("NO_COLOR", "1")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .current_dir(self.work())
            .timeout(TIMEOUT);
        cmd
    }

    fn exec(&self, extra: &[&str], prompt: &str) -> Output {
        self.codex_cmd(&self.codex, &self.codex_home())
            .args(extra)
            .args(["exec", "--skip-git-repo-check", prompt])
            .output()
            .unwrap()
    }

    /// `account:status` of every model call upstream saw.
    fn model_calls(&self) -> Vec<String> {
        self.mock().model_calls()
    }

    /// Codex's non-model calls arrived in its normal ChatGPT path style (`/backend-api/...`,
    /// which the real backend serves), never as `/api/codex/...` (what Codex falls back to when
    /// `chatgpt_base_url` lacks `/backend-api`).
    fn assert_chatgpt_path_style(&self) {
        let paths: Vec<String> = self
            .mock()
            .requests()
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert!(
            paths.iter().all(|p| !p.contains("/api/codex/")),
            "CodexApi-style paths reached upstream: {paths:?}"
        );
        assert!(
            paths.iter().any(|p| p.starts_with("/backend-api/")),
            "no ChatGPT backend call went through the gateway: {paths:?}"
        );
    }

    /// Upstream only ever saw the accounts cao holds, with matching bearer and header; the one
    /// exception is Codex's workspace check (`accounts/check`), which asks about the client's own
    /// login and so goes upstream as the client, bearer and header both its own.
    fn assert_no_leak(&self) {
        for r in self.mock().requests() {
            if let (Some(b), Some(h)) = (&r.bearer_account, &r.header_account) {
                assert_eq!(b, h, "mismatched bearer/account header: {r:?}");
            }
            if cao::policy::route::is_client_identity_call(&r.method, &r.path) {
                continue;
            }
            assert_ne!(
                r.account(),
                Some("acct-user"),
                "client's own account leaked: {r:?}"
            );
        }
    }
}

impl Drop for E2e {
    fn drop(&mut self) {
        if let Some(g) = self.gateway.take() {
            let _ = self.rt.block_on(g.shutdown());
        }
        if let Some(m) = self.mock.take() {
            self.rt.block_on(m.shutdown());
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `session id: ...` line `codex exec` prints.
fn session_id(out: &Output) -> String {
    let all = text(out);
    all.lines()
        .find_map(|l| l.trim().strip_prefix("session id: "))
        .unwrap_or_else(|| panic!("no session id in\n{all}"))
        .to_string()
}

fn assert_served_by_account_two(e: &E2e, out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Hello from acct-2."),
        "{}",
        text(out)
    );
    let calls = e.model_calls();
    assert!(calls.iter().any(|c| c == "acct-1:429"), "{calls:?}");
    assert_eq!(
        calls.last().map(String::as_str),
        Some("acct-2:200"),
        "{calls:?}"
    );
    e.assert_no_leak();
    e.assert_chatgpt_path_style();
}

#[test]
fn enable_routes_the_real_codex_and_disable_restores_the_file() {
    let Some(mut e) = E2e::start() else { return };
    let url = e.start_gateway();
    e.cao()
        .args(["gateway", "enable", "--base-url", &url])
        .assert()
        .success();

    let out = e.exec(&[], "say hello");
    assert_served_by_account_two(&e, &out);
    // Codex stayed on the built-in provider (so its sessions stay visible to `codex resume`).
    assert!(text(&out).contains("provider: openai"), "{}", text(&out));

    e.cao().args(["gateway", "disable"]).assert().success();
    assert_eq!(
        std::fs::read_to_string(e.codex_home().join("config.toml")).unwrap(),
        USER_CONFIG
    );
    assert!(!e.home().join(".local/bin/codex").exists());
}

#[test]
fn sessions_from_before_enable_stay_visible_to_resume() {
    let Some(mut e) = E2e::start() else { return };
    let url = e.start_gateway();
    // A session recorded the ordinary way (built-in provider), straight at the mock as
    // account acct-user, before cao routes anything.
    let direct = e.mock().base_url();
    let before = e.exec(
        &[
            "-c",
            &format!("openai_base_url=\"{direct}\""),
            "-c",
            &format!("chatgpt_base_url=\"{direct}\""),
        ],
        "first",
    );
    assert_eq!(before.status.code(), Some(0), "{}", text(&before));
    let first = session_id(&before);

    // A custom provider (what codex-facts.md first suggested) does NOT see it: this is why
    // `enable` keeps the built-in provider.
    let custom = e
        .codex_cmd(&e.codex, &e.codex_home())
        .args([
            "-c",
            "model_provider=\"cao\"",
            "-c",
            &format!("model_providers.cao={{name=\"cao\",base_url=\"{url}\",wire_api=\"responses\",requires_openai_auth=true}}"),
            "-c",
            &format!("chatgpt_base_url=\"{url}\""),
            "exec",
            "--skip-git-repo-check",
            "resume",
            "--last",
            "hidden?",
        ])
        .output()
        .unwrap();
    assert_ne!(session_id(&custom), first, "{}", text(&custom));

    e.cao()
        .args(["gateway", "enable", "--base-url", &url])
        .assert()
        .success();
    let resumed = e
        .codex_cmd(&e.codex, &e.codex_home())
        .args(["exec", "--skip-git-repo-check", "resume", "--last", "again"])
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert_eq!(session_id(&resumed), first, "{}", text(&resumed));
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains("Hello from acct-2."),
        "{}",
        text(&resumed)
    );
}

#[test]
fn the_shim_routes_codex_whatever_its_codex_home() {
    let Some(mut e) = E2e::start() else { return };
    let url = e.start_gateway();
    e.cao()
        .args(["gateway", "enable", "--base-url", &url])
        .assert()
        .success();
    let shim = e.home().join(".local/bin/codex");
    assert!(shim.exists());
    // Another Codex home whose config.toml routes nothing: only the shim's overrides route it.
    let other = e.env.dir.path().join("other-codex-home");
    e.user_codex_home(&other);
    let out = e
        .codex_cmd(Path::new("codex"), &other)
        .args(["exec", "--skip-git-repo-check", "via the shim"])
        .output()
        .unwrap();
    assert_served_by_account_two(&e, &out);
}

#[test]
fn run_gateway_uses_a_running_gateway() {
    let Some(mut e) = E2e::start() else { return };
    let url = e.start_gateway();
    let out = e
        .cao()
        .args(["run", "--gateway", "--gateway-url", &url, "--codex"])
        .arg(&e.codex)
        .args(["--", "exec", "--skip-git-repo-check", "hello"])
        .output()
        .unwrap();
    assert_served_by_account_two(&e, &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("using your gateway at {url}")),
        "{stderr}"
    );
    assert!(stderr.contains("CLI fallback is off"), "{stderr}");
    // For this run only: the user's config.toml is untouched.
    assert_eq!(
        std::fs::read_to_string(e.codex_home().join("config.toml")).unwrap(),
        USER_CONFIG
    );
}

#[test]
fn run_gateway_starts_its_own_gateway_when_none_answers() {
    let Some(e) = E2e::start() else { return };
    // The saved gateway settings point at the mock.
    let saved = serde_json::json!({
        "baseUrl": e.mock().base_url(),
        "tokenUrl": e.mock().token_url(),
        "port": 4319,
    });
    std::fs::write(e.env.data_dir().join("gateway.json"), saved.to_string()).unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = e
        .cao()
        .args(["run", "--gateway", "--gateway-url"])
        .arg(format!("http://127.0.0.1:{closed}"))
        .arg("--codex")
        .arg(&e.codex)
        .args(["--", "exec", "--skip-git-repo-check", "hello"])
        .output()
        .unwrap();
    assert_served_by_account_two(&e, &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("started one for this run at https://127.0.0.1:"),
        "{stderr}"
    );
    // The embedded gateway logged to a file, not over Codex's output, and persisted the
    // cooldown it learned for account 1 when it stopped.
    let log = std::fs::read_to_string(e.env.data_dir().join("run-gateway.log")).unwrap();
    assert!(log.contains("/responses"), "{log}");
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(e.env.data_dir().join("account_status.json")).unwrap(),
    )
    .unwrap();
    let until = status["statuses"]["one"]["cooldownUntilMs"].as_i64();
    assert!(
        until.is_some_and(|u| u > common::now_secs() * 1000),
        "{status}"
    );
}
