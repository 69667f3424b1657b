//! The real Codex CLI through the real gateway against the mock upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, MockUpstream, Scenario};
use common::codex::{Codex, assert_answered};
use common::gateway::GatewayProc;
use common::{TestEnv, now_secs};

#[tokio::test(flavor = "multi_thread")]
async fn real_codex_runs_two_turns_on_account_2_while_account_1_is_spent() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    env.add_logged_in("a2", "acc-2", now_secs() + 3600);
    let spent = Scenario::default().with_account("acc-1", AccountFaults::spent(3600));
    let m = MockUpstream::spawn("127.0.0.1", 0, spent).await.unwrap();
    let (base, token) = (m.base_url(), m.token_url());
    let g = GatewayProc::start(&env, &["--base-url", &base, "--token-url", &token]);
    let codex = Codex::new(&env, bin, &token);
    // The custom provider of codex-facts.md.
    let url = &g.url;
    let routed = [
        "model_provider=cao".to_string(),
        format!(
            "model_providers.cao={{name=\"cao\",base_url=\"{url}\",wire_api=\"responses\",requires_openai_auth=true}}"
        ),
        format!("chatgpt_base_url={url}"),
    ];

    let first = codex
        .run(&routed, &["exec", "--skip-git-repo-check", "say hello"])
        .await;
    assert_answered(&first, "Mock reply from acc-2.", &g);
    let resume = [
        "exec",
        "--skip-git-repo-check",
        "resume",
        "--last",
        "and again",
    ];
    let second = codex.run(&routed, &resume).await;
    assert_answered(&second, "Mock reply from acc-2.", &g);
    // With `chatgpt_base_url` lacking `/backend-api`, Codex also calls `/api/codex/...`,
    // `/ps/...` and `/codex/analytics-events/...`, which exist under no upstream base URL: the
    // perimeter answers them 404 itself. It never refuses this Codex for anything else (Host,
    // Origin, content type): those would break the model calls.
    for r in g.refusals() {
        assert!(r.contains("kind=\"not_forwarded\""), "{r}");
        assert!(!r.contains("path=/responses"), "{r}");
    }

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
        // Codex's workspace check asks about the client's own login: it goes up as the client
        // (bearer and header agreeing, checked above); nothing else does.
        if cao::policy::route::is_client_identity_call(&r.method, &r.path) {
            continue;
        }
        assert_ne!(
            r.account(),
            Some("client-own-account"),
            "the client's own account leaked: {r:?}"
        );
    }
    assert!(g.stop().success());
}

/// The built-in provider routed with `openai_base_url` + `chatgpt_base_url=<gw>/backend-api`
/// and `--no-websocket`: Codex tries WebSocket first (426 from the gateway sends it to HTTP at
/// once) and uses its own ChatGPT paths under `/backend-api/`, which all get the chosen
/// account's credentials. (Without `--no-websocket` it stays on WebSocket: e2e_websocket.rs.)
#[tokio::test(flavor = "multi_thread")]
async fn real_codex_with_no_websocket_falls_back_to_http_at_once() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    let m = MockUpstream::spawn("127.0.0.1", 0, Scenario::default())
        .await
        .unwrap();
    let (base, token) = (m.base_url(), m.token_url());
    let g = GatewayProc::start(
        &env,
        &["--base-url", &base, "--token-url", &token, "--no-websocket"],
    );
    let codex = Codex::new(&env, bin, &token);
    let routed = [
        format!("openai_base_url={}", g.url),
        format!("chatgpt_base_url={}/backend-api", g.url),
    ];
    let out = codex
        .run(&routed, &["exec", "--skip-git-repo-check", "hello"])
        .await;
    assert_answered(&out, "Mock reply from acc-1.", &g);
    // Every call this Codex makes is one the perimeter lets through (paths, no Origin, JSON).
    assert_eq!(g.refusals(), Vec::<String>::new(), "{}", g.log());
    let log = g.log_when(|log| log.contains("path=/responses account=- status=426"));
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
        // The workspace check goes up as the client itself; everything else as account 1.
        let expected = if cao::policy::route::is_client_identity_call(&r.method, &r.path) {
            "client-own-account"
        } else {
            "acc-1"
        };
        assert_eq!(r.bearer_account.as_deref(), Some(expected), "{r:?}");
        assert_eq!(r.header_account.as_deref(), Some(expected), "{r:?}");
    }
}
