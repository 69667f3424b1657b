//! Fault injection over the real `cao gateway start`: what breaks between the gateway and
//! upstream (5xx bursts, resets, refused connections, half-closed and stalled streams). For each
//! fault: no crash, no hang (every wait is bounded), a clear error to the client, and no state
//! lost. Faults on the client's side are in [`super::faults_clients`], of tokens and the data dir
//! in [`super::faults_state`], the soak test in [`super::faults_soak`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::faults::{
    FIRST_EVENT, SSE_HEAD, auth_bytes, chunk, gw_at, healthy, raw_upstream, read_head, read_json,
    streamed_call,
};

use std::sync::atomic::Ordering;
use std::time::Duration;

use cao::mock::{AccountFaults, Scenario, ServerErrorFault};
use common::gateway::{gw, mock, model_call, two_accounts};
use common::{TestEnv, now_secs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_burst_is_reported_as_sent_and_service_resumes_when_it_ends() {
    let env = two_accounts();
    let before = (auth_bytes(&env, "a1"), auth_bytes(&env, "a2"));
    let burst = AccountFaults {
        server_error: Some(ServerErrorFault {
            status: 502,
            times: None,
        }),
        ..Default::default()
    };
    let m = mock(Scenario {
        default_faults: burst,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let url = g.url.clone();
            tokio::spawn(async move { model_call(&url, Some(&format!("burst-{i}"))).await })
        })
        .collect();
    for c in calls {
        let a = c.await.unwrap();
        assert_eq!(a.status, 502, "{a:?}");
        assert!(a.body.contains("injected server error"), "{}", a.body);
    }
    // The burst ends: every request succeeds again, no restart needed.
    m.set_scenario(Scenario::default());
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let url = g.url.clone();
            tokio::spawn(async move { model_call(&url, Some(&format!("after-{i}"))).await })
        })
        .collect();
    for c in calls {
        let a = c.await.unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        assert!(a.body.contains("response.completed"));
    }
    assert!(healthy(&g).await);
    // 5xx is not the account's fault: no login lost, no long cooldown, tokens untouched.
    let status = g.stop();
    assert!(status.success());
    let st = read_json(&env.data_dir().join("account_status.json"));
    for name in ["a1", "a2"] {
        let s = &st["statuses"][name];
        assert_ne!(s["needsLogin"], true, "{st}");
        let until = s["cooldownUntilMs"].as_i64().unwrap_or(0);
        assert!(
            until < (now_secs() + 120) * 1000,
            "long cooldown after 5xx: {st}"
        );
    }
    assert_eq!(before, (auth_bytes(&env, "a1"), auth_bytes(&env, "a2")));
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_resets_and_refused_connections_get_a_clear_502_without_a_retry_storm() {
    let env = two_accounts();
    let (url, conns) = raw_upstream(|sock: TcpStream| async move {
        // Closing a socket with unread data makes Linux send RST instead of FIN.
        let _ = sock.readable().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(sock);
    })
    .await;
    let g = gw_at(&env, &url, &format!("{url}/oauth/token"), &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 502, "{a:?}");
    assert_eq!(
        a.json()["error"]["type"],
        "upstream_unreachable",
        "{}",
        a.body
    );
    let n = conns.load(Ordering::SeqCst);
    assert!(
        (3..=12).contains(&n),
        "expected 1 try + 2 retries per account at most, got {n} connections"
    );
    assert!(healthy(&g).await);
    drop(g);

    // Nothing listens at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let g = gw_at(&env, &closed, &format!("{closed}/oauth/token"), &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 502, "{a:?}");
    assert!(
        a.body.contains("could not reach the upstream"),
        "{}",
        a.body
    );
    assert!(healthy(&g).await);
    assert!(g.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_closed_upstream_stream_ends_with_an_error_not_a_hang() {
    let env = two_accounts();
    let (url, _) = raw_upstream(|mut sock: TcpStream| async move {
        let _ = read_head(&mut sock).await;
        let _ = sock.write_all(SSE_HEAD).await;
        let _ = sock.write_all(&chunk(FIRST_EVENT)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // FIN on our side mid-body (no terminating chunk), but keep the socket open.
        let _ = sock.shutdown().await;
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(60), sock.read(&mut sink)).await;
    })
    .await;
    let g = gw_at(&env, &url, &format!("{url}/oauth/token"), &[]);
    match streamed_call(&g.url, "half").await {
        Ok((status, body)) => {
            assert_eq!(status, 200);
            assert!(body.contains("response.created"), "{body}");
            assert!(
                body.contains("<<stream error"),
                "a truncated upstream stream must reach the client as an error, not a clean end: {body}"
            );
        }
        // The connection dropped before the head was flushed: also an error, not a clean end.
        Err(e) => assert!(e.contains("Incomplete") || e.contains("closed"), "{e}"),
    }
    assert!(healthy(&g).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_upstreams_are_cut_by_the_request_and_idle_timeouts() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 3600);
    // Never sends the response head.
    let m = mock(Scenario::default().with_account(
        "acc-1",
        AccountFaults {
            first_byte_delay_ms: 60_000,
            ..Default::default()
        },
    ))
    .await;
    let g = gw(
        &env,
        &m,
        &[
            "--timeout-ms",
            "500",
            "--idle-timeout-ms",
            "500",
            "--upstream-retries",
            "1",
        ],
    );
    let a = model_call(&g.url, None).await;
    assert!(a.status >= 500, "{a:?}");
    assert!(!a.body.is_empty(), "the client needs a reason: {a:?}");

    // Sends one event, then nothing.
    m.set_faults(
        "acc-1",
        AccountFaults {
            stall_after_events: Some(1),
            ..Default::default()
        },
    );
    let a = model_call(&g.url, None).await;
    assert!(a.body.contains("response.created"), "{}", a.body);
    assert!(a.body.contains("<<stream error"), "{}", a.body);
    assert!(healthy(&g).await);
    assert!(g.stop().success());
}
