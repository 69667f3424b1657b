//! The real Codex CLI (`codex exec`) in a Codex home of its own, for the end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use super::gateway::GatewayProc;
use super::{TestEnv, auth_json, now_secs};

/// The `-c` overrides that route the real Codex at `base` while keeping ChatGPT auth.
pub fn route_args(base: &str) -> Vec<String> {
    vec![
        "-c".into(),
        "model_provider=cao".into(),
        "-c".into(),
        format!(
            "model_providers.cao={{name=\"cao\",base_url=\"{base}\",wire_api=\"responses\",requires_openai_auth=true}}"
        ),
        "-c".into(),
        format!("chatgpt_base_url=\"{base}\""),
    ]
}

/// A Codex home logged in as an account of its own (which the gateway must replace on every
/// request), and a way to run the real codex in it.
pub struct Codex {
    pub bin: PathBuf,
    pub home: PathBuf,
    pub work: PathBuf,
    pub token_url: String,
}

impl Codex {
    pub fn new(env: &TestEnv, bin: PathBuf, token_url: &str) -> Self {
        let home = env.dir.path().join("codex-home");
        std::fs::create_dir_all(&home).unwrap();
        let auth = auth_json("client-own-account", "me@example.com", now_secs() + 3600);
        std::fs::write(home.join("auth.json"), auth.to_string()).unwrap();
        std::fs::write(
            home.join("config.toml"),
            "cli_auth_credentials_store = \"file\"\nforced_login_method = \"chatgpt\"\n",
        )
        .unwrap();
        let work = env.dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        Self {
            bin,
            home,
            work,
            token_url: token_url.to_string(),
        }
    }

    /// `codex -c <override>... <args>`; the token endpoints point at the mock, never the internet.
    pub async fn run(&self, overrides: &[String], args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        for o in overrides {
            cmd.args(["-c", o]);
        }
        cmd.args(args)
            .current_dir(&self.work)
            .env("CODEX_HOME", &self.home)
            .env("HOME", &self.home)
            .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", &self.token_url)
            .env("CODEX_REVOKE_TOKEN_URL_OVERRIDE", &self.token_url)
            .env_remove("OPENAI_API_KEY")
            .env_remove("CODEX_API_KEY")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// `codex exec <prompt>` routed to `url` as `cao gateway enable` routes it (the shim's
    /// `-c` overrides).
    pub async fn exec_routed(&self, url: &str, prompt: &str) -> Output {
        let routed: Vec<String> = cao::codex::config_edit::cli_overrides(url)
            .into_iter()
            .filter(|a| a != "-c")
            .collect();
        self.run(&routed, &["exec", "--skip-git-repo-check", prompt])
            .await
    }
}

/// Succeeded and printed `expected`, else fail with everything needed to see why.
pub fn assert_answered(out: &Output, expected: &str, g: &GatewayProc) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(expected),
        "expected {expected:?}\nstdout: {stdout}\nstderr: {}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        g.log()
    );
}
