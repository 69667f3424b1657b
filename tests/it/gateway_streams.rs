//! Streams through the real `cao gateway start` (mock upstream on 127.0.0.1): timeouts, a
//! disconnect on either side, and a shutdown that lets a running stream finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, Scenario};
use common::gateway::{eventually, gw, mock, mock_acc1, model_call, model_calls, two_accounts};

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_a_running_stream_finish_and_exits_zero() {
    let env = two_accounts();
    let m = mock(Scenario {
        event_delay_ms: 300,
        deltas: 4,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let url = g.url.clone();
    let call = tokio::spawn(async move { model_call(&url, None).await });
    assert!(eventually(10, || !m.requests().is_empty()));
    let status = tokio::task::spawn_blocking(move || g.stop()).await.unwrap();
    let a = call.await.unwrap();
    assert_eq!(a.status, 200);
    assert!(a.body.contains("event: response.completed"), "{}", a.body);
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_streams_end_with_an_error_after_the_idle_timeout() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        stall_after_events: Some(2),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &["--idle-timeout-ms", "300"]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("response.created"));
    assert!(!a.body.contains("response.completed"));
    assert!(
        a.body.contains("<<stream error"),
        "the stream must end with an error: {}",
        a.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disconnect_mid_stream_reaches_the_client_as_an_error() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        disconnect_after_events: Some(2),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert!(
        a.body.contains("response.created") && !a.body.contains("response.completed"),
        "{a:?}"
    );
    assert!(a.body.contains("<<stream error"), "{}", a.body);
    // The gateway is still fine afterwards.
    m.set_faults("acc-1", AccountFaults::default());
    assert_eq!(model_call(&g.url, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_hangs_up_cancels_its_upstream_stream() {
    use http_body_util::BodyExt;
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        stall_after_events: Some(1),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let client = cao::net::connector::http_client().unwrap();
    let req = http::Request::post(format!("{}/responses", g.url))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(first.data_ref().unwrap()).contains("response.created"));
    assert_eq!(m.open_streams(), 1);
    drop(body);
    drop(client);
    assert!(
        eventually(10, || m.open_streams() == 0),
        "the upstream stream must end when the client leaves"
    );
    // The gateway keeps serving.
    m.set_faults("acc-1", AccountFaults::default());
    assert_eq!(model_call(&g.url, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_first_byte_waits_up_to_the_timeout_then_fails_clearly() {
    let env = two_accounts();
    let m = mock_acc1(AccountFaults {
        first_byte_delay_ms: 400,
        ..Default::default()
    })
    .await;
    let patient = gw(&env, &m, &[]);
    assert_eq!(model_call(&patient.url, None).await.status, 200);
    drop(patient);
    m.clear_requests();
    let hasty = gw(
        &env,
        &m,
        &["--timeout-ms", "100", "--upstream-retries", "1"],
    );
    let a = model_call(&hasty.url, None).await;
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.json()["error"]["type"], "upstream_unreachable");
    assert_eq!(model_calls(&m).len(), 2, "one try and one retry");
}
