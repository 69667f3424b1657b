//! The options of `cao gateway start` on the real binary: `--save` and `gateway.json`, the access
//! key, and `--passthrough-auth`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::Scenario;
use common::gateway::{
    GatewayProc, assert_no_mismatch, cao_command, get, gw, mock, model_call, send, two_accounts,
};
use common::now_secs;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn access_key_is_required_when_set_and_for_any_non_loopback_bind() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let base = m.base_url();
    let refused = GatewayProc::try_start(&env, &["--bind", "0.0.0.0", "--base-url", &base])
        .err()
        .unwrap_or_default();
    assert!(refused.contains("access key"), "{refused}");
    let g = gw(&env, &m, &["--access-key", "s3cret-key-0123456789"]);
    assert_eq!(model_call(&g.url, None).await.status, 401);
    let wrong = get(&g.url, "/models", &[("x-cao-key", "s3cret-key-0123456788")]).await;
    assert_eq!(wrong.status, 401);
    let ok = get(&g.url, "/models", &[("x-cao-key", "s3cret-key-0123456789")]).await;
    assert_eq!(ok.status, 200);
    let bearer = get(
        &g.url,
        "/models",
        &[("authorization", "Bearer s3cret-key-0123456789")],
    )
    .await;
    assert_eq!(bearer.status, 200);
    assert_eq!(
        send("GET", &format!("{}/health", g.url), &[], b"")
            .await
            .status,
        200
    );
    assert_eq!(m.requests().len(), 2);
    assert_no_mismatch(&m);
}

#[tokio::test(flavor = "multi_thread")]
async fn save_writes_typescript_keys_and_invalid_values_are_refused() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let g = gw(
        &env,
        &m,
        &["--save", "--cooldown-seconds", "120", "--port", &port],
    );
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(env.data_dir().join("gateway.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["cooldownSeconds"], 120);
    assert_eq!(saved["baseUrl"], m.base_url());
    assert_eq!(saved["overrideAuth"], true);
    for key in [
        "bindAddress",
        "port",
        "oauthClientId",
        "maxRetryPasses",
        "requestTimeoutMs",
        "upstreamMaxRetries",
        "upstreamRetryBaseMs",
        "upstreamRetryMaxMs",
        "upstreamRetryJitterMs",
        "tokenUrl",
    ] {
        assert!(saved.get(key).is_some(), "missing {key}");
    }
    let out = cao_command(&env)
        .args(["gateway", "status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accounts"][0]["state"], "ready");
    assert_eq!(v["config"]["cooldownSeconds"], 120);
    assert_eq!(
        v["live"]["health"]["status"], "ok",
        "the running gateway is shown: {v}"
    );
    assert_eq!(v["live"]["health"]["ready"], 2);
    // Both URLs (same port) and the CA, on /status and in `gateway status`.
    let served = &v["live"]["status"]["served"];
    assert_eq!(served["httpUrl"], g.url.as_str(), "{v}");
    assert_eq!(
        served["httpsUrl"],
        g.tls_url.clone().unwrap().as_str(),
        "{v}"
    );
    let fp = served["caFingerprint"].as_str().unwrap().to_string();
    assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
    let ca_until = served["caNotAfterMs"].as_i64().unwrap();
    let leaf_until = served["leafNotAfterMs"].as_i64().unwrap();
    assert!(
        ca_until > leaf_until && leaf_until > now_secs() * 1000,
        "{v}"
    );
    let st = get(&g.url, "/status", &[]).await;
    assert_eq!(st.json()["served"]["caFingerprint"], fp.as_str());
    let out = cao_command(&env)
        .args(["gateway", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Live: running at") && text.contains("requests,"),
        "{text}"
    );
    assert!(text.contains("*a1") && text.contains("ready"), "{text}");
    assert!(text.contains(&format!("  http       {}", g.url)), "{text}");
    assert!(
        text.contains(&format!(
            "  https      {} (same port)",
            g.tls_url.clone().unwrap()
        )),
        "{text}"
    );
    assert!(text.contains(&format!("CA         sha256 {fp}")), "{text}");
    assert!(
        text.contains("leaf expires") && text.contains("CA expires"),
        "{text}"
    );
    drop(g);
    let out = cao_command(&env)
        .args([
            "gateway",
            "start",
            "--port",
            "0",
            "--upstream-retry-base-ms",
            "500",
            "--upstream-retry-max-ms",
            "100",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream-retry-max-ms"));
    std::fs::write(env.data_dir().join("gateway.json"), r#"{"port": "4319"}"#).unwrap();
    let out = cao_command(&env)
        .args(["gateway", "start"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn passthrough_auth_keeps_the_clients_own_credentials() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &["--passthrough-auth"]);
    let own = common::jwt(serde_json::json!({
        "exp": now_secs() + 600,
        "https://api.openai.com/auth": {"chatgpt_account_id": "acc-own"}
    }));
    let bearer = format!("Bearer {own}");
    let a = send(
        "POST",
        &format!("{}/responses", g.url),
        &[
            ("authorization", &bearer),
            ("chatgpt-account-id", "acc-own"),
            ("content-type", "application/json"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(a.status, 200);
    let r = &m.requests()[0];
    assert_eq!(r.bearer_account.as_deref(), Some("acc-own"));
    assert_eq!(r.header_account.as_deref(), Some("acc-own"));
}
