//! Responses over WebSocket through the gateway vs straight to the upstream.
//!
//! Two measurements, both with the upstream inside this process (listening on 127.0.0.1):
//!
//! - `session`: one Codex-shaped session of `--turns` turns (a prewarm, a ~78 KB first turn
//!   of 7 items, then 1-item ~2.1 KB deltas, as Codex 0.171 sends them) over WebSocket, or the
//!   same conversation over HTTP (`--http`: every turn re-sends the whole input, as Codex does
//!   after falling back). The upstream is cao's mock, which records the bytes of every request
//!   it got: printed per turn and in total.
//! - `frames`: `--sessions` sockets at once, each sending one request; the upstream answers
//!   each with `--events` output frames, one every `--interval-ms`, each stamped with the time
//!   it was sent (same clock as the client): the time from upstream to client per frame
//!   (p50/p99), and the gateway's RSS (`--rss-pid`) once every socket has had its answer
//!   and is still open (held, as Codex holds its socket between turns).
//!
//! ```sh
//! cargo run --release --example ws_load -- session --upstream-port 18080 --target http://127.0.0.1:4319 --turns 20
//! cargo run --release --example ws_load -- frames --upstream-port 18081 --target http://127.0.0.1:4319 --sessions 1000 --events 20 --interval-ms 500 --rss-pid <gateway pid>
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

use base64::Engine;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[path = "load_common.rs"]
mod load_common;
use load_common::{LoadArgs, micros, rss};

static OPEN: AtomicUsize = AtomicUsize::new(0);
/// Sockets whose response is over (or that failed): they stay open until released.
static DONE: AtomicUsize = AtomicUsize::new(0);

struct Args {
    mode: String,
    load: LoadArgs,
    turns: usize,
    http: bool,
    sessions: usize,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let (mut turns, mut http, mut sessions) = (20, false, 1000);
    let load = load_common::parse(it, &["--http"], |k, v| match k {
        "--http" => http = true,
        "--turns" => turns = v.parse().expect("turns"),
        "--sessions" => sessions = v.parse().expect("sessions"),
        _ => panic!("unknown option {k}"),
    });
    Args {
        mode,
        load,
        turns,
        http,
        sessions,
    }
}

/// An unsigned test JWT naming ChatGPT account `acc-0` (the mock reads, never verifies, it).
fn bearer() -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let exp = jiff::Timestamp::now().as_second() + 86_400;
    let claims =
        json!({"exp": exp, "https://api.openai.com/auth": {"chatgpt_account_id": "acc-0"}});
    format!(
        "Bearer {}.{}.{}",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"sig")
    )
}

fn filler(kb: usize, seed: &str) -> String {
    seed.repeat(kb * 1024 / seed.len().max(1) + 1)[..kb * 1024].to_string()
}

fn user(text: String) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

/// Turn 1's input: 7 items, ~76 KB (Codex 0.171: tools item, developer/permissions, AGENTS.md,
/// environment, skills, a user message).
fn first_input() -> Vec<Value> {
    vec![
        json!({"type": "additional_tools", "tools": [{"type": "namespace", "name": "exec",
               "description": filler(40, "run a command and read its output; ")}]}),
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text",
               "text": filler(8, "sandbox: workspace-write; approvals: on-request. ")}]}),
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text",
               "text": filler(6, "collaboration mode: default. ")}]}),
        user(filler(14, "# AGENTS.md instructions for this repository. ")),
        user(filler(
            3,
            "<environment_context> cwd, shell, date </environment_context> ",
        )),
        user(filler(3, "skills: a list of skills and when to use them. ")),
        user(filler(2, "Please look at the failing test and fix it. ")),
    ]
}

/// The frame or body of one request.
fn request(prev: Option<&str>, input: &[Value], prewarm: bool, http: bool) -> String {
    let mut r = json!({"type": "response.create", "model": "gpt-6.2-sol",
        "instructions": filler(1, "You are Codex. "), "input": input,
        "store": false, "stream": true, "include": ["reasoning.encrypted_content"],
        "client_metadata": {"x-codex-turn-metadata": "{\"request_kind\":\"turn\"}"}});
    if let Some(p) = prev {
        r["previous_response_id"] = json!(p);
    }
    if prewarm {
        r["generate"] = json!(false);
    }
    if http {
        r.as_object_mut().map(|o| o.remove("type"));
    }
    r.to_string()
}

/// What a response brought back: its id and its output items.
fn read_event(text: &str, id: &mut Option<String>, out: &mut Vec<Value>) -> bool {
    let v: Value = serde_json::from_str(text).unwrap_or_default();
    match v["type"].as_str().unwrap_or("") {
        "response.output_item.done" => out.push(v["item"].clone()),
        "response.completed" => {
            *id = v["response"]["id"].as_str().map(str::to_string);
            return true;
        }
        "response.failed" | "error" => panic!("upstream failed: {text}"),
        _ => {}
    }
    false
}

async fn session(a: &Args) {
    let mock =
        cao::mock::MockUpstream::spawn("127.0.0.1", a.load.upstream_port, Default::default())
            .await
            .expect("mock upstream");
    let target = a.load.target.clone().unwrap_or_else(|| mock.base_url());
    let mut per_turn = Vec::new();
    let mut history: Vec<Value> = Vec::new();
    if a.http {
        let http = cao::gateway::http_client().expect("http client");
        for turn in 0..a.turns {
            let new = if turn == 0 {
                first_input()
            } else {
                vec![user(filler(
                    2,
                    &format!("turn {turn}: now also update the docs. "),
                ))]
            };
            history.extend(new);
            let body = request(None, &history, false, true);
            let req = http::Request::post(format!("{target}/responses"))
                .header("authorization", bearer())
                .header("content-type", "application/json")
                .header("accept", "text/event-stream")
                .header("session-id", "ws-load-http")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let resp = http.request(req).await.expect("request");
            assert!(resp.status().is_success(), "status {}", resp.status());
            let bytes = resp.into_body().collect().await.expect("body").to_bytes();
            let (mut id, mut out) = (None, Vec::new());
            for line in String::from_utf8_lossy(&bytes).lines() {
                if let Some(d) = line.strip_prefix("data: ") {
                    read_event(d, &mut id, &mut out);
                }
            }
            history.extend(out);
        }
        for r in mock.requests().iter().filter(|r| r.is_model_call()) {
            per_turn.push(r.body_len);
        }
    } else {
        let url = target.replacen("http://", "ws://", 1) + "/responses";
        let mut req = url.into_client_request().expect("ws url");
        let h = req.headers_mut();
        h.insert("authorization", bearer().parse().unwrap());
        h.insert("session-id", "ws-load-session".parse().unwrap());
        h.insert(
            "openai-beta",
            "responses_websockets=2026-02-06".parse().unwrap(),
        );
        let port = req.uri().port_u16().unwrap_or(80);
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (mut ws, _) = tokio_tungstenite::client_async(req, tcp)
            .await
            .expect("handshake");
        let mut prev: Option<String> = None;
        let mut frames: Vec<String> = vec![request(None, &[], true, false)];
        for turn in 0..=a.turns {
            let frame = frames.pop().expect("frame");
            ws.send(Message::text(frame)).await.expect("send");
            let (mut id, mut out) = (None, Vec::new());
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m
                    && read_event(&t, &mut id, &mut out)
                {
                    break;
                }
            }
            prev = id.or(prev);
            if turn < a.turns {
                let new = if turn == 0 {
                    first_input()
                } else {
                    vec![user(filler(
                        2,
                        &format!("turn {turn}: now also update the docs. "),
                    ))]
                };
                frames.push(request(prev.as_deref(), &new, false, false));
            }
        }
        let _ = ws.close(None).await;
        for f in mock.ws_frames().iter().filter(|f| !f.prewarm) {
            assert!(f.status() < 400, "frame refused: {}", f.summary());
            per_turn.push(f.bytes);
        }
    }
    let total: usize = per_turn.iter().sum();
    let list: Vec<String> = per_turn
        .iter()
        .map(|b| format!("{:.1}", *b as f64 / 1024.0))
        .collect();
    println!(
        "turns={} total_kb={:.1} per_turn_kb=[{}]",
        per_turn.len(),
        total as f64 / 1024.0,
        list.join(" ")
    );
    mock.shutdown().await;
}

/// The `frames` upstream: every `response.create` is answered by `events` stamped output
/// frames, one per `interval`, then `response.completed`.
async fn frames_upstream(port: u16, events: u32, interval: Duration) -> u16 {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| async move {
        let (mut parts, _) = req.into_parts();
        let resp = cao::gateway::ws_upgrade::accept(&parts.headers).expect("upgrade");
        let on = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .expect("upgradable");
        tokio::spawn(async move {
            let Some(mut ws) = cao::gateway::ws_upgrade::take_over(on).await else {
                return;
            };
            let mut n = 0u64;
            while let Some(Ok(m)) = ws.next().await {
                if !matches!(m, Message::Text(_)) {
                    continue;
                }
                n += 1;
                let created = json!({"type": "response.created", "response": {"id": format!("resp_{n}")}});
                if ws.send(Message::text(created.to_string())).await.is_err() {
                    return;
                }
                for i in 0..events {
                    if i > 0 {
                        tokio::time::sleep(interval).await;
                    }
                    let ev = format!(
                        r#"{{"type":"response.output_text.delta","item_id":"m","output_index":0,"delta":"x","t":{}}}"#,
                        micros()
                    );
                    if ws.send(Message::text(ev)).await.is_err() {
                        return;
                    }
                }
                let done = json!({"type": "response.completed", "response": {"id": format!("resp_{n}"), "status": "completed"}});
                if ws.send(Message::text(done.to_string())).await.is_err() {
                    return;
                }
            }
        });
        resp
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind upstream");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// One socket: the latencies (µs) of the stamped frames it got. It stays open after its
/// response (as Codex keeps its socket between turns) until `release` says so.
async fn frames_client(
    url: String,
    n: usize,
    release: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<u64>, String> {
    let r = one_response(url, n, release).await;
    if r.is_err() {
        DONE.fetch_add(1, Ordering::Relaxed);
    }
    r
}

async fn one_response(
    url: String,
    n: usize,
    mut release: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<u64>, String> {
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    let h = req.headers_mut();
    h.insert("authorization", bearer().parse().unwrap());
    h.insert("session-id", format!("ws-load-{n}").parse().unwrap());
    let port = req.uri().port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    OPEN.fetch_add(1, Ordering::Relaxed);
    let frame = request(None, &[user("hello".into())], false, false);
    ws.send(Message::text(frame))
        .await
        .map_err(|e| e.to_string())?;
    let mut lat = Vec::new();
    let mut result = Err("socket closed before response.completed".to_string());
    while let Some(m) = ws.next().await {
        let Ok(Message::Text(t)) = m else { continue };
        let now = micros();
        let v: Value = serde_json::from_str(&t).unwrap_or_default();
        if let Some(sent) = v["t"].as_u64() {
            lat.push(now.saturating_sub(sent));
        }
        if v["type"] == "response.completed" {
            result = Ok(std::mem::take(&mut lat));
            break;
        }
        if v["type"] == "error" {
            result = Err(format!("error frame: {t}"));
            break;
        }
    }
    if result.is_ok() {
        DONE.fetch_add(1, Ordering::Relaxed);
        let _ = release.wait_for(|r| *r).await;
    }
    OPEN.fetch_sub(1, Ordering::Relaxed);
    let _ = ws.close(None).await;
    result
}

async fn frames(a: &Args) {
    let interval = Duration::from_millis(a.load.interval_ms);
    let up = frames_upstream(a.load.upstream_port, a.load.events, interval).await;
    let target = a
        .load
        .target
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{up}"));
    let url = target.replacen("http://", "ws://", 1) + "/responses";
    let (release, held) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(a.sessions);
    for n in 0..a.sessions {
        tasks.push(tokio::spawn(frames_client(url.clone(), n, held.clone())));
        if n % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Every socket has had its response and is still open: the gateway's memory then.
    let deadline = Instant::now() + Duration::from_secs(300);
    while DONE.load(Ordering::Relaxed) < a.sessions && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open_all = OPEN.load(Ordering::Relaxed);
    let rss_all = a.load.rss_pid.map(rss);
    let _ = release.send(true);
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(l)) => all.extend(l),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |v| *v as f64 / 1000.0)
    };
    print!(
        "sockets={} held_open={} frames={} errors={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        a.sessions,
        open_all,
        all.len(),
        errors.len(),
        pct(0.50),
        pct(0.99),
        all.last().map_or(0.0, |v| *v as f64 / 1000.0)
    );
    if let Some(r) = rss_all {
        print!(" gateway_rss_all_held_mb(rss/peak)={r}");
    }
    println!();
    if let Some(e) = errors.first() {
        eprintln!("first error: {e}");
    }
}

#[tokio::main]
async fn main() {
    micros();
    let a = args();
    match a.mode.as_str() {
        "session" => session(&a).await,
        "frames" => frames(&a).await,
        m => panic!("mode must be session or frames, not {m:?}"),
    }
}
