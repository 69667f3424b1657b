//! The gateway's perimeter with the real binary: every refusal is answered by the gateway and
//! never reaches upstream; browser headers are not forwarded and upstream CORS grants, cookies
//! and off-host redirects do not come back; slow clients and big uploads are bounded; the
//! access key rules. Port squatting: `perimeter_identity`; Host forms and saved options:
//! `perimeter_hosts`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cao::mock::Scenario;
use common::gateway::{GatewayProc, gw, mock, model_call, send, two_accounts};

/// `host:port` of a gateway URL.
pub(crate) fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Send raw bytes on a new connection and read the answer until the gateway closes it (or 10 s).
pub(crate) fn raw(url: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr(url)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// What the mock got from clients (not the gateway's own token refreshes or usage polls).
pub(crate) fn forwarded(m: &cao::mock::MockUpstream) -> Vec<cao::mock::RecordedRequest> {
    m.requests()
        .into_iter()
        .filter(|r| r.path != "/oauth/token" && !r.path.ends_with("/wham/usage"))
        .collect()
}

pub(crate) fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_is_answered_locally_and_never_reaches_upstream() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let port = g.url.rsplit(':').next().unwrap().to_string();
    let json = ("content-type", "application/json");
    let body = br#"{"model":"gpt-5","input":[]}"#;
    let evil_host = format!("evil.example.com:{port}");
    let long_session = "s".repeat(200);
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);
    fn ws<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut h = vec![
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        h.extend_from_slice(extra);
        h
    }
    let cases: Vec<Case> = vec![
        ("POST", "/responses", vec![json, ("host", &evil_host)], 421),
        ("GET", "/status", vec![("host", &evil_host)], 421),
        ("GET", "/metrics", vec![("host", "localhost")], 421),
        (
            "POST",
            "/responses",
            vec![json, ("origin", "http://evil.example")],
            403,
        ),
        (
            "POST",
            "/responses",
            vec![json, ("sec-fetch-site", "cross-site")],
            403,
        ),
        (
            "POST",
            "/responses",
            vec![("content-type", "text/plain")],
            415,
        ),
        ("POST", "/responses", vec![], 415),
        (
            "POST",
            "/responses",
            vec![json, ("expect", "nonsense")],
            417,
        ),
        (
            "POST",
            "/responses",
            vec![json, ("session-id", &long_session)],
            400,
        ),
        ("GET", "/backend-api/conversations", vec![], 404),
        ("GET", "/api/codex/settings/user", vec![], 404),
        ("GET", "/backend-api/%2e%2e/conversations", vec![], 400),
        (
            "GET",
            "/backend-api/wham/%2E%2e/%2e%2e/conversations",
            vec![],
            400,
        ),
        (
            "GET",
            "/status",
            vec![("origin", "http://127.0.0.1:1")],
            403,
        ),
        ("GET", "/status", vec![("sec-fetch-site", "same-site")], 403),
        // The WebSocket upgrade (CORS does not cover WebSockets) gets the same checks.
        (
            "GET",
            "/responses",
            ws(&[("origin", "http://evil.example")]),
            403,
        ),
        ("GET", "/responses", ws(&[("host", &evil_host)]), 421),
        (
            "GET",
            "/responses",
            ws(&[("sec-fetch-site", "cross-site")]),
            403,
        ),
        (
            "GET",
            "/metrics",
            vec![("sec-fetch-site", "cross-site")],
            403,
        ),
    ];
    for (method, path, headers, want) in &cases {
        let a = send(method, &format!("{}{path}", g.url), headers, body).await;
        assert_eq!(a.status, *want, "{method} {path} {headers:?}: {a:?}");
        assert!(a.body.contains("\"error\""), "{a:?}");
    }
    // What a client library would normalise away, sent raw.
    for (request, want) in [
        (
            "GET /backend-api/../conversations HTTP/1.1\r\nHost: 127.0.0.1:P\r\n\r\n",
            400,
        ),
        (
            "GET /backend-api/./wham/usage HTTP/1.1\r\nHost: 127.0.0.1:P\r\n\r\n",
            400,
        ),
        ("GET /responses HTTP/1.0\r\n\r\n", 421),
        ("GET /status HTTP/1.1\r\nHost: \r\n\r\n", 421),
        (
            "GET http://chatgpt.com/backend-api/wham/usage HTTP/1.1\r\nHost: 127.0.0.1:P\r\n\r\n",
            421,
        ),
    ] {
        let request = request.replace("Host: 127.0.0.1:P", &format!("Host: 127.0.0.1:{port}"));
        let request = request.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
        let answer = raw(&g.url, request.as_bytes());
        assert_eq!(status_of(&answer), want, "{request:?}: {answer}");
    }
    // OPTIONS is answered by the gateway, with no CORS grant.
    let pre = send(
        "OPTIONS",
        &format!("{}/responses", g.url),
        &[("access-control-request-method", "POST")],
        b"",
    )
    .await;
    assert_eq!(pre.status, 204);
    assert!(
        !pre.headers
            .keys()
            .any(|k| k.as_str().starts_with("access-control-")),
        "{pre:?}"
    );
    assert!(
        forwarded(&m).is_empty(),
        "refused requests reached upstream: {:?}",
        m.requests()
    );
    // The control: Codex's own shape of call (no Origin, JSON) goes through, and so does the
    // gateway's page asked from its own origin.
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);
    assert_eq!(forwarded(&m).len(), 1);
    let own = send(
        "GET",
        &format!("{}/status", g.url),
        &[
            ("origin", g.url.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        b"",
    )
    .await;
    assert_eq!(own.status, 200, "{own:?}");
    let log = g.log_when(|l| l.contains("refused"));
    assert!(log.contains("host_not_allowed"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_host_extra_is_accepted() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &["--allowed-host", "gw.internal"]);
    let a = send(
        "GET",
        &format!("{}/models", g.url),
        &[("host", "gw.internal")],
        b"",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let b = send(
        "GET",
        &format!("{}/models", g.url),
        &[("host", "other.internal")],
        b"",
    )
    .await;
    assert_eq!(b.status, 421);
    assert_eq!(forwarded(&m).len(), 1);
}

/// An upstream that records the request headers it got and answers with CORS grants, a cookie,
/// and (on `/backend-api/wham/away`) a redirect to another host.
async fn leaky_upstream() -> (String, Arc<Mutex<Vec<http::HeaderMap>>>) {
    use axum::response::IntoResponse;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(req.headers().clone());
            let mut r = if req.uri().path().ends_with("/away") {
                (
                    http::StatusCode::FOUND,
                    [(http::header::LOCATION, "https://evil.example/steal")],
                )
                    .into_response()
            } else {
                axum::Json(serde_json::json!({"models": []})).into_response()
            };
            let h = r.headers_mut();
            h.insert("access-control-allow-origin", "*".parse().unwrap());
            h.insert("access-control-allow-credentials", "true".parse().unwrap());
            h.insert("set-cookie", "session=upstream; Path=/".parse().unwrap());
            r
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_headers_stay_here_and_upstream_cors_cookies_and_redirects_stay_there() {
    let env = two_accounts();
    let (up, seen) = leaky_upstream().await;
    let g = GatewayProc::start(
        &env,
        &[
            "--base-url",
            &up,
            "--token-url",
            &format!("{up}/oauth/token"),
        ],
    );
    let a = send(
        "GET",
        &format!("{}/models", g.url),
        &[
            ("referer", "http://127.0.0.1/page"),
            ("expect", "100-continue"),
        ],
        b"",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    for h in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "set-cookie",
    ] {
        assert!(!a.headers.contains_key(h), "{h} came back: {:?}", a.headers);
    }
    let got = seen.lock().unwrap().clone();
    assert!(!got.is_empty());
    for h in ["referer", "origin", "expect"] {
        assert!(!got[0].contains_key(h), "{h} went upstream: {:?}", got[0]);
    }
    let away = send("GET", &format!("{}/backend-api/wham/away", g.url), &[], b"").await;
    assert_eq!(away.status, 502, "{away:?}");
    assert!(!away.headers.contains_key("location"), "{away:?}");
    assert!(away.body.contains("upstream_redirect"), "{away:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_are_cut_off_and_the_gateway_keeps_serving() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    // Far below the default 30 s, yet long enough that a loaded machine never cuts off the
    // heads that do arrive whole (the model calls, the idle connection's one request).
    let g = gw(&env, &m, &["--header-timeout-ms", "1500"]);
    // 45 slowloris connections, then silence: a third send half a request head, a third the
    // start of a TLS handshake (the HTTPS side of the same port), a third nothing at all.
    let mut slow: Vec<TcpStream> = (0..45)
        .map(|i| {
            let mut s = TcpStream::connect(addr(&g.url)).unwrap();
            let start: &[u8] = match i % 3 {
                0 => b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
                1 => &[0x16, 0x03, 0x01],
                _ => b"",
            };
            s.write_all(start).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    assert_eq!(model_call(&g.url, None).await.status, 200);
    for s in &mut slow {
        let mut buf = [0u8; 512];
        // Closed by the gateway: EOF (or a reset), not our 10 s read timeout.
        let r = s.read(&mut buf);
        assert!(
            !matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a slow connection was still open after 10 s"
        );
    }
    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(addr(&g.url)).unwrap();
    let port = g.url.rsplit(':').next().unwrap();
    write!(
        idle,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut all = Vec::new();
    let r = idle.read_to_end(&mut all);
    assert!(r.is_ok(), "idle keep-alive connection not closed: {r:?}");
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    assert_eq!(model_call(&g.url, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn buffered_request_bytes_are_capped_across_requests() {
    let env = two_accounts();
    // Upstream takes 4 s to answer, so a request holds its body (and its share of the
    // budget) that long.
    let m = common::gateway::mock_acc1(cao::mock::AccountFaults {
        first_byte_delay_ms: 4000,
        ..Default::default()
    })
    .await;
    let g = gw(
        &env,
        &m,
        &[
            "--max-body-bytes",
            "1000000",
            "--max-buffered-bytes",
            "1000000",
            "--body-timeout-ms",
            "1500",
        ],
    );
    let port = g.url.rsplit(':').next().unwrap().to_string();
    let head = |len: usize| {
        format!(
            "POST /responses HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    // A: 900 KB, sent whole; its body stays buffered while upstream thinks.
    let mut a = TcpStream::connect(addr(&g.url)).unwrap();
    a.write_all(head(900_000).as_bytes()).unwrap();
    a.write_all(&vec![b' '; 900_000]).unwrap();
    let model_calls = || m.requests().iter().filter(|r| r.is_model_call()).count();
    // Upstream has it: the gateway read it whole and holds it (for a replay) until answered.
    assert!(
        common::gateway::eventually(10, || model_calls() == 1),
        "{:?}",
        m.requests()
    );
    // B does not fit next to it: it waits for room, then is told the gateway is busy (its body
    // is never read).
    let b = raw(
        &g.url,
        format!("{}{}", head(200_000), " ".repeat(1000)).as_bytes(),
    );
    assert_eq!(status_of(&b), 503, "{b}");
    assert!(b.contains("gateway_busy"), "{b}");
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = Vec::new();
    let _ = a.read_to_end(&mut out);
    assert_eq!(status_of(&String::from_utf8_lossy(&out)), 200);
    assert_eq!(model_calls(), 1, "{:?}", m.requests());
    // A body that never finishes arriving: 408 at the body deadline, nothing forwarded.
    let d = raw(&g.url, format!("{}{}", head(1000), "   ").as_bytes());
    assert_eq!(status_of(&d), 408, "{d}");
    assert_eq!(model_calls(), 1);
    // The budget is whole again: a body as big as all of it fits.
    m.set_faults("acc-1", cao::mock::AccountFaults::default());
    let c = raw(
        &g.url,
        format!("{}{}", head(1_000_000), " ".repeat(1_000_000)).as_bytes(),
    );
    assert_eq!(status_of(&c), 200, "{}", &c[..c.len().min(300)]);
    assert_eq!(model_calls(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn access_keys_must_be_long_are_warned_about_on_the_command_line_and_failures_are_logged() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let base = m.base_url();
    let short = GatewayProc::try_start(&env, &["--base-url", &base, "--access-key", "short"])
        .err()
        .unwrap_or_default();
    assert!(short.contains("at least 16"), "{short}");
    let key = "a-key-long-enough-for-cao";
    let g = gw(&env, &m, &["--access-key", key]);
    // The warning is on stderr, which the test reads on a thread of its own: wait for it.
    let log = g.log_when(|l| l.contains("visible to every user"));
    assert!(
        log.contains("visible to every user"),
        "no warning about a key in ps: {log}"
    );
    for _ in 0..3 {
        let r =
            common::gateway::get(&g.url, "/models", &[("x-cao-key", "wrong-key-wrong-key")]).await;
        assert_eq!(r.status, 401);
    }
    let ok = common::gateway::get(&g.url, "/models", &[("x-cao-key", key)]).await;
    assert_eq!(ok.status, 200);
    let log = g.log_when(|l| l.contains("failures=3"));
    assert!(log.contains("access key missing or wrong"), "{log}");
    assert!(log.contains("peer=127.0.0.1:"), "{log}");
    assert!(log.contains("failures=3"), "{log}");
    // Each failure in a row from one address is answered later than the one before.
    assert!(log.contains("failures=1 delay_ms=0"), "{log}");
    assert!(log.contains("failures=2 delay_ms=250"), "{log}");
    assert!(log.contains("failures=3 delay_ms=500"), "{log}");
    assert!(
        !log.contains("wrong-key-wrong-key"),
        "a tried key was logged: {log}"
    );
    assert_eq!(forwarded(&m).len(), 1);
    drop(g);

    // From a file, or generated (shown once).
    let file = env.dir.path().join("key");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    let g = gw(&env, &m, &["--access-key-file", file.to_str().unwrap()]);
    let r = common::gateway::get(&g.url, "/models", &[("x-cao-key", key)]).await;
    assert_eq!(r.status, 200);
    let log = g.log_when(|l| l.contains("can be read by other users"));
    assert!(log.contains("can be read by other users"), "{log}");
    drop(g);
    let g = gw(&env, &m, &["--access-key", "generate"]);
    // The whole line, key and newline: stderr may arrive in pieces.
    let log = g.log_when(|l| {
        l.split("CAO_GATEWAY_KEY): ")
            .nth(1)
            .is_some_and(|rest| rest.contains('\n'))
    });
    let generated = log
        .lines()
        .find_map(|l| l.split("CAO_GATEWAY_KEY): ").nth(1))
        .unwrap_or_else(|| panic!("no generated key shown: {log}"))
        .trim()
        .to_string();
    assert_eq!(generated.len(), 32);
    let r = common::gateway::get(&g.url, "/models", &[("x-cao-key", &generated)]).await;
    assert_eq!(r.status, 200);
}
