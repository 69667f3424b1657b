//! The Host allow-list with the real binary, in every form a request can name its host (IPv6
//! brackets, case, no port, user info, two headers, absolute-form targets), and the perimeter's
//! options kept by `--save` and used after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cao::mock::Scenario;
use common::gateway::{GatewayProc, cao_command, gw, mock, send, two_accounts};
use serde_json::Value;

use crate::perimeter::{addr, forwarded, raw, status_of};

#[tokio::test(flavor = "multi_thread")]
async fn every_spelling_of_the_gateways_own_name_passes_and_nothing_else_does() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let port: u16 = g.url.rsplit(':').next().unwrap().parse().unwrap();
    let other = port.wrapping_add(1);
    let cases: Vec<(String, u16)> = vec![
        (
            format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}"),
            200,
        ),
        (format!("GET /health HTTP/1.1\r\nHost: [::1]:{port}"), 200),
        (
            format!("GET /health HTTP/1.1\r\nHost: [0:0:0:0:0:0:0:1]:{port}"),
            200,
        ),
        (
            format!("GET /health HTTP/1.1\r\nHost: LocalHost:{port}"),
            200,
        ),
        (
            format!("GET /models HTTP/1.1\r\nHost: LOCALHOST:{port}"),
            200,
        ),
        (
            format!("GET http://127.0.0.1:{port}/health HTTP/1.1\r\nHost: 127.0.0.1:{port}"),
            200,
        ),
        ("GET /health HTTP/1.1\r\nHost: [::1]".to_string(), 421),
        (format!("GET /health HTTP/1.1\r\nHost: [::1]:{other}"), 421),
        (format!("GET /health HTTP/1.1\r\nHost: [::1:{port}"), 421),
        ("GET /health HTTP/1.1\r\nHost: localhost".to_string(), 421),
        (
            format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{other}"),
            421,
        ),
        (
            format!("GET /health HTTP/1.1\r\nHost: 127.0.0.2.nip.io:{port}"),
            421,
        ),
        (
            format!("GET /health HTTP/1.1\r\nHost: user@127.0.0.1:{port}"),
            421,
        ),
        (
            format!("GET /health HTTP/1.1\r\nHost: [::ffff:127.0.0.1]:{port}"),
            421,
        ),
        ("GET /health HTTP/1.1\r\nHost:".to_string(), 421),
        ("GET /models HTTP/1.0".to_string(), 421),
        (
            format!("GET /models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example:{port}"),
            400,
        ),
        (
            format!("GET http://evil.example:{port}/models HTTP/1.1\r\nHost: 127.0.0.1:{port}"),
            421,
        ),
        (
            format!("GET http://127.0.0.1:{port}/models HTTP/1.1\r\nHost: evil.example:{port}"),
            421,
        ),
    ];
    for (head, want) in &cases {
        let answer = raw(
            &g.url,
            format!("{head}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(status_of(&answer), *want, "{head:?}: {answer}");
    }
    // Only the one allowed /models call was forwarded.
    assert_eq!(forwarded(&m).len(), 1, "{:?}", m.requests());
    let log = g.log_when(|l| l.matches("host_not_allowed").count() >= 3);
    assert!(log.contains("host_not_allowed"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn perimeter_options_are_saved_and_a_restart_uses_them() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let port = common::gateway::free_port().to_string();
    let bad = GatewayProc::try_start(&env, &["--allowed-host", "http://gw.internal/"])
        .err()
        .unwrap_or_default();
    assert!(bad.contains("--allowed-host"), "{bad}");
    let g = gw(
        &env,
        &m,
        &[
            "--port",
            &port,
            "--save",
            "--allowed-host",
            "GW.internal",
            "--allowed-host",
            "proxy.internal:8443",
            // Far below the defaults (30 s, 60 s), yet long enough that a loaded machine
            // never cuts off the requests below that do send their head and body.
            "--header-timeout-ms",
            "2000",
            "--body-timeout-ms",
            "3000",
            "--max-buffered-bytes",
            "5000000",
        ],
    );
    assert!(g.stop().success());
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(env.data_dir().join("gateway.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        saved["allowedHosts"],
        serde_json::json!(["GW.internal", "proxy.internal:8443"]),
        "{saved}"
    );
    assert_eq!(saved["headerTimeoutMs"], 2000, "{saved}");
    assert_eq!(saved["bodyTimeoutMs"], 3000, "{saved}");
    assert_eq!(saved["maxBufferedBytes"], 5_000_000, "{saved}");
    let out = cao_command(&env)
        .args(["gateway", "status", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["headerTimeoutMs"], 2000, "{v}");

    // A restart with nothing on the command line but the port: the saved names pass...
    let g = GatewayProc::start(&env, &["--port", &port]);
    for (host, want) in [
        ("gw.internal", 200),
        ("proxy.internal:8443", 200),
        ("proxy.internal:9", 421),
    ] {
        let a = send("GET", &format!("{}/models", g.url), &[("host", host)], b"").await;
        assert_eq!(a.status, want, "{host}: {a:?}");
    }
    // ... a request head that stalls is cut off at the saved 2 s, not the default 30 s
    // (the read below gives up after 10 s) ...
    let mut slow = TcpStream::connect(addr(&g.url)).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 512];
    let r = slow.read(&mut buf);
    assert!(
        !matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a stalled head was still open after 10 s: the saved header timeout was not used"
    );
    // ... and a body that stops arriving is answered 408 at the saved 3 s, not 60 s.
    let stalled = raw(
        &g.url,
        format!(
            "POST /responses HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{{}}"
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&stalled), 408, "{stalled}");
    assert!(forwarded(&m).iter().all(|r| !r.is_model_call()));
    // The command line still wins over the file.
    drop(g);
    let g = GatewayProc::start(&env, &["--port", &port, "--allowed-host", "other.internal"]);
    let a = send(
        "GET",
        &format!("{}/models", g.url),
        &[("host", "gw.internal")],
        b"",
    )
    .await;
    assert_eq!(a.status, 421, "{a:?}");
}
