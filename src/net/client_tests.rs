//! The pooled client against real servers on 127.0.0.1: hyper's own (plain, TLS with HTTP/1.1,
//! TLS with HTTP/2 by ALPN) and raw sockets that close at the worst moments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Error, HttpClient, host_header};

/// A hyper server that counts its connections and notes every request as
/// `VERSION METHOD TARGET HOST BODY-LEN`.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (a, s) = (accepted.clone(), seen.clone());
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (seen, acceptor) = (s.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let len = body.collect().await.map_or(0, |b| b.to_bytes().len());
                                let host = parts
                                    .headers
                                    .get(http::header::HOST)
                                    .and_then(|h| h.to_str().ok())
                                    .unwrap_or("-")
                                    .to_owned();
                                seen.lock().unwrap().push(format!(
                                    "{:?} {} {} {host} {len}",
                                    parts.version, parts.method, parts.uri
                                ));
                                let status = match parts.uri.path() {
                                    "/empty" => 204,
                                    _ => 200,
                                };
                                let body = match status {
                                    204 => Full::new(Bytes::new()),
                                    _ => Full::new(Bytes::from(vec![b'x'; 64 * 1024])),
                                };
                                Ok::<_, std::convert::Infallible>(
                                    http::Response::builder().status(status).body(body).unwrap(),
                                )
                            }
                        },
                    );
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            accepted,
            seen,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A raw server: reads each connection's first request head, then answers `answer` (nothing
/// when empty) and closes it.
async fn raw_server(answer: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                if !answer.is_empty() {
                    let _ = tcp.write_all(answer.as_bytes()).await;
                }
                let _ = tcp.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

fn get(url: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn post(url: &str, body: &'static str) -> http::Request<Full<Bytes>> {
    http::Request::post(url)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

async fn read_all(client: &HttpClient, req: http::Request<Full<Bytes>>) -> (u16, usize) {
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body.len())
}

fn plain() -> HttpClient {
    crate::net::connector::http_client().unwrap()
}

/// A server certificate for 127.0.0.1 from a CA of its own (with `alpn`), and a client
/// trusting that CA.
fn tls_pair(alpn: &[&[u8]]) -> (Arc<rustls::ServerConfig>, HttpClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (material, _) =
        crate::gateway::tls::certs::ensure(dir.path(), crate::store::now_ms()).unwrap();
    let cert = Arc::new(crate::gateway::tls::serving::LiveCert::new(&material).unwrap());
    let mut server = (*cert.server_config().unwrap()).clone();
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let client = crate::net::connector::http_client_trusting(Some(&material.info.ca_path)).unwrap();
    (Arc::new(server), client, dir)
}

#[tokio::test]
async fn sequential_requests_share_one_connection_in_origin_form_with_a_host() {
    let s = Server::start(None).await;
    let c = plain();
    for n in 0..5 {
        let (status, len) = read_all(&c, get(&format!("http://{}/r/{n}?q=1", s.addr))).await;
        assert_eq!((status, len), (200, 64 * 1024));
    }
    let (status, _) = read_all(&c, post(&format!("http://{}/p", s.addr), "hello")).await;
    assert_eq!(status, 200);
    assert_eq!(s.accepted(), 1, "{:?}", s.seen());
    let seen = s.seen();
    assert_eq!(seen[0], format!("HTTP/1.1 GET /r/0?q=1 {} 0", s.addr));
    assert_eq!(seen[5], format!("HTTP/1.1 POST /p {} 5", s.addr));
}

#[tokio::test]
async fn a_host_the_caller_set_is_kept() {
    let s = Server::start(None).await;
    let mut req = get(&format!("http://{}/h", s.addr));
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_static("example.test"),
    );
    read_all(&plain(), req).await;
    assert_eq!(s.seen(), ["HTTP/1.1 GET /h example.test 0"]);
}

#[tokio::test]
async fn concurrent_requests_each_get_a_connection_and_all_come_back_to_the_pool() {
    let s = Server::start(None).await;
    let c = plain();
    let url = format!("http://{}/c", s.addr);
    let round = || {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (c, url) = (c.clone(), url.clone());
                tokio::spawn(async move { read_all(&c, get(&url)).await })
            })
            .collect();
        async move {
            for t in tasks {
                assert_eq!(t.await.unwrap().0, 200);
            }
        }
    };
    round().await;
    let after_first = s.accepted();
    assert!((1..=8).contains(&after_first), "{after_first}");
    for _ in 0..3 {
        round().await;
    }
    // Never more connections than requests in flight at once.
    assert!(s.accepted() <= 8, "{}", s.accepted());
    assert_eq!(s.seen().len(), 32);
}

#[tokio::test]
async fn an_answer_without_a_body_frees_its_connection_at_once() {
    let s = Server::start(None).await;
    let c = plain();
    for _ in 0..3 {
        // The body is never read: nothing in it to wait for.
        let resp = c
            .request(get(&format!("http://{}/empty", s.addr)))
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        drop(resp);
    }
    assert_eq!(s.accepted(), 1);
}

#[tokio::test]
async fn a_body_dropped_unread_takes_its_connection_with_it() {
    let s = Server::start(None).await;
    let c = plain();
    let resp = c
        .request(get(&format!("http://{}/big", s.addr)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    let (status, len) = read_all(&c, get(&format!("http://{}/next", s.addr))).await;
    assert_eq!((status, len), (200, 64 * 1024));
    assert_eq!(s.accepted(), 2);
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_passed_over() {
    let (addr, accepted) = raw_server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let c = plain();
    for n in 1..=3 {
        let (status, len) = read_all(&c, post(&format!("http://{addr}/x"), "once")).await;
        assert_eq!((status, len), (200, 2));
        assert_eq!(accepted.load(Ordering::SeqCst), n);
        // The server's close reaches the idle connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn idle_connections_expire() {
    let s = Server::start(None).await;
    let c = HttpClient::with_idle_timeout(connector(), Duration::from_millis(100));
    read_all(&c, get(&format!("http://{}/a", s.addr))).await;
    read_all(&c, get(&format!("http://{}/b", s.addr))).await;
    assert_eq!(s.accepted(), 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    read_all(&c, get(&format!("http://{}/c", s.addr))).await;
    assert_eq!(s.accepted(), 2);
}

fn connector() -> super::Connector {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(crate::net::connector::client_config(None).unwrap())
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error_naming_the_host() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = plain()
        .request(post(&format!("http://127.0.0.1:{port}/t"), "refresh"))
        .await
        .err()
        .unwrap();
    assert!(e.is_connect(), "{e:?}");
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn a_request_the_server_read_and_dropped_is_not_a_connect_error() {
    // What a token refresh must never be sent again after: it may have arrived.
    let (addr, accepted) = raw_server("").await;
    let e = plain()
        .request(post(&format!("http://{addr}/oauth/token"), "refresh"))
        .await
        .err()
        .unwrap();
    assert!(!e.is_connect(), "{e:?}");
    assert!(matches!(e, Error::Exchange { .. }), "{e:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_relative_url_is_refused() {
    let e = plain().request(get("/responses")).await.err().unwrap();
    assert!(matches!(e, Error::Url(_)), "{e:?}");
    assert!(!e.is_connect());
}

#[tokio::test]
async fn tls_with_http1_by_alpn_reuses_its_connection() {
    let (server, c, _dir) = tls_pair(&[b"http/1.1"]);
    let s = Server::start(Some(server)).await;
    for _ in 0..3 {
        let (status, _) = read_all(&c, get(&format!("https://{}/t", s.addr))).await;
        assert_eq!(status, 200);
    }
    assert_eq!(s.accepted(), 1);
    assert!(
        s.seen().iter().all(|r| r.starts_with("HTTP/1.1 GET /t ")),
        "{:?}",
        s.seen()
    );
}

#[tokio::test]
async fn http2_by_alpn_carries_concurrent_requests_on_one_connection() {
    let (server, c, _dir) = tls_pair(&[b"h2", b"http/1.1"]);
    let s = Server::start(Some(server)).await;
    // The first one makes the connection; the others share it, at once and later.
    read_all(&c, get(&format!("https://{}/first", s.addr))).await;
    let tasks: Vec<_> = (0..6)
        .map(|n| {
            let c = c.clone();
            let url = format!("https://{}/at-once/{n}", s.addr);
            tokio::spawn(async move { read_all(&c, post(&url, "body")).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), (200, 64 * 1024));
    }
    read_all(&c, get(&format!("https://{}/later", s.addr))).await;
    assert_eq!(s.accepted(), 1);
    let seen = s.seen();
    assert_eq!(seen.len(), 8);
    assert!(seen.iter().all(|r| r.starts_with("HTTP/2.0 ")), "{seen:?}");
    assert!(
        seen.iter()
            .any(|r| r.starts_with("HTTP/2.0 POST https://127.0.0.1:") && r.ends_with(" 4")),
        "{seen:?}"
    );
}

#[test]
fn the_host_drops_a_default_port_and_user_info() {
    let host = |u: &str| host_header(&u.parse::<http::Uri>().unwrap()).unwrap();
    assert_eq!(host("https://chatgpt.com/backend-api/codex"), "chatgpt.com");
    assert_eq!(
        host("https://chatgpt.com:443/backend-api/codex"),
        "chatgpt.com"
    );
    assert_eq!(host("https://chatgpt.com:8443/x"), "chatgpt.com:8443");
    assert_eq!(host("http://127.0.0.1:4319/responses"), "127.0.0.1:4319");
    assert_eq!(host("http://127.0.0.1:80/responses"), "127.0.0.1");
    assert_eq!(host("http://user:pw@127.0.0.1:9/x"), "127.0.0.1:9");
    assert_eq!(host("http://[::1]:9/x"), "[::1]:9");
    assert!(host_header(&"/responses".parse::<http::Uri>().unwrap()).is_none());
}

#[tokio::test]
async fn a_request_future_stays_small() {
    // It is held in every forwarded request's future, which is boxed and moved: the connector's
    // future (several KB) must stay out of it (boxed on the rare path that connects).
    let c = plain();
    let f = c.request(get("http://127.0.0.1:9/"));
    let n = std::mem::size_of_val(&f);
    assert!(n <= 2048, "{n} bytes");
}
