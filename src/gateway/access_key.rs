//! The gateway's access key: where it comes from (the environment, a key file, a generated
//! one, or, visible to every local user in `ps`, the command line), how long it must be, and
//! the middleware that checks it, logging failures with the peer's address and answering each
//! address more slowly with every failure in a row.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{Method, header};
use subtle::ConstantTimeEq;

use super::config::Overrides;
use super::perimeter::{Perimeter, peer_of};
use super::proxy::{ACCESS_KEY_HEADER, GatewayError};
use super::state::GatewayState;
use crate::policy::perimeter as rules;

/// The environment variable holding the key (what clap reads for `--access-key` too).
pub const KEY_ENV: &str = super::config::ACCESS_KEY_ENV;
/// `--access-key generate`.
pub const GENERATE: &str = "generate";

/// Where the access key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File,
    Generated,
    /// `--access-key KEY`: readable by every local user through `ps` / `/proc/*/cmdline`.
    CommandLine,
}

/// Where `args`' access key comes from, if any (clap fills `access_key` from the environment
/// too; the two are told apart by comparing with the variable).
pub fn source_of(args: &Overrides) -> Option<KeySource> {
    if args.access_key_file.is_some() {
        return Some(KeySource::File);
    }
    let key = args.access_key.as_deref().filter(|k| !k.is_empty())?;
    if key == GENERATE {
        return Some(KeySource::Generated);
    }
    if std::env::var(KEY_ENV).ok().as_deref() == Some(key) {
        Some(KeySource::Environment)
    } else {
        Some(KeySource::CommandLine)
    }
}

/// The access key for `args`: read from `--access-key-file`, generated for
/// `--access-key generate`, else as given. Checked for length ([`rules::access_key_problem`]).
pub fn resolve(args: &Overrides) -> anyhow::Result<Option<String>> {
    let key = match (&args.access_key_file, args.access_key.as_deref()) {
        (Some(path), _) => Some(read_key_file(path)?),
        (None, Some(GENERATE)) => Some(generate()?),
        (None, Some(k)) if !k.is_empty() => Some(k.to_string()),
        _ => None,
    };
    if let Some(k) = &key
        && let Some(problem) = rules::access_key_problem(k)
    {
        bail!("{problem}");
    }
    Ok(key)
}

/// A fresh random key: 24 bytes from the system's CSPRNG, base64url (32 characters).
pub fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .ok()
        .context("the system random generator failed")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn read_key_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the access key file {}", path.display()))?;
    let key = text.lines().next().unwrap_or("").trim().to_string();
    if key.is_empty() {
        bail!("the access key file {} is empty", path.display());
    }
    Ok(key)
}

/// Whether a key file is readable by other users (worth a warning).
pub fn key_file_too_open(path: &Path) -> bool {
    crate::store::fsutil::mode_of(path).is_some_and(|m| m & 0o077 != 0)
}

/// Failed access-key attempts remembered per address (forgotten wholesale beyond this).
const MAX_TRACKED_PEERS: usize = 4096;
/// A run of failures from one address is forgotten after this long without another.
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);

/// Failed attempts per address: (failures in a row, last one).
#[derive(Default)]
pub struct FailedAttempts(Mutex<HashMap<IpAddr, (u32, Instant)>>);

impl FailedAttempts {
    /// Count one more failure from `ip`; returns the failures in the current run.
    pub fn note(&self, ip: IpAddr) -> u32 {
        let Ok(mut f) = self.0.lock() else {
            return 1;
        };
        let now = Instant::now();
        if f.len() >= MAX_TRACKED_PEERS && !f.contains_key(&ip) {
            f.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_MEMORY);
            if f.len() >= MAX_TRACKED_PEERS {
                f.clear();
            }
        }
        let entry = f.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        entry.0
    }

    /// A good key from `ip` ends its run of failures.
    pub fn clear(&self, ip: IpAddr) {
        if let Ok(mut f) = self.0.lock() {
            f.remove(&ip);
        }
    }
}

/// When an access key is set, every request but `/health` and the page itself must carry it:
/// as `x-cao-key`, or as `Authorization: Bearer <key>` when the client's Authorization is not
/// passed through. Compared in constant time; failures are logged with the peer and answered
/// more slowly each time from the same address.
pub async fn access_key(
    State((state, p)): State<(Arc<GatewayState>, Arc<Perimeter>)>,
    req: Request,
    next: Next,
) -> Response {
    let Some(key) = state.config.access_key.as_deref() else {
        return next.run(req).await;
    };
    // The status page itself holds no data (it sends the key from `/#key=...` to /status).
    if req.uri().path() == "/health" || (req.uri().path() == "/" && req.method() == Method::GET) {
        return next.run(req).await;
    }
    let h = req.headers();
    let given = h.get(ACCESS_KEY_HEADER).map(|v| v.as_bytes()).or_else(|| {
        (!state.config.passthrough_auth)
            .then(|| h.get(header::AUTHORIZATION))
            .flatten()
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    });
    let ok = given.is_some_and(|g| bool::from(g.ct_eq(key.as_bytes())));
    let peer = peer_of(&req);
    if ok {
        if let Some(peer) = peer {
            p.attempts.clear(peer.ip());
        }
        return next.run(req).await;
    }
    let count = peer.map_or(1, |a| p.attempts.note(a.ip()));
    let delay = rules::failure_delay_ms(count);
    tracing::warn!(
        peer = %peer.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
        path = %req.uri().path(),
        failures = count,
        delay_ms = delay,
        "access key missing or wrong"
    );
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    GatewayError::InvalidAccessKey.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_per_address_and_a_good_key_resets_them() {
        let f = FailedAttempts::default();
        let a = IpAddr::from([127, 0, 0, 1]);
        let b = IpAddr::from([127, 0, 0, 2]);
        assert_eq!(f.note(a), 1);
        assert_eq!(f.note(a), 2);
        assert_eq!(f.note(b), 1);
        f.clear(a);
        assert_eq!(f.note(a), 1);
    }

    #[test]
    fn keys_come_from_a_file_or_are_generated_and_must_be_long() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::abort());
        let file = dir.path().join("key");
        let _ = std::fs::write(&file, "0123456789abcdef0123\nignored\n");
        let args = |key: Option<&str>, file: Option<&Path>| Overrides {
            access_key: key.map(str::to_string),
            access_key_file: file.map(Path::to_path_buf),
            ..Default::default()
        };
        let from_file = resolve(&args(None, Some(&file))).ok().flatten();
        assert_eq!(from_file.as_deref(), Some("0123456789abcdef0123"));
        assert_eq!(source_of(&args(None, Some(&file))), Some(KeySource::File));
        let generated = resolve(&args(Some(GENERATE), None)).ok().flatten();
        assert_eq!(generated.as_ref().map(String::len), Some(32));
        assert_ne!(
            generated,
            resolve(&args(Some(GENERATE), None)).ok().flatten()
        );
        assert!(resolve(&args(Some("short"), None)).is_err());
        assert_eq!(resolve(&args(None, None)).ok().flatten(), None);
        assert_eq!(
            source_of(&args(Some("some-long-key-0123456789"), None)),
            Some(KeySource::CommandLine)
        );
    }
}
