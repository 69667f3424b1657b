//! Many concurrent SSE streams through the gateway (or straight to the upstream), measuring the
//! time from an upstream event to the client.
//!
//! The upstream runs in this process, so the events it sends carry a timestamp from the same
//! clock the clients read: latency = time the client got the event - time upstream sent it.
//!
//! ```sh
//! cargo run --release --example sse_load -- --upstream-port 18080 \
//!     --target http://127.0.0.1:4319 --streams 1000 --events 20 --interval-ms 500 --rss-pid <gateway pid>
//! ```
//! `--target` defaults to the upstream itself (the direct baseline).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

#[path = "load_common.rs"]
mod load_common;
use load_common::{LoadArgs, micros, rss};

static OPEN: AtomicUsize = AtomicUsize::new(0);

struct Args {
    load: LoadArgs,
    streams: usize,
}

fn args() -> Args {
    let mut streams = 1000;
    let load = load_common::parse(std::env::args().skip(1), &[], |k, v| match k {
        "--streams" => streams = v.parse().expect("streams"),
        _ => panic!("unknown option {k}"),
    });
    Args { load, streams }
}

/// The upstream: every POST streams `events` events, one per `interval`, each stamped.
async fn upstream(port: u16, events: u32, interval: Duration) -> u16 {
    let app = axum::Router::new().fallback(move || async move {
        let stream = futures_util::stream::unfold(0u32, move |i| async move {
            if i > events {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(interval).await;
            }
            let kind = if i == events {
                "response.completed"
            } else {
                "response.output_text.delta"
            };
            let ev = format!(
                "event: {kind}\ndata: {{\"type\":\"{kind}\",\"delta\":\"x\",\"t\":{}}}\n\n",
                micros()
            );
            Some((Ok::<_, std::io::Error>(Bytes::from(ev)), i + 1))
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind upstream");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// One client stream: returns the latencies (µs) of the stamped events it got, or an error.
async fn client(
    http: cao::net::client::HttpClient,
    url: String,
    n: usize,
) -> Result<Vec<u64>, String> {
    let req = http::Request::post(format!("{url}/responses"))
        .header("authorization", "Bearer client-token")
        .header("chatgpt-account-id", "client-account")
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .header("session-id", format!("sse-load-{n}"))
        .body(Full::new(Bytes::from_static(
            br#"{"model":"gpt-5-codex","input":[],"stream":true}"#,
        )))
        .unwrap();
    let resp = http
        .request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    OPEN.fetch_add(1, Ordering::Relaxed);
    let mut body = resp.into_body();
    let mut buf = String::new();
    let mut lat = Vec::new();
    let mut completed = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("stream: {e}"))?;
        let now = micros();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buf.find("\n\n") {
            let ev: String = buf.drain(..end + 2).collect();
            if let Some(t) = ev
                .split("\"t\":")
                .nth(1)
                .and_then(|r| r.trim_end_matches(['}', '\n']).parse::<u64>().ok())
            {
                lat.push(now.saturating_sub(t));
            }
            completed |= ev.contains("response.completed");
        }
    }
    OPEN.fetch_sub(1, Ordering::Relaxed);
    if completed {
        Ok(lat)
    } else {
        Err("stream ended before response.completed".into())
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let a = args();
    micros();
    let port = upstream(
        a.load.upstream_port,
        a.load.events,
        Duration::from_millis(a.load.interval_ms),
    )
    .await;
    let target = a
        .load
        .target
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
    let http = cao::net::connector::http_client().unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..a.streams)
        .map(|n| tokio::spawn(client(http.clone(), target.clone(), n)))
        .collect();

    // Sample memory once every stream is open (or after a while), mid-way through the events.
    let mut mid_rss = String::from("-");
    let deadline = Instant::now() + Duration::from_secs(30);
    while OPEN.load(Ordering::Relaxed) < a.streams && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_open_after = started.elapsed();
    tokio::time::sleep(Duration::from_millis(
        a.load.interval_ms * u64::from(a.load.events) / 2,
    ))
    .await;
    let open_mid = OPEN.load(Ordering::Relaxed);
    if let Some(pid) = a.load.rss_pid {
        mid_rss = rss(pid);
    }

    let mut lat = Vec::new();
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(120), t).await {
            Ok(Ok(Ok(l))) => lat.extend(l),
            Ok(Ok(Err(e))) => *errors.entry(e).or_default() += 1,
            Ok(Err(e)) => *errors.entry(format!("task: {e}")).or_default() += 1,
            Err(_) => *errors.entry("timed out".into()).or_default() += 1,
        }
    }
    lat.sort_unstable();
    let failed: usize = errors.values().sum();
    println!(
        "RESULT streams={} ok={} failed={} open_mid={} all_open_s={:.2} events={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} rss_mid_mb=\"{}\" rss_end_mb=\"{}\" wall_s={:.1}",
        a.streams,
        a.streams - failed,
        failed,
        open_mid,
        all_open_after.as_secs_f64(),
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        mid_rss,
        a.load.rss_pid.map(rss).unwrap_or_else(|| "-".into()),
        started.elapsed().as_secs_f64()
    );
    for (e, n) in errors {
        println!("ERROR {n} x {e}");
    }
}
