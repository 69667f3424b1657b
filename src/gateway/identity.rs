//! The gateway proves it is this user's cao gateway before anyone sends it a token.
//!
//! Anything can listen on 127.0.0.1:4319 first (another local user, a leftover tool) and would
//! then receive the bearer Codex sends. So the gateway keeps a random secret in the data dir
//! (`gateway-secret`, 0600, made on first start) and `GET /health?nonce=N` answers
//! `proof = HMAC-SHA256(secret, "cao-gateway-health-v1\n<port>\n<N>")`. A client (`cao run --gateway`,
//! `cao gateway enable`, the shim through `cao gateway verify`, and every reader of a running
//! gateway through the one client in `running.rs`, before it sends the access key or believes
//! `/status`) sends a fresh nonce and checks the proof with the same secret; the port
//! is in the MAC, so a squatter relaying to a real gateway on another port gets a proof that
//! does not fit. Where the OS tells who owns the listening socket (`crate::os::sockets`), it
//! must be this user.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::os::sockets::ListenerOwner;
use crate::store::{Store, fsutil};

/// The secret's file in the data dir.
pub const SECRET_FILE: &str = "gateway-secret";
/// The query parameter `/health` takes the client's nonce in.
pub const NONCE_PARAM: &str = "nonce";
const CONTEXT: &str = "cao-gateway-health-v1";

/// The gateway's side: its secret and the port it listens on.
pub struct Identity {
    key: hmac::Key,
    port: u16,
}

fn secret_path(store: &Store) -> PathBuf {
    store.root().join(SECRET_FILE)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .ok()
        .context("the system random generator failed")?;
    Ok(hex(&bytes))
}

/// A secret as stored: 64 hex digits.
fn parse_secret(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// The secret in `store`, if one was made and is readable.
pub fn read_secret(store: &Store) -> Option<Vec<u8>> {
    fsutil::read_optional(&secret_path(store))
        .ok()
        .flatten()
        .and_then(|t| parse_secret(&t))
}

impl Identity {
    /// Load the data dir's secret, making one (atomically, 0600, under the state lock) when
    /// there is none. An unreadable one is backed up first, never overwritten blind.
    pub fn load_or_create(store: &Store, port: u16) -> anyhow::Result<Self> {
        let path = secret_path(store);
        let secret = match read_secret(store) {
            Some(s) => s,
            None => {
                let _lock = store.lock_state()?;
                match fsutil::read_optional(&path)? {
                    Some(t) if parse_secret(&t).is_some() => parse_secret(&t).unwrap_or_default(),
                    other => {
                        if let Some(raw) = other {
                            let backup =
                                fsutil::back_up_corrupt(&path, &raw, crate::store::now_ms())?;
                            store.notice(format!(
                                "{} was not a cao gateway secret; it was backed up to {} and replaced",
                                path.display(),
                                backup.display()
                            ));
                        }
                        let fresh = random_hex(32)?;
                        fsutil::write_atomic(
                            &path,
                            format!("{fresh}\n").as_bytes(),
                            fsutil::SECRET_FILE_MODE,
                        )?;
                        parse_secret(&fresh).unwrap_or_default()
                    }
                }
            }
        };
        if fsutil::mode_of(&path).is_some_and(|m| m & 0o077 != 0) {
            fsutil::set_mode(&path, fsutil::SECRET_FILE_MODE)?;
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            port,
        })
    }

    /// The proof for a `/health` query, when it carries a well-formed nonce.
    pub fn answer(&self, query: Option<&str>) -> Option<String> {
        let nonce = query?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == NONCE_PARAM)
            .map(|(_, v)| v)?;
        nonce_ok(nonce).then(|| proof(&self.key, self.port, nonce))
    }
}

fn nonce_ok(n: &str) -> bool {
    (16..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn proof(key: &hmac::Key, port: u16, nonce: &str) -> String {
    let tag = hmac::sign(key, format!("{CONTEXT}\n{port}\n{nonce}").as_bytes());
    hex(tag.as_ref())
}

/// What [`verify`] found at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This user's cao gateway for this data dir.
    Ours,
    /// Nothing accepts connections there.
    NothingListening,
    /// Something answers that is not (or cannot prove to be) this user's cao gateway.
    NotOurs(String),
}

/// Whether the gateway at `base_url` (plain http) is this user's: `prove(nonce)` asks it
/// (`GET /health?nonce=N`, over the caller's own client, so that what the caller asks next goes
/// over the connection the proof came on) and gives back its proof, or `None` when it does not
/// answer like a cao gateway. The proof request carries no access key: nothing is sent to the
/// port before it has proved to be this user's gateway.
pub fn verify_on(
    store: &Store,
    base_url: &str,
    prove: impl FnOnce(&str) -> Option<String>,
) -> Verdict {
    let url = match url::Url::parse(base_url) {
        Ok(u) => u,
        Err(e) => return Verdict::NotOurs(format!("{base_url:?} is not a URL ({e})")),
    };
    if url.scheme() != "http" {
        return Verdict::NotOurs(format!(
            "cao can only verify plain http:// gateways, not {}",
            url.scheme()
        ));
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Verdict::NotOurs(format!("{base_url} names no host"));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Some(addr) = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return Verdict::NothingListening;
    };
    let timeout = Duration::from_secs(2);
    let Ok(stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return Verdict::NothingListening;
    };
    drop(stream);
    if let Some(why) = foreign_listener(addr) {
        return Verdict::NotOurs(why);
    }
    let Some(secret) = read_secret(store) else {
        return Verdict::NotOurs(format!(
            "no cao gateway was ever started with the data directory {} (it has no {SECRET_FILE})",
            store.root().display()
        ));
    };
    let Ok(nonce) = random_hex(32) else {
        return Verdict::NotOurs("the system random generator failed".into());
    };
    let Some(given) = prove(&nonce) else {
        return Verdict::NotOurs("it does not answer GET /health like a cao gateway".into());
    };
    let want = proof(&hmac::Key::new(hmac::HMAC_SHA256, &secret), port, &nonce);
    if bool::from(given.as_bytes().ct_eq(want.as_bytes())) {
        return Verdict::Ours;
    }
    let what = if given.is_empty() {
        "it answers /health without the proof a cao gateway gives"
    } else {
        "its /health proof does not match this data directory's gateway secret (another user's or another data directory's gateway?)"
    };
    Verdict::NotOurs(what.to_string())
}

/// Why the socket listening on `addr` is not this user's, when the OS says it is not.
fn foreign_listener(addr: SocketAddr) -> Option<String> {
    match crate::os::sockets::listener_owner(addr) {
        ListenerOwner::Other { who, me } => Some(format!(
            "the socket listening on port {} belongs to another user ({who}, you are {me})",
            addr.port()
        )),
        ListenerOwner::Me | ListenerOwner::Unknown => None,
    }
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
