//! An upstream that speaks HTTP/2 (chosen by TLS's ALPN, as chatgpt.com does): model calls with
//! a usage-limit switch and a token refresh reach it over HTTP/2 (the pool itself, one shared
//! connection and all, is tested in `src/gateway/client_tests.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common;

use cao::mock::{MockUpstream, Scenario};
use common::gateway::{gw_at, model_call, spent_after};
use common::{TestEnv, now_secs};

#[tokio::test(flavor = "multi_thread")]
async fn model_calls_a_switch_and_a_refresh_go_over_http2_when_alpn_picks_it() {
    let dir = tempfile::tempdir().unwrap();
    let (material, _) = cao::gateway::tls::certs::ensure(dir.path(), common::now_ms()).unwrap();
    let cert = Arc::new(cao::gateway::tls::serving::LiveCert::new(&material).unwrap());
    let mut server = (*cert.server_config().unwrap()).clone();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let m = MockUpstream::spawn_tls(
        "127.0.0.1",
        0,
        Scenario::default().with_account("acc-1", spent_after(2)),
        Arc::new(server),
    )
    .await
    .unwrap();
    let env = TestEnv::new();
    // acc-1's token expires within the request margin: refreshed before its first call.
    env.add_logged_in("a1", "acc-1", now_secs() + 30);
    env.add_logged_in("a2", "acc-2", now_secs() + 3600);
    let base = m.https_base_url();
    let ca = material.info.ca_path.display().to_string();
    let g = gw_at(
        &env,
        &base,
        &format!("{base}/oauth/token"),
        &["--upstream-ca-file", &ca],
        &[],
    );

    let mut replies = Vec::new();
    for _ in 0..4 {
        let a = model_call(&g.url, Some("s-h2")).await;
        assert_eq!(a.status, 200, "{}\n{}", a.body, g.log());
        replies.push(if a.body.contains("Mock reply from acc-1.") {
            "acc-1"
        } else if a.body.contains("Mock reply from acc-2.") {
            "acc-2"
        } else {
            "?"
        });
    }
    assert_eq!(replies, ["acc-1", "acc-1", "acc-2", "acc-2"], "{}", g.log());
    assert_eq!(m.refresh_count("acc-1"), 1, "{:?}", m.presented_tokens());
    let seen = m.requests();
    assert!(seen.iter().any(|r| r.path == "/oauth/token"), "{seen:?}");
    assert!(
        seen.iter().all(|r| r.version == http::Version::HTTP_2),
        "{:?}",
        seen.iter()
            .map(|r| (&r.path, r.version))
            .collect::<Vec<_>>()
    );
    common::gateway::assert_no_mismatch(&m);
    assert!(g.stop().success());
}
