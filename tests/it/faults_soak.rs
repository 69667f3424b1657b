//! The soak test (ignored; `bench/soak.sh` runs it): 100,000 requests through the real
//! `cao gateway start` with 5 % injected faults; every answer is accounted for and memory stays
//! flat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::faults::{healthy, raw_model_call, streamed_call};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cao::mock::{AccountFaults, MockUpstream, Scenario, ServerErrorFault};
use common::gateway::{gw, mock, model_call};
use common::{TestEnv, now_secs};
use tokio::io::AsyncReadExt;

/// 100,000 requests, 5 % with an injected fault (5xx once, a short 429, a disconnect mid-stream,
/// or a client that hangs up mid-stream), 32 at a time. Reports outcomes by kind and checks the
/// gateway's memory stays flat. Run with `bench/soak.sh` (release build).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "soak: 100,000 requests; run by bench/soak.sh"]
async fn soak_100k_requests_with_5_percent_faults() {
    let total: usize = std::env::var("SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let env = TestEnv::new();
    for i in 0..4 {
        env.add_logged_in(&format!("a{i}"), &format!("acc-{i}"), now_secs() + 86_400);
    }
    let m = mock(Scenario {
        record_requests: false,
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &["--cooldown-seconds", "1"]);
    let pid = g.child.id();
    let rss_kb = move || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let kinds = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        String,
        usize,
    >::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::RwLock::new(()));
    let mut samples = Vec::new();
    let m = Arc::new(m);
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (url, next, kinds, m, gate) = (
                g.url.clone(),
                next.clone(),
                kinds.clone(),
                m.clone(),
                gate.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let kind = soak_one(&url, &m, &gate, i).await;
                    *kinds.lock().unwrap().entry(kind).or_default() += 1;
                }
            })
        })
        .collect();
    let mut last = 0;
    while next.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let done = next.load(Ordering::Relaxed);
        if done / 10_000 > last / 10_000 {
            samples.push((done, rss_kb()));
        }
        last = done;
    }
    for w in workers {
        tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .expect("soak worker stuck")
            .unwrap();
    }
    samples.push((total, rss_kb()));
    assert!(healthy(&g).await);
    let kinds = kinds.lock().unwrap().clone();
    eprintln!("SOAK outcomes by kind: {kinds:?}");
    eprintln!("SOAK gateway RSS (requests done, KB): {samples:?}");
    let unexpected: usize = kinds
        .iter()
        .filter(|(k, _)| k.starts_with("unexpected"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(unexpected, 0, "{kinds:?}");
    // Flat memory: after warm-up, the end is within 50 % (+8 MB slack) of the first sample.
    if samples.len() >= 3 {
        let base = samples[1].1;
        let end = samples.last().unwrap().1;
        assert!(
            end <= base + base / 2 + 8 * 1024,
            "gateway memory grew: {samples:?}"
        );
    }
    assert!(g.stop().success());
}

/// Set `faults` on every soak account (the request that meets it is whichever comes next).
fn fault_all(m: &MockUpstream, faults: &AccountFaults) {
    for i in 0..4 {
        m.set_faults(&format!("acc-{i}"), faults.clone());
    }
}

/// One soak request; every 20th injects a fault first. Returns the outcome kind.
async fn soak_one(url: &str, m: &MockUpstream, gate: &tokio::sync::RwLock<()>, i: usize) -> String {
    let session = format!("soak-{}", i % 64);
    if i % 20 != 7 {
        let _normal = gate.read().await;
        let a = model_call(url, Some(&session)).await;
        return match (a.status, a.body.contains("response.completed")) {
            (200, true) => "ok".into(),
            // It met a disconnect injected for another request.
            (200, false) if a.body.contains("<<stream error") => {
                "collateral disconnect -> stream error".into()
            }
            // Every account met a one-off 429 injected for another request at the same time:
            // the gateway reports the short rate limit as upstream sent it.
            (429, _) if a.body.contains("rate_limit_exceeded") => {
                "collateral 429 on every account -> 429".into()
            }
            _ => format!(
                "unexpected {} {}",
                a.status,
                a.body.chars().take(80).collect::<String>()
            ),
        };
    }
    // Upstream faults are armed on every account with the other workers paused, so the fault
    // meets exactly this request; then they are cleared.
    let _alone = if (i / 20) % 4 < 3 {
        Some(gate.write().await)
    } else {
        None
    };
    let kind = match (i / 20) % 4 {
        0 => {
            fault_all(
                m,
                &AccountFaults {
                    server_error: Some(ServerErrorFault {
                        status: 503,
                        times: Some(1),
                    }),
                    ..Default::default()
                },
            );
            let a = model_call(url, Some(&session)).await;
            format!("fault 5xx-once -> {}", a.status)
        }
        1 => {
            // A short 429 on three of the four accounts: the gateway moves on to the fourth.
            for a in 0..3 {
                m.set_faults(
                    &format!("acc-{a}"),
                    AccountFaults {
                        rate_limited: Some(cao::mock::Times { times: Some(1) }),
                        ..Default::default()
                    },
                );
            }
            let a = model_call(url, Some(&session)).await;
            format!("fault 429-once -> {}", a.status)
        }
        2 => {
            fault_all(
                m,
                &AccountFaults {
                    disconnect_after_events: Some(1),
                    ..Default::default()
                },
            );
            // Clear the fault as soon as this request has its answer head, so few others meet it.
            let (status, body) = streamed_call(url, &session)
                .await
                .unwrap_or_else(|e| (0, format!("<<stream error: {e}>>")));
            let broken = body.contains("<<stream error");
            format!(
                "fault disconnect -> {status} {}",
                if broken { "stream error" } else { "complete" }
            )
        }
        _ => {
            let mut s = raw_model_call(url).await;
            let mut buf = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
            drop(s);
            "fault client-abort".into()
        }
    };
    if _alone.is_some() {
        fault_all(m, &AccountFaults::default());
    }
    kind
}
