//! Helpers of the fault-injection tests ([`crate::faults`] and its siblings): a gateway that
//! retries fast, a raw upstream on 127.0.0.1 and the bytes of an event stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestEnv;
use common::gateway::{GatewayProc, read_text, send};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The gateway in front of `base` (token endpoint `token`), retrying fast.
pub fn gw_at(env: &TestEnv, base: &str, token: &str, extra: &[&str]) -> GatewayProc {
    common::gateway::gw_at(env, base, token, extra, &[])
}

pub async fn healthy(g: &GatewayProc) -> bool {
    send("GET", &format!("{}/health", g.url), &[], b"")
        .await
        .status
        == 200
}

pub fn read_json(path: &std::path::Path) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

pub fn auth_bytes(env: &TestEnv, name: &str) -> Vec<u8> {
    std::fs::read(env.data_dir().join(name).join("auth.json")).unwrap()
}

/// A raw upstream on 127.0.0.1 that does `behave` with every connection; counts connections.
pub async fn raw_upstream<F, Fut>(behave: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let behave = Arc::new(behave);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let b = behave.clone();
            tokio::spawn(async move { b(sock).await });
        }
    });
    (url, count)
}

/// Read one request head (up to the blank line).
pub async fn read_head(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut byte)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&byte[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

pub fn chunk(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

pub const FIRST_EVENT: &str = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r1\"}}\n\n";

/// Send a model call on a raw socket (so the test controls reading) and return the socket.
pub async fn raw_model_call(gw_url: &str) -> TcpStream {
    let addr = gw_url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = r#"{"model":"gpt-5","input":[],"stream":true}"#;
    let req = format!(
        "POST /responses HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer client\r\naccept: text/event-stream\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

/// A model call without client credentials of its own; returns status and body (with a
/// `<<stream error>>` marker when the body broke off), or the error if no answer head came.
pub async fn streamed_call(url: &str, session: &str) -> Result<(u16, String), String> {
    let client = cao::net::connector::http_client().unwrap();
    let req = http::Request::post(format!("{url}/responses"))
        .header("authorization", "Bearer client")
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .header("session-id", session)
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"model":"gpt-5","input":[],"stream":true}"#,
        )))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(60), client.request(req))
        .await
        .expect("answer within 60 s")
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    Ok((status, read_text(resp.into_body()).await))
}
