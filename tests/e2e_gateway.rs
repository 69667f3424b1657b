//! The real Codex CLI through the real gateway against the mock upstream: two turns while
//! account 1 is spent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use cao::mock::{AccountFaults, MockUpstream, Scenario};
use common::gateway::GatewayProc;
use common::{TestEnv, auth_json, now_secs};

/// `codex -c ... <args>` routed to `gw_url` with the custom provider of codex-facts.md.
fn codex(
    bin: &Path,
    home: &Path,
    cwd: &Path,
    gw_url: &str,
    token_url: &str,
    args: &[&str],
) -> std::process::Output {
    let provider = format!(
        "model_providers.cao={{name=\"cao\",base_url=\"{gw_url}\",wire_api=\"responses\",requires_openai_auth=true}}"
    );
    Command::new(bin)
        .args([
            "-c",
            "model_provider=cao",
            "-c",
            &provider,
            "-c",
            &format!("chatgpt_base_url={gw_url}"),
        ])
        .args(args)
        .current_dir(cwd)
        .env("CODEX_HOME", home)
        .env("HOME", home)
        .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", token_url)
        .env("CODEX_REVOKE_TOKEN_URL_OVERRIDE", token_url)
        .env_remove("OPENAI_API_KEY")
        .env_remove("CODEX_API_KEY")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_codex_runs_two_turns_on_account_2_while_account_1_is_spent() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    env.add_logged_in("a2", "acc-2", now_secs() + 3600);
    let m = MockUpstream::spawn(
        "127.0.0.1",
        0,
        Scenario::default().with_account("acc-1", AccountFaults::spent(3600)),
    )
    .await
    .unwrap();
    let base = m.base_url();
    let token = m.token_url();
    let g = GatewayProc::start(&env, &["--base-url", &base, "--token-url", &token]);

    // Codex's own login (a different account): the gateway must replace it on every request.
    let home = env.dir.path().join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let auth = auth_json("client-own-account", "me@example.com", now_secs() + 3600);
    std::fs::write(
        home.join("auth.json"),
        serde_json::to_string_pretty(&auth).unwrap(),
    )
    .unwrap();
    std::fs::write(
        home.join("config.toml"),
        "cli_auth_credentials_store = \"file\"\nforced_login_method = \"chatgpt\"\n",
    )
    .unwrap();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let (bin2, home2, work2, url2, token2) = (
        bin.clone(),
        home.clone(),
        work.clone(),
        g.url.clone(),
        token.clone(),
    );
    let first = tokio::task::spawn_blocking(move || {
        codex(
            &bin2,
            &home2,
            &work2,
            &url2,
            &token2,
            &["exec", "--skip-git-repo-check", "say hello"],
        )
    })
    .await
    .unwrap();
    let out1 = String::from_utf8_lossy(&first.stdout).to_string();
    let err1 = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(
        first.status.success(),
        "turn 1 failed: {out1}\n{err1}\ngateway log:\n{}",
        g.log()
    );
    assert!(
        out1.contains("Mock reply from acc-2."),
        "turn 1 answered by account 2: {out1}\n{err1}"
    );

    let (bin2, home2, work2, url2, token2) = (
        bin.clone(),
        home.clone(),
        work.clone(),
        g.url.clone(),
        token.clone(),
    );
    let second = tokio::task::spawn_blocking(move || {
        codex(
            &bin2,
            &home2,
            &work2,
            &url2,
            &token2,
            &[
                "exec",
                "--skip-git-repo-check",
                "resume",
                "--last",
                "and again",
            ],
        )
    })
    .await
    .unwrap();
    let out2 = String::from_utf8_lossy(&second.stdout).to_string();
    let err2 = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(
        second.status.success(),
        "turn 2 failed: {out2}\n{err2}\ngateway log:\n{}",
        g.log()
    );
    assert!(
        out2.contains("Mock reply from acc-2."),
        "turn 2 answered by account 2: {out2}\n{err2}"
    );

    let reqs = m.requests();
    let model: Vec<_> = reqs.iter().filter(|r| r.is_model_call()).collect();
    let on_1: Vec<_> = model
        .iter()
        .filter(|r| r.account() == Some("acc-1"))
        .collect();
    assert_eq!(
        on_1.len(),
        1,
        "account 1 is asked once, then its cooldown is remembered: {model:?}"
    );
    assert_eq!(on_1[0].status, 429);
    assert!(
        model
            .iter()
            .filter(|r| r.account() == Some("acc-2"))
            .count()
            >= 2
    );
    for r in reqs.iter().filter(|r| r.path != "/oauth/token") {
        assert_eq!(
            r.bearer_account, r.header_account,
            "mismatched credentials upstream: {r:?}"
        );
        assert_ne!(
            r.account(),
            Some("client-own-account"),
            "the client's own account leaked: {r:?}"
        );
    }
    assert!(g.stop().success());
}

/// The built-in provider routed with `openai_base_url` + `chatgpt_base_url=<gw>/backend-api`:
/// Codex tries WebSocket first (426 from the gateway sends it to HTTP at once) and uses its own
/// ChatGPT paths under `/backend-api/`, which all get the chosen account's credentials.
#[tokio::test(flavor = "multi_thread")]
async fn real_codex_with_the_builtin_provider_falls_back_from_websocket_at_once() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    let m = MockUpstream::spawn("127.0.0.1", 0, Scenario::default())
        .await
        .unwrap();
    let (base, token) = (m.base_url(), m.token_url());
    let g = GatewayProc::start(&env, &["--base-url", &base, "--token-url", &token]);
    let home = env.dir.path().join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let auth = auth_json("client-own-account", "me@example.com", now_secs() + 3600);
    std::fs::write(home.join("auth.json"), auth.to_string()).unwrap();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let url = g.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&bin)
            .args(["-c", &format!("openai_base_url={url}")])
            .args(["-c", &format!("chatgpt_base_url={url}/backend-api")])
            .args(["exec", "--skip-git-repo-check", "hello"])
            .current_dir(&work)
            .env("CODEX_HOME", &home)
            .env("HOME", &home)
            .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", &token)
            .env("CODEX_REVOKE_TOKEN_URL_OVERRIDE", &token)
            .env_remove("OPENAI_API_KEY")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Mock reply from acc-1."),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        g.log()
    );
    let log = g.log();
    assert_eq!(
        log.matches("path=/responses account=- status=426").count(),
        1,
        "one websocket attempt, then HTTP: {log}"
    );
    let reqs = m.requests();
    assert!(
        reqs.iter().any(|r| r.path.starts_with("/backend-api/")),
        "{reqs:?}"
    );
    for r in &reqs {
        assert_eq!(r.bearer_account.as_deref(), Some("acc-1"), "{r:?}");
        assert_eq!(r.header_account.as_deref(), Some("acc-1"), "{r:?}");
    }
}
