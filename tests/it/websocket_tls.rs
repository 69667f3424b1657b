//! A `wss://` / `https://` upstream end to end: the mock upstream serves TLS with a private CA
//! of its own, and the gateway trusts it only through `--upstream-ca-file`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common;

use cao::mock::{AccountFaults, MockUpstream, Scenario};
use common::gateway::{GatewayProc, gw_at, model_call, spent_after, two_accounts};
use common::ws::WsClient;

/// A mock upstream on HTTPS/WSS whose certificate (for 127.0.0.1) is signed by a CA made for
/// it alone, and that CA's PEM file.
struct TlsUpstream {
    m: MockUpstream,
    ca_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn tls_upstream(scenario: Scenario) -> TlsUpstream {
    let dir = tempfile::tempdir().unwrap();
    let (material, _) = cao::gateway::tls::certs::ensure(dir.path(), common::now_ms()).unwrap();
    let cert = Arc::new(cao::gateway::tls::serving::LiveCert::new(&material).unwrap());
    let server: Arc<rustls::ServerConfig> = cert.server_config().unwrap();
    let m = MockUpstream::spawn_tls("127.0.0.1", 0, scenario, server)
        .await
        .unwrap();
    TlsUpstream {
        m,
        ca_file: material.info.ca_path.clone(),
        _dir: dir,
    }
}

impl TlsUpstream {
    fn gateway(&self, env: &common::TestEnv, extra: &[&str]) -> GatewayProc {
        let base = self.m.https_base_url();
        let token = format!("{base}/oauth/token");
        gw_at(env, &base, &token, extra, &[])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_and_websocket_turns_reach_a_wss_upstream_trusted_by_upstream_ca_file() {
    let env = two_accounts();
    let up = tls_upstream(Scenario::default().with_account("acc-1", spent_after(2))).await;
    let ca = up.ca_file.display().to_string();
    let g = up.gateway(&env, &["--upstream-ca-file", &ca]);

    // HTTP over https://
    let a = model_call(&g.url, Some("s-http")).await;
    assert_eq!(a.status, 200, "{}\n{}", a.body, g.log());
    assert!(a.body.contains("Mock reply from acc-1."), "{}", a.body);

    // WebSocket over wss://, with a usage-limit switch on the way.
    let mut c = WsClient::connect(&g.url, "s-wss").await.unwrap();
    assert!(c.prewarm().await.error.is_none());
    let mut texts = Vec::new();
    for n in 0..3 {
        let t = c.turn(&format!("turn {n}")).await;
        assert_eq!(t.error, None, "turn {n}: {t:?}\n{}", g.log());
        texts.push(t.text);
    }
    assert_eq!(
        texts,
        [
            "Mock reply from acc-1.",
            "Mock reply from acc-2.",
            "Mock reply from acc-2."
        ]
    );
    let answers: Vec<String> =
        up.m.ws_frames()
            .iter()
            .map(cao::mock::RecordedFrame::summary)
            .collect();
    assert_eq!(
        answers,
        [
            "acc-1:prewarm:completed",
            "acc-1:delta:completed",
            "acc-1:delta:error:usage_limit_reached",
            "acc-2:full:completed",
            "acc-2:delta:completed"
        ]
    );
    assert!(c.seen.iter().all(|e| e["type"] != "error"), "{:?}", c.seen);
    common::gateway::assert_no_mismatch(&up.m);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_ca_file_the_upstream_certificate_is_refused() {
    let env = two_accounts();
    let up = tls_upstream(Scenario::default()).await;
    let g = up.gateway(&env, &["--upstream-retries", "0"]);
    let a = model_call(&g.url, Some("s-http")).await;
    assert_eq!(a.status, 502, "{}", a.body);
    assert!(a.body.contains("upstream_unreachable"), "{}", a.body);
    let mut c = WsClient::connect(&g.url, "s-wss").await.unwrap();
    let t = c.turn("hello").await;
    let err = t.error.expect("an error frame");
    // 502 (the upstream failed), or 503 once both accounts are backing off after it.
    assert!(
        matches!(err["status"].as_u64(), Some(502 | 503)),
        "{err}\n{}",
        g.log()
    );
    // Nothing was answered by the upstream: the TLS handshake failed first.
    assert!(up.m.ws_frames().is_empty());
    assert!(
        up.m.requests().iter().all(|r| r.path == "/oauth/token"),
        "{:?}",
        up.m.requests()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_file_without_certificates_stops_the_gateway_from_starting() {
    let env = two_accounts();
    let junk = env.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let err = GatewayProc::try_start(&env, &["--upstream-ca-file", junk.to_str().unwrap()])
        .err()
        .unwrap_or_default();
    assert!(err.contains("--upstream-ca-file"), "{err}");
    assert!(err.contains("junk.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_codex_exec_is_served_over_a_wss_upstream_after_a_switch() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    let env = two_accounts();
    let spent = Scenario::default().with_account("acc-1", AccountFaults::spent(3600));
    let up = tls_upstream(spent).await;
    let ca = up.ca_file.display().to_string();
    let g = up.gateway(&env, &["--upstream-ca-file", &ca]);
    let token = format!("{}/oauth/token", up.m.https_base_url());
    let codex = common::codex::Codex::new(&env, bin, &token);
    let routed: Vec<String> = cao::codex::config_edit::cli_overrides(&g.url)
        .into_iter()
        .filter(|a| a != "-c")
        .collect();
    let out = codex
        .run(&routed, &["exec", "--skip-git-repo-check", "hello"])
        .await;
    common::codex::assert_answered(&out, "Mock reply from acc-2.", &g);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Falling back"), "{stderr}");
    let frames: Vec<String> =
        up.m.ws_frames()
            .iter()
            .map(cao::mock::RecordedFrame::summary)
            .collect();
    assert_eq!(
        frames,
        [
            "acc-1:prewarm:error:usage_limit_reached",
            "acc-2:prewarm:completed",
            "acc-2:delta:completed"
        ]
    );
    assert!(
        !up.m.requests().iter().any(|r| r.is_model_call()),
        "no HTTP model call"
    );
}
