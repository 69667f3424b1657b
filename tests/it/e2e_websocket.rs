//! The real `codex exec` (0.171) over Responses-over-WebSocket through the real gateway, routed
//! like `cao gateway enable` (`openai_base_url` + `chatgpt_base_url=<gw>/backend-api`). The TUI's
//! multi-turn case is in e2e_tui.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use crate::common;

use cao::mock::{AccountFaults, MockUpstream, Scenario, WsFaults};
use common::codex::{Codex, assert_answered};
use common::gateway::{GatewayProc, assert_no_mismatch};
use common::{TestEnv, now_secs};

struct Run {
    env: TestEnv,
    m: MockUpstream,
    g: GatewayProc,
    codex: Codex,
}

async fn setup(scenario: Scenario) -> Option<Run> {
    let bin = common::real_codex()?;
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    env.add_logged_in("a2", "acc-2", now_secs() + 3600);
    let m = MockUpstream::spawn("127.0.0.1", 0, scenario).await.unwrap();
    let (base, token) = (m.base_url(), m.token_url());
    let g = GatewayProc::start(&env, &["--base-url", &base, "--token-url", &token]);
    let codex = Codex::new(&env, bin, &token);
    Some(Run { env, m, g, codex })
}

impl Run {
    async fn exec(&self, prompt: &str) -> std::process::Output {
        // The shim's `-c` overrides (what `gateway enable` writes to config.toml).
        let routed: Vec<String> = cao::codex::config_edit::cli_overrides(&self.g.url)
            .into_iter()
            .filter(|a| a != "-c")
            .collect();
        self.codex
            .run(&routed, &["exec", "--skip-git-repo-check", prompt])
            .await
    }

    /// `account:prewarm|delta|full:answer` per frame.
    fn frames(&self) -> Vec<String> {
        self.m
            .ws_frames()
            .iter()
            .map(cao::mock::RecordedFrame::summary)
            .collect()
    }

    /// No HTTP fallback, no 426, and credentials always one account's, never the client's.
    fn assert_websocket_only(&self) {
        let reqs = self.m.requests();
        assert!(
            !reqs.iter().any(|r| r.is_model_call()),
            "HTTP model call: {reqs:?}"
        );
        assert!(!self.g.log().contains("status=426"), "{}", self.g.log());
        assert_no_mismatch_except_client_check(&self.m);
        for f in self.m.ws_frames() {
            assert_eq!(f.bearer_account, f.header_account, "{f:?}");
            assert_ne!(f.account.as_deref(), Some("client-own-account"), "{f:?}");
        }
    }
}

/// Like [`assert_no_mismatch`], but Codex's workspace check goes up as the client, on purpose.
fn assert_no_mismatch_except_client_check(m: &MockUpstream) {
    for r in m.requests().iter().filter(|r| r.path != "/oauth/token") {
        assert_eq!(r.bearer_account, r.header_account, "{r:?}");
        if !cao::policy::route::is_client_identity_call(&r.method, &r.path) {
            assert_ne!(r.account(), Some("client-own-account"), "{r:?}");
        }
    }
    let _ = assert_no_mismatch;
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_exec_stays_on_websocket_through_the_gateway_with_its_prewarm_and_delta() {
    let Some(r) = setup(Scenario::default()).await else {
        return;
    };
    let out = r.exec("hello").await;
    assert_answered(&out, "Mock reply from acc-1.", &r.g);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("failed to connect to Responses WebSocket"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        r.frames(),
        ["acc-1:prewarm:completed", "acc-1:delta:completed"]
    );
    let frames = r.m.ws_frames();
    assert_eq!(frames[0].socket, frames[1].socket, "one upstream socket");
    r.assert_websocket_only();
    let _ = &r.env;
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_exec_on_a_spent_account_is_answered_by_the_next_without_an_error() {
    let spent = Scenario::default().with_account("acc-1", AccountFaults::spent(3600));
    let Some(r) = setup(spent).await else {
        return;
    };
    let out = r.exec("hello").await;
    assert_answered(&out, "Mock reply from acc-2.", &r.g);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("usage limit"), "{stderr}");
    // The prewarm meets the limit and moves; the turn continues it natively on account 2.
    assert_eq!(
        r.frames(),
        [
            "acc-1:prewarm:error:usage_limit_reached",
            "acc-2:prewarm:completed",
            "acc-2:delta:completed"
        ]
    );
    r.assert_websocket_only();
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_exec_survives_upstream_closes_and_the_socket_age_limit() {
    let faults = AccountFaults {
        ws: WsFaults {
            close_on_turns: vec![1],
            connection_limit_after: Some(3),
            ..Default::default()
        },
        ..Default::default()
    };
    let Some(r) = setup(Scenario::default().with_account("acc-1", faults)).await else {
        return;
    };
    let out = r.exec("hello").await;
    assert_answered(&out, "Mock reply from acc-1.", &r.g);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("ERROR:"), "{stderr}");
    // Closed before answering: the gateway reconnects and sends the turn in full.
    assert_eq!(
        r.frames(),
        [
            "acc-1:prewarm:completed",
            "acc-1:delta:closed",
            "acc-1:full:completed"
        ]
    );
    r.assert_websocket_only();
}

/// Codex on a provider of its own whose stream idle timeout is 1.5 s (the built-in provider's
/// is 300 s and cannot be changed: `model_providers.openai` is reserved), talking WebSocket to
/// the gateway like the built-in one does (`supports_websockets`, ChatGPT login).
fn short_idle_provider(gw: &str) -> Vec<String> {
    let p = "model_providers.cao_idle_test";
    vec![
        "model_provider=\"cao_idle_test\"".to_string(),
        format!("{p}.name=\"cao idle test\""),
        format!("{p}.base_url=\"{gw}\""),
        format!("{p}.requires_openai_auth=true"),
        format!("{p}.supports_websockets=true"),
        format!("{p}.stream_idle_timeout_ms=1500"),
        format!("{p}.stream_max_retries=0"),
        format!("chatgpt_base_url=\"{gw}/backend-api\""),
    ]
}

/// acc-1 serves the prewarm, then fails the turn before any output (overloaded); acc-2's
/// handshake takes 4 s: the switch outlasts Codex's 1.5 s idle timer several times over.
fn slow_switch() -> Scenario {
    let overloaded = AccountFaults {
        ws: WsFaults {
            overloaded_turns: vec![1],
            ..Default::default()
        },
        ..Default::default()
    };
    let slow = AccountFaults {
        ws: WsFaults {
            handshake_delay_ms: 4_000,
            ..Default::default()
        },
        ..Default::default()
    };
    Scenario::default()
        .with_account("acc-1", overloaded)
        .with_account("acc-2", slow)
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_exec_waits_through_a_slow_switch_on_keepalive_frames() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    for (keepalive_ms, kept) in [("300", true), ("60000", false)] {
        let env = common::gateway::two_accounts();
        let m = common::gateway::mock(slow_switch()).await;
        let g = common::gateway::gw(
            &env,
            &m,
            &["--upstream-retries", "0", "--ws-keepalive-ms", keepalive_ms],
        );
        let token = m.token_url();
        let codex = Codex::new(&env, bin.clone(), &token);
        let out = codex
            .run(
                &short_idle_provider(&g.url),
                &["exec", "--skip-git-repo-check", "hello"],
            )
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let frames: Vec<String> = m
            .ws_frames()
            .iter()
            .map(cao::mock::RecordedFrame::summary)
            .collect();
        eprintln!("keepalive {keepalive_ms} ms: {frames:?}\n{stderr}");
        if kept {
            assert_answered(&out, "Mock reply from acc-2.", &g);
            assert!(!stderr.contains("idle timeout"), "{stderr}");
            assert!(!stderr.contains("Falling back"), "{stderr}");
            assert!(
                !m.requests().iter().any(|r| r.is_model_call()),
                "no HTTP fallback: {:?}",
                m.requests()
            );
            assert_eq!(
                frames,
                [
                    "acc-1:prewarm:completed",
                    "acc-1:delta:failed",
                    // The same turn, expanded for the new account, after its slow handshake.
                    "acc-2:full:completed"
                ]
            );
        } else {
            // The control: without keepalives Codex gives up on the socket while the gateway
            // is still switching, and falls back to HTTP for the rest of the session.
            assert!(
                stderr.contains("idle timeout waiting for websocket"),
                "{stderr}"
            );
            assert!(
                stderr.contains("Falling back from WebSockets to HTTPS transport"),
                "{stderr}"
            );
        }
    }
}
