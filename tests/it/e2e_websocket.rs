//! The real Codex CLI 0.171 over Responses-over-WebSocket: straight to the mock, and through the
//! gateway routed like `cao gateway enable`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use crate::common;

use cao::mock::{MockUpstream, Scenario};
use common::TestEnv;
use common::codex::Codex;

#[tokio::test(flavor = "multi_thread")]
async fn explore_codex_straight_to_the_mock() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    let env = TestEnv::new();
    let mode = std::env::var("WSX").unwrap_or_default();
    let mut f = cao::mock::AccountFaults::default();
    match mode.as_str() {
        "forget" => f.ws.forget_responses = true,
        "age" => f.ws.connection_limit_after = Some(1),
        "close" => f.ws.close_on_turns = vec![1],
        "spent" => {
            f.quota = Some(cao::mock::QuotaFault {
                resets_in_seconds: Some(600),
                ..Default::default()
            })
        }
        "overload" => f.ws.overloaded_turns = vec![1],
        "midclose" => {
            f.ws.close_mid_turns = vec![1];
            f.ws.close_after_events = 3;
        }
        _ => {}
    }
    let sc = Scenario::default().with_account("client-own-account", f);
    let m = MockUpstream::spawn("127.0.0.1", 0, sc).await.unwrap();
    let codex = Codex::new(&env, bin, &m.token_url());
    let routed = [
        format!("openai_base_url={}", m.base_url()),
        format!("chatgpt_base_url={}/backend-api", m.base_url()),
    ];
    let out = codex
        .run(&routed, &["exec", "--skip-git-repo-check", "hello"])
        .await;
    eprintln!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for r in m.requests() {
        eprintln!("REQ {} {} {}", r.method, r.path, r.status);
    }
    for f in m.ws_frames() {
        eprintln!("FRAME {f:?}");
    }
}
