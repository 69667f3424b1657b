//! Fault injection on the client's side of the real `cao gateway start`: a slow reader and one
//! that hangs up mid-stream; neither holds up others or leaks the upstream request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::faults::{
    FIRST_EVENT, SSE_HEAD, chunk, gw_at, healthy, raw_model_call, raw_upstream, read_head,
};

use std::time::Duration;

use cao::mock::Scenario;
use common::gateway::{gw, mock, model_call, two_accounts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_gets_its_whole_stream_and_does_not_hold_up_others() {
    let env = two_accounts();
    // A big answer: about 400 KB of SSE.
    let m = mock(Scenario {
        reply: "x".repeat(200_000),
        deltas: 2_000,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let mut slow = raw_model_call(&g.url).await;
    // The slow client reads nothing while others are served.
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let url = g.url.clone();
            tokio::spawn(async move { model_call(&url, Some(&format!("s{i}"))).await })
        })
        .collect();
    for c in calls {
        let a = c.await.unwrap();
        assert_eq!(a.status, 200);
        assert!(a.body.contains("response.completed"));
    }
    // Then it reads in small sips, and still gets everything.
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), slow.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("slow client read failed: {e}"),
            Err(_) => panic!("slow client stalled for 30 s"),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(text.contains("response.completed"));
    assert!(healthy(&g).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_hangs_up_mid_stream_cancels_the_upstream_request() {
    let env = two_accounts();
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (url, _) = raw_upstream(move |mut sock: TcpStream| {
        let closed_tx = closed_tx.clone();
        async move {
            let head = read_head(&mut sock).await;
            if !head.starts_with("POST") {
                return;
            }
            let _ = sock.write_all(SSE_HEAD).await;
            let _ = sock.write_all(&chunk(FIRST_EVENT)).await;
            // Keep the stream open; report when the gateway hangs up on us.
            let mut sink = [0u8; 256];
            loop {
                match tokio::time::timeout(Duration::from_secs(60), sock.read(&mut sink)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        let _ = closed_tx.send(());
                        return;
                    }
                    Ok(Ok(_)) => {}
                    Err(_) => return,
                }
            }
        }
    })
    .await;
    let g = gw_at(&env, &url, &format!("{url}/oauth/token"), &[]);
    let mut client = raw_model_call(&g.url).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("response.created") {
        let n = tokio::time::timeout(Duration::from_secs(20), client.read(&mut buf))
            .await
            .expect("first event within 20 s")
            .unwrap();
        assert!(n > 0, "stream ended early");
        got.extend_from_slice(&buf[..n]);
    }
    drop(client);
    tokio::time::timeout(Duration::from_secs(20), closed_rx.recv())
        .await
        .expect("the gateway must drop the upstream request when its client hangs up");
    assert!(healthy(&g).await);
    assert!(g.stop().success());
}
