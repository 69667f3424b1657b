//! The one client for a running gateway: [`LiveGateway::find`] looks for this user's cao
//! gateway at a URL (it must prove it with [`crate::gateway::identity`] before anything else is sent, the
//! access key included), then [`LiveGateway::health`] and [`LiveGateway::status`] read its live
//! view as the [`crate::wire`] types.
//!
//! Blocking on purpose: its callers are commands (`cao gateway status`, `cao status --watch`,
//! `cao run --gateway`, `cao gateway enable`) that have no runtime of their own; each client
//! keeps a small one. Every call is bounded by [`TIMEOUT`], so a hung port never hangs cao.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::de::DeserializeOwned;

use crate::gateway::config::options as config;
use crate::gateway::forward;
use crate::gateway::identity::{self, Verdict};
use crate::net::client::HttpClient;
use crate::store::{SavedGateway, Store};
use crate::wire::{Health, Status};

/// How long one call may take (connect, answer and body each).
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Why a running gateway could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("could not start the client: {0}")]
    Setup(String),
    #[error("no answer from {url}")]
    Unreachable { url: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} did not answer as a cao gateway")]
    NotCao { url: String },
    #[error("something answers at {url} that is not your cao gateway: {why}")]
    NotOurs { url: String, why: String },
}

/// A cao gateway that answered at [`LiveGateway::url`].
pub struct LiveGateway {
    url: String,
    key: Option<String>,
    client: HttpClient,
    runtime: tokio::runtime::Runtime,
}

impl LiveGateway {
    /// This user's cao gateway at `url` (`https://` loopback URLs are read on the same port's
    /// plain side): `Ok(None)` when nothing listens there, an error when something answers that
    /// cannot prove it is this user's gateway for `store`'s data dir ([`identity::verify_on`]).
    /// `key` is the access key (sent as `x-cao-key`), sent only once the proof holds.
    pub fn find(store: &Store, url: &str, key: Option<String>) -> Result<Option<Self>, LiveError> {
        let live = Self::at(&crate::gateway::tls::urls::plain_for(url), key)?;
        match live.verify(store) {
            Verdict::Ours => Ok(Some(live)),
            Verdict::NothingListening => Ok(None),
            Verdict::NotOurs(why) => Err(LiveError::NotOurs { url: live.url, why }),
        }
    }

    /// Whether this is this user's gateway for `store`'s data dir, asked over this client
    /// ([`identity::verify_on`]).
    fn verify(&self, store: &Store) -> Verdict {
        identity::verify_on(store, &self.url, |nonce| {
            self.prove(nonce)
                .ok()
                .filter(|h| h.is_cao())
                .map(|h| h.proof.unwrap_or_default())
        })
    }

    /// A client for `url` without asking anything yet.
    pub(super) fn at(url: &str, key: Option<String>) -> Result<Self, LiveError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LiveError::Setup(e.to_string()))?;
        let client =
            crate::net::connector::http_client().map_err(|e| LiveError::Setup(e.to_string()))?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            key: key.filter(|k| !k.is_empty()),
            client,
            runtime,
        })
    }

    /// The base URL this gateway answered at (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET /health`, checked to come from a cao gateway.
    pub fn health(&self) -> Result<Health, LiveError> {
        let health: Health = self.get("/health")?;
        if health.is_cao() {
            Ok(health)
        } else {
            Err(LiveError::NotCao {
                url: self.url.clone(),
            })
        }
    }

    /// `GET /health?nonce=N`: the answer with its identity proof ([`identity::verify_on`]
    /// checks it). Never carries the access key.
    pub(super) fn prove(&self, nonce: &str) -> Result<Health, LiveError> {
        self.fetch(&format!("/health?{}={nonce}", identity::NONCE_PARAM), false)
    }

    /// `GET /status`, the live view.
    pub fn status(&self) -> Result<Status, LiveError> {
        let status: Status = self.get("/status")?;
        if status.service == crate::wire::SERVICE {
            Ok(status)
        } else {
            Err(LiveError::NotCao {
                url: self.url.clone(),
            })
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, LiveError> {
        self.fetch(path, true)
    }

    fn fetch<T: DeserializeOwned>(&self, path: &str, with_key: bool) -> Result<T, LiveError> {
        let url = format!("{}{path}", self.url);
        let unreachable = || LiveError::Unreachable { url: url.clone() };
        let mut request = http::Request::get(&url).header(http::header::ACCEPT, "application/json");
        if let Some(key) = self.key.as_ref().filter(|_| with_key) {
            request = request.header(forward::ACCESS_KEY_HEADER, key.as_str());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|_| unreachable())?;
        let body = self.runtime.block_on(async {
            let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
                .await
                .map_err(|_| unreachable())?
                .map_err(|_| unreachable())?;
            if !response.status().is_success() {
                return Err(LiveError::Status {
                    url: url.clone(),
                    status: response.status().as_u16(),
                });
            }
            tokio::time::timeout(TIMEOUT, response.into_body().collect())
                .await
                .map_err(|_| unreachable())?
                .map_err(|_| unreachable())
                .map(|b| b.to_bytes())
        })?;
        serde_json::from_slice(&body).map_err(|_| LiveError::NotCao {
            url: self.url.clone(),
        })
    }
}

/// The URL a client reaches a gateway listening on `bind:port` at: a wildcard bind over
/// loopback, port 0 (a free port, unknown afterwards) as the default port.
pub fn reach_url(bind: IpAddr, port: u16) -> String {
    let port = if port == 0 {
        config::DEFAULT_PORT
    } else {
        port
    };
    match bind {
        IpAddr::V4(a) if a.is_unspecified() => format!("http://{}:{port}", Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => format!("http://[{}]:{port}", Ipv6Addr::LOCALHOST),
        IpAddr::V4(a) => format!("http://{a}:{port}"),
        IpAddr::V6(a) => format!("http://[{a}]:{port}"),
    }
}

/// Where this data dir's gateway is, as a client reaches it: the running gateway's own record
/// ([`crate::store::runtime`]: the port it really bound, also without `--save`), else where
/// `cao gateway start` would listen with the saved settings. Files that cannot be read count as
/// absent (`cao gateway start` and `cao gateway status` report their problems).
pub fn find_url(store: &Store) -> String {
    match store.load_runtime() {
        Ok(Some(running)) => running.url,
        _ => saved_url(store),
    }
}

/// Where `cao gateway start` listens with the data dir's saved settings, as a client reaches
/// it. A `gateway.json` that cannot be read counts as unsaved.
pub fn saved_url(store: &Store) -> String {
    url_of(&store.load_gateway().unwrap_or_default())
}

/// [`saved_url`] of one saved set; an unreadable bind address counts as the default (loopback).
fn url_of(saved: &SavedGateway) -> String {
    let bind = saved
        .bind_address
        .as_deref()
        .and_then(|b| config::parse_bind(b).ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    reach_url(bind, saved.port.unwrap_or(config::DEFAULT_PORT))
}

/// Check that the gateway at `base_url` is this user's, for `store`'s data dir, within a few
/// seconds. cao serves HTTPS on the same port, so an `https://` loopback URL is checked on its
/// plain side.
pub fn verify(store: &Store, base_url: &str) -> Verdict {
    match LiveGateway::at(&crate::gateway::tls::urls::plain_for(base_url), None) {
        Ok(live) => live.verify(store),
        Err(e) => Verdict::NotOurs(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An HTTP server answering one request with `body` (connections that send nothing, such
    /// as [`identity::verify_on`]'s connection check, are skipped); returns its URL and the
    /// request it got.
    fn answer_once(body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let server = std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    continue;
                }
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body.as_bytes());
                return String::from_utf8_lossy(&buf[..n]).to_string();
            }
            String::new()
        });
        (format!("http://127.0.0.1:{port}"), server)
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::at(dir.path());
        // A gateway was started with this data dir once: it has a secret to check proofs with.
        let _ = identity::Identity::load_or_create(&store, 1);
        (dir, store)
    }

    #[test]
    fn a_closed_port_does_not_answer() {
        let (_d, store) = store();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        drop(listener);
        let found = LiveGateway::find(&store, &format!("http://127.0.0.1:{port}"), None);
        assert!(matches!(found, Ok(None)));
    }

    #[test]
    fn a_cao_look_alike_without_the_proof_is_not_ours_and_gets_no_key() {
        let (_d, store) = store();
        let (url, server) = answer_once(r#"{"status":"ok","service":"cao-gateway","ready":2}"#);
        let found = LiveGateway::find(&store, &url, Some("the-access-key-0123".into()));
        assert!(
            matches!(&found, Err(LiveError::NotOurs { why, .. }) if why.contains("without the proof")),
            "{:?}",
            found.err()
        );
        let request = server.join().unwrap_or_default();
        assert!(request.starts_with("GET /health?nonce="), "{request}");
        assert!(!request.contains("the-access-key-0123"), "{request}");
    }

    #[test]
    fn another_service_on_the_port_is_not_a_gateway() {
        let (_d, store) = store();
        let (url, server) = answer_once("{}");
        assert!(matches!(
            LiveGateway::find(&store, &url, None),
            Err(LiveError::NotOurs { .. })
        ));
        let _ = server.join();
    }

    #[test]
    fn wildcard_binds_are_reached_over_loopback() {
        let saved = |bind: &str, port| SavedGateway {
            bind_address: Some(bind.into()),
            port,
            ..SavedGateway::default()
        };
        assert_eq!(
            url_of(&saved("0.0.0.0", Some(5055))),
            "http://127.0.0.1:5055"
        );
        assert_eq!(url_of(&saved("[::]", None)), "http://[::1]:4319");
        assert_eq!(url_of(&saved("10.0.0.2", Some(0))), "http://10.0.0.2:4319");
        assert_eq!(url_of(&SavedGateway::default()), "http://127.0.0.1:4319");
    }
}
