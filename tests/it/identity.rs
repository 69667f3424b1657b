//! cao's own calls to the backend (usage polling, `status --refresh`, token refreshes) carry the
//! `originator` and `user-agent` the real Codex 0.171 sends from this machine: captured here by
//! running the real binary against the mock, then compared with what cao sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cao::codex::identity;
use cao::mock::{MockUpstream, Scenario};
use common::{TestEnv, now_secs};

use crate::common;

/// The terminal both Codex and cao are told they run on.
const TERM: &str = "xterm-256color";

/// Environment variables Codex reads to name the terminal (beyond TERM).
const TERMINAL_VARS: [&str; 8] = [
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "WT_SESSION",
    "KITTY_WINDOW_ID",
    "ALACRITTY_SOCKET",
    "KONSOLE_VERSION",
    "VTE_VERSION",
    "TMUX",
];

#[tokio::test(flavor = "multi_thread")]
async fn cao_s_backend_calls_introduce_themselves_as_the_real_codex_does() {
    let Some(codex) = common::real_codex() else {
        return;
    };
    let env = TestEnv::new();
    // Expired: `status --refresh` refreshes it (through cao's custody) before asking.
    env.add_logged_in("a1", "acc-1", now_secs() - 60);
    let m = MockUpstream::spawn("127.0.0.1", 0, Scenario::default())
        .await
        .unwrap();
    // 1. What the real Codex sends (its own login, expired, straight at the mock).
    let codex_home = env.dir.path().join("home/.codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::write(
        codex_home.join("auth.json"),
        common::auth_json("acc-me", "me@example.com", now_secs() - 60).to_string(),
    )
    .unwrap();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut c = assert_cmd::Command::new(&codex);
    c.env("HOME", env.dir.path().join("home"))
        .env("CODEX_HOME", &codex_home)
        .env("TERM", TERM)
        .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", m.token_url())
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .current_dir(&work)
        .args(cao::codex::config_edit::cli_overrides(&m.base_url()))
        .args(["exec", "--skip-git-repo-check", "say hi"])
        .timeout(Duration::from_secs(120));
    for v in TERMINAL_VARS {
        c.env_remove(v);
    }
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its token refresh (its access token expired; the override points at the mock).
    let presented = m.presented_tokens();
    let codex_refresh = presented
        .iter()
        .find(|p| p.token == "rt-acc-me-0")
        .unwrap_or_else(|| panic!("Codex refreshed: {presented:?}"));
    let refresh_ua = codex_refresh.user_agent.clone().unwrap_or_default();
    assert_eq!(
        codex_refresh.originator.as_deref(),
        Some(identity::ORIGINATOR)
    );
    assert_eq!(refresh_ua, identity::user_agent_on(Some(TERM)));
    // Its calls to the `wham` family of the ChatGPT backend, which the usage endpoint belongs
    // to (accounts/check, settings/user): no originator, and once the session runs the user
    // agent with ` (codex_exec; 0.171.0)` after it.
    let seen = m.identities();
    let wham: Vec<_> = seen
        .iter()
        .filter(|i| i.path.starts_with("/backend-api/wham/"))
        .collect();
    assert!(wham.len() >= 2, "{seen:?}");
    assert!(wham.iter().all(|i| i.originator.is_none()), "{wham:?}");
    let wham_ua = wham.last().unwrap().user_agent.clone().unwrap_or_default();
    assert_eq!(
        wham_ua,
        format!(
            "{} ({}; {})",
            identity::user_agent_on(Some(TERM)),
            identity::ORIGINATOR,
            identity::CODEX_VERSION
        ),
        "{wham:?}"
    );

    // 2. What cao sends: the token refresh and the usage call of `status --refresh`.
    m.clear_requests();
    std::fs::write(
        env.data_dir().join("gateway.json"),
        serde_json::json!({"tokenUrl": m.token_url()}).to_string(),
    )
    .unwrap();
    let mut c = env.cao();
    c.env("TERM", TERM)
        .args(["status", "--refresh", "--base-url", &m.base_url(), "--json"])
        .timeout(Duration::from_secs(60));
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let usage: Vec<_> = m
        .identities()
        .into_iter()
        .filter(|i| i.path.ends_with("/wham/usage"))
        .collect();
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0].originator, None);
    assert_eq!(usage[0].user_agent.as_deref(), Some(wham_ua.as_str()));
    let refresh = m
        .presented_tokens()
        .into_iter()
        .find(|p| p.token == "rt-acc-1-0")
        .expect("the expired token was refreshed");
    assert_eq!(refresh.originator.as_deref(), Some(identity::ORIGINATOR));
    assert_eq!(refresh.user_agent.as_deref(), Some(refresh_ua.as_str()));
    m.shutdown().await;
}
