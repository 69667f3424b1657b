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
//! `--target` defaults to the upstream itself (the direct baseline). Every socket offers
//! permessage-deflate, as Codex does, and the upstreams accept it (`--no-deflate`: the client
//! does not offer it and the upstreams refuse it, so no hop compresses); the session prints the
//! bytes of each request as decoded and as they crossed the wire into the upstream.
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
use cao::net::ws::socket::{Msg, Socket};
use cao::net::ws::{client as ws_client, server as ws_upgrade};
use cao::policy::ws_deflate::Wants;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

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
    deflate: bool,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let (mut turns, mut http, mut sessions, mut deflate) = (20, false, 1000, true);
    let load = load_common::parse(it, &["--http", "--no-deflate"], |k, v| match k {
        "--http" => http = true,
        "--no-deflate" => deflate = false,
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
        deflate,
    }
}

/// Open `url` (`ws://127.0.0.1:P/...`) with `headers`, offering permessage-deflate or not.
async fn open(url: &str, headers: &[(&str, String)], deflate: bool) -> Result<Socket, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    ws_client::open(tcp, &uri, h, deflate.then(Wants::default))
        .await
        .map(|o| o.socket)
        .map_err(|e| format!("handshake: {e}"))
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

/// `kb` KiB of text that compresses about as Codex's real frames do (77 KB to 25 KB under
/// deflate, bench/ws_deflate.sh): `seed`, then words drawn from a small vocabulary by a
/// generator seeded with `seed`.
fn filler(kb: usize, seed: &str) -> String {
    const WORDS: [&str; 48] = [
        "the", "file", "test", "run", "command", "output", "read", "write", "change", "fix",
        "error", "line", "function", "module", "return", "value", "type", "check", "build",
        "cargo", "path", "src", "when", "with", "and", "for", "not", "this", "that", "use", "call",
        "args", "json", "string", "config", "tool", "shell", "patch", "diff", "apply", "model",
        "turn", "user", "input", "item", "token", "review", "commit",
    ];
    let mut rng = fastrand::Rng::with_seed(
        seed.bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    let mut s = String::from(seed);
    while s.len() < kb * 1024 {
        s.push_str(WORDS[rng.usize(..WORDS.len())]);
        s.push(if rng.u8(..12) == 0 { '\n' } else { ' ' });
        if rng.u8(..40) == 0 {
            s.push_str(&rng.u32(..100_000).to_string());
            s.push(' ');
        }
    }
    s.truncate(kb * 1024);
    s
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
    let mut scenario = cao::mock::Scenario::default();
    scenario.default_faults.ws.refuse_deflate = !a.deflate;
    let mock = cao::mock::MockUpstream::spawn("127.0.0.1", a.load.upstream_port, scenario)
        .await
        .expect("mock upstream");
    let target = a.load.target.clone().unwrap_or_else(|| mock.base_url());
    let mut per_turn = Vec::new();
    let mut wire = Vec::new();
    let (mut deflate, mut wire_total) = (String::from("-"), 0usize);
    let mut history: Vec<Value> = Vec::new();
    if a.http {
        let http = cao::net::connector::http_client().expect("http client");
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
        let headers = [
            ("authorization", bearer()),
            ("session-id", "ws-load-session".to_string()),
            ("openai-beta", "responses_websockets=2026-02-06".to_string()),
        ];
        let mut ws = open(&url, &headers, a.deflate).await.expect("open");
        let mut prev: Option<String> = None;
        let mut frames: Vec<String> = vec![request(None, &[], true, false)];
        for turn in 0..=a.turns {
            let frame = frames.pop().expect("frame");
            assert!(ws.send_text(frame).await, "send");
            let (mut id, mut out) = (None, Vec::new());
            while let Some(m) = ws.recv().await {
                if let Msg::Text(t) = m
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
        ws.close().await;
        for f in mock.ws_frames().iter().filter(|f| !f.prewarm) {
            assert!(f.status() < 400, "frame refused: {}", f.summary());
            per_turn.push(f.bytes);
            wire.push(f.wire_bytes as usize);
        }
        let socks = mock.ws_sockets();
        deflate = socks
            .iter()
            .map(|s| s.deflate.clone().unwrap_or_else(|| "-".into()))
            .collect::<Vec<_>>()
            .join("|");
        wire_total = socks.iter().map(|s| s.wire_bytes_in as usize).sum();
    }
    let total: usize = per_turn.iter().sum();
    let kb = |v: &[usize]| {
        v.iter()
            .map(|b| format!("{:.1}", *b as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    print!(
        "turns={} total_kb={:.1} per_turn_kb=[{}]",
        per_turn.len(),
        total as f64 / 1024.0,
        kb(&per_turn)
    );
    if !a.http {
        print!(
            " deflate={deflate:?} wire_total_kb={:.1} wire_per_turn_kb=[{}]",
            wire_total as f64 / 1024.0,
            kb(&wire)
        );
    }
    println!();
    mock.shutdown().await;
}

/// The `frames` upstream: every `response.create` is answered by `events` stamped output
/// frames, one per `interval`, then `response.completed`.
async fn frames_upstream(port: u16, events: u32, interval: Duration, deflate: bool) -> u16 {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| async move {
        let (mut parts, _) = req.into_parts();
        let wants = deflate.then(Wants::default);
        let a = ws_upgrade::accept(&parts.headers, wants).expect("upgrade");
        let on = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .expect("upgradable");
        tokio::spawn(async move {
            let Some(mut ws) = ws_upgrade::take_over(on, a.deflate).await else {
                return;
            };
            let mut n = 0u64;
            while let Some(m) = ws.recv().await {
                if !matches!(m, Msg::Text(_)) {
                    continue;
                }
                n += 1;
                let created = json!({"type": "response.created", "response": {"id": format!("resp_{n}")}});
                if !ws.send_text(created.to_string()).await {
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
                    if !ws.send_text(ev).await {
                        return;
                    }
                }
                let done = json!({"type": "response.completed", "response": {"id": format!("resp_{n}"), "status": "completed"}});
                if !ws.send_text(done.to_string()).await {
                    return;
                }
            }
        });
        a.response
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
    deflate: bool,
    release: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<u64>, String> {
    let r = one_response(url, n, deflate, release).await;
    if r.is_err() {
        DONE.fetch_add(1, Ordering::Relaxed);
    }
    r
}

async fn one_response(
    url: String,
    n: usize,
    deflate: bool,
    mut release: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<u64>, String> {
    let headers = [
        ("authorization", bearer()),
        ("session-id", format!("ws-load-{n}")),
    ];
    let mut ws = open(&url, &headers, deflate).await?;
    OPEN.fetch_add(1, Ordering::Relaxed);
    let frame = request(None, &[user("hello".into())], false, false);
    if !ws.send_text(frame).await {
        return Err("send failed".into());
    }
    let mut lat = Vec::new();
    let mut result = Err("socket closed before response.completed".to_string());
    while let Some(m) = ws.recv().await {
        let Msg::Text(t) = m else { continue };
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
    ws.close().await;
    result
}

async fn frames(a: &Args) {
    let interval = Duration::from_millis(a.load.interval_ms);
    let up = frames_upstream(a.load.upstream_port, a.load.events, interval, a.deflate).await;
    let target = a
        .load
        .target
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{up}"));
    let url = target.replacen("http://", "ws://", 1) + "/responses";
    let (release, held) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(a.sessions);
    for n in 0..a.sessions {
        tasks.push(tokio::spawn(frames_client(
            url.clone(),
            n,
            a.deflate,
            held.clone(),
        )));
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
