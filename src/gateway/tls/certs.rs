//! The gateway's HTTPS on loopback: a private CA and the server certificate it signs (the
//! leaf), kept in `<data dir>/tls/`.
//!
//! Why: since 0.156 the Codex TUI checks the workspace routing that `accounts/check` returns,
//! and for personal accounts (`NO_CONSTRAINT`) it requires `chatgpt_base_url` to be `https://`
//! ("workspace backend must use an HTTPS origin without credentials"). Codex trusts extra roots
//! from the PEM file named by `CODEX_CA_CERTIFICATE` (codex-rs `codex-client/src/custom_ca.rs`),
//! and rustls there refuses a self-signed leaf, so cao makes a CA of its own and a leaf signed by
//! it; [`crate::gateway::tls::bundle`] writes the file Codex is pointed at.
//!
//! The CA is name-constrained to `127.0.0.1`, `::1` and `localhost`: a stolen CA key could not
//! be used to impersonate chatgpt.com to a Codex that trusts it. Nothing here touches the system
//! trust store.
//!
//! Files (dir 0700, keys 0600): `ca.pem`, `ca-key.pem`, `gateway.pem`, `gateway-key.pem`. A
//! file that does not parse, a key that does not match its certificate, or a leaf that the CA
//! did not sign is copied to `<file>.corrupt-<ms>` and made again. When each is renewed is
//! [`crate::policy::cert`]'s decision; making them is [`crate::gateway::tls::make`]'s job, serving them
//! [`crate::gateway::tls::serving`]'s.

use std::path::{Path, PathBuf};

use rcgen::KeyPair;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;

use crate::gateway::tls::make::{self, Pair};
pub use crate::gateway::tls::make::{LEAF_NAMES, TlsError};
use crate::policy::cert::{self, CertAction};
use crate::store::{FileLock, fsutil};

/// The directory under the data dir.
pub(crate) const TLS_DIR: &str = "tls";
const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const LEAF_CERT_FILE: &str = "gateway.pem";
const LEAF_KEY_FILE: &str = "gateway-key.pem";
/// The PEM bundle Codex gets as `CODEX_CA_CERTIFICATE`.
pub(crate) const BUNDLE_FILE: &str = "codex-ca-bundle.pem";
const LOCK_FILE: &str = ".tls.lock";
/// Certificates are public: readable, like any certificate file (the dir stays 0700).
const CERT_FILE_MODE: u32 = 0o644;

/// Where everything lives.
#[derive(Debug, Clone)]
pub(crate) struct TlsPaths {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub leaf_cert: PathBuf,
    pub leaf_key: PathBuf,
    pub bundle: PathBuf,
}

impl TlsPaths {
    /// The paths under the data dir `root`.
    pub fn new(root: &Path) -> Self {
        let dir = root.join(TLS_DIR);
        Self {
            ca_cert: dir.join(CA_CERT_FILE),
            ca_key: dir.join(CA_KEY_FILE),
            leaf_cert: dir.join(LEAF_CERT_FILE),
            leaf_key: dir.join(LEAF_KEY_FILE),
            bundle: dir.join(BUNDLE_FILE),
            dir,
        }
    }
}

/// What [`ensure`] did (logged by the gateway, checked by tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvent {
    CaCreated,
    LeafCreated,
    /// The leaf was close to expiry (or the CA changed) and was made again.
    LeafRenewed,
    /// A file that could not be used was copied here before it was replaced.
    BackedUp(PathBuf),
}

/// What clients and `status` need to know about the certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsInfo {
    /// SHA-256 of the CA certificate, `AB:CD:...` (as `openssl x509 -fingerprint -sha256`).
    pub ca_fingerprint: String,
    pub ca_not_after_ms: i64,
    pub leaf_not_after_ms: i64,
    pub ca_path: PathBuf,
    pub bundle_path: PathBuf,
}

/// The certificates, ready to serve.
pub struct TlsMaterial {
    pub ca_pem: String,
    pub leaf_der: CertificateDer<'static>,
    leaf_key_der: PrivatePkcs8KeyDer<'static>,
    pub info: TlsInfo,
}

impl TlsMaterial {
    /// The leaf and its key, for rustls.
    pub fn certified_key(&self) -> Result<CertifiedKey, TlsError> {
        let key = PrivateKeyDer::Pkcs8(self.leaf_key_der.clone_key());
        CertifiedKey::from_der(vec![self.leaf_der.clone()], key, &provider())
            .map_err(|e| TlsError::Rustls(e.to_string()))
    }
}

pub(super) fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Load the CA and leaf from `<root>/tls/`, making, renewing or replacing what needs it, under a
/// cross-process lock (two cao processes starting at once make one CA, not two).
pub fn ensure(root: &Path, now_ms: i64) -> Result<(TlsMaterial, Vec<TlsEvent>), TlsError> {
    let paths = TlsPaths::new(root);
    fsutil::ensure_private_dir(&paths.dir)?;
    let _lock = FileLock::acquire(&paths.dir.join(LOCK_FILE))?;
    let mut events = Vec::new();

    let ca = match load_pair(&paths.ca_cert, &paths.ca_key, None)? {
        Loaded::Good(p)
            if cert::renewal(
                p.not_before_ms,
                p.not_after_ms,
                cert::CA_RENEW_BEFORE_DAYS,
                now_ms,
            ) == CertAction::Keep =>
        {
            *p
        }
        found => {
            back_up_if_bad(&found, [&paths.ca_cert, &paths.ca_key], now_ms, &mut events)?;
            let p = make::new_ca(now_ms)?;
            write_pair(&p, &paths.ca_cert, &paths.ca_key)?;
            events.push(TlsEvent::CaCreated);
            p
        }
    };
    let ca_created = events.contains(&TlsEvent::CaCreated);
    // A new CA: the old leaf is simply replaced (not corrupt, just signed by the old CA).
    let found = if ca_created {
        Loaded::Missing
    } else {
        load_pair(&paths.leaf_cert, &paths.leaf_key, Some(&ca.cert_der))?
    };
    let leaf = match found {
        Loaded::Good(p)
            if !ca_created
                && cert::renewal(
                    p.not_before_ms,
                    p.not_after_ms,
                    cert::LEAF_RENEW_BEFORE_DAYS,
                    now_ms,
                ) == CertAction::Keep =>
        {
            *p
        }
        found => {
            back_up_if_bad(
                &found,
                [&paths.leaf_cert, &paths.leaf_key],
                now_ms,
                &mut events,
            )?;
            let p = make::new_leaf(&ca, now_ms)?;
            write_pair(&p, &paths.leaf_cert, &paths.leaf_key)?;
            events.push(match found {
                Loaded::Good(_) => TlsEvent::LeafRenewed,
                _ => TlsEvent::LeafCreated,
            });
            p
        }
    };
    let info = TlsInfo {
        ca_fingerprint: make::fingerprint(&ca.cert_der),
        ca_not_after_ms: ca.not_after_ms,
        leaf_not_after_ms: leaf.not_after_ms,
        ca_path: paths.ca_cert.clone(),
        bundle_path: paths.bundle.clone(),
    };
    let material = TlsMaterial {
        ca_pem: ca.cert_pem,
        leaf_der: leaf.cert_der,
        leaf_key_der: PrivatePkcs8KeyDer::from(leaf.key.serialize_der()),
        info,
    };
    Ok((material, events))
}

/// When the leaf on disk ends (ms since the epoch), if there is one that parses; for doctor,
/// which only reads (the next gateway start replaces what is missing or damaged).
pub(crate) fn leaf_not_after_ms(paths: &TlsPaths) -> Option<i64> {
    let pem = fsutil::read_optional(&paths.leaf_cert).ok()??;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, x509) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(x509.validity().not_after.timestamp().saturating_mul(1000))
}

/// What was found on disk.
enum Loaded {
    /// Neither file exists.
    Missing,
    Good(Box<Pair>),
    /// Something is there but cannot be used.
    Bad,
}

fn back_up_if_bad(
    found: &Loaded,
    files: [&PathBuf; 2],
    now_ms: i64,
    events: &mut Vec<TlsEvent>,
) -> Result<(), TlsError> {
    if !matches!(found, Loaded::Bad) {
        return Ok(());
    }
    for path in files {
        if let Some(raw) = fsutil::read_optional(path)? {
            let backup = fsutil::back_up_corrupt(path, &raw, now_ms)?;
            events.push(TlsEvent::BackedUp(backup));
        }
    }
    Ok(())
}

/// Read a certificate and its key. With `issuer` (the CA's DER) the certificate must be a leaf
/// signed by it; without, a CA.
fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    issuer: Option<&CertificateDer<'_>>,
) -> Result<Loaded, TlsError> {
    let cert_text = fsutil::read_optional(cert_path)?;
    let key_text = fsutil::read_optional(key_path)?;
    let (cert_pem, key_pem) = match (cert_text, key_text) {
        (None, None) => return Ok(Loaded::Missing),
        (Some(c), Some(k)) => (c, k),
        _ => return Ok(Loaded::Bad),
    };
    Ok(parse_pair(cert_pem, &key_pem, issuer).map_or(Loaded::Bad, |p| Loaded::Good(Box::new(p))))
}

fn parse_pair(
    cert_pem: String,
    key_pem: &str,
    issuer: Option<&CertificateDer<'_>>,
) -> Option<Pair> {
    let key = KeyPair::from_pem(key_pem).ok()?;
    let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).ok()?;
    let (_, x509) = x509_parser::parse_x509_certificate(&cert_der).ok()?;
    if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return None;
    }
    match issuer {
        None if !x509.is_ca() => return None,
        None => {}
        Some(ca_der) => {
            let (_, ca) = x509_parser::parse_x509_certificate(ca_der).ok()?;
            if x509.is_ca() || x509.verify_signature(Some(ca.public_key())).is_err() {
                return None;
            }
        }
    }
    let not_before_ms = x509.validity().not_before.timestamp().saturating_mul(1000);
    let not_after_ms = x509.validity().not_after.timestamp().saturating_mul(1000);
    drop(x509);
    Some(Pair {
        cert_pem,
        cert_der,
        key,
        not_before_ms,
        not_after_ms,
    })
}

/// Key first: a crash between the writes leaves a key that does not match the old
/// certificate, which the next start finds and replaces.
fn write_pair(pair: &Pair, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    fsutil::write_atomic(
        key_path,
        pair.key.serialize_pem().as_bytes(),
        fsutil::SECRET_FILE_MODE,
    )?;
    fsutil::write_atomic(cert_path, pair.cert_pem.as_bytes(), CERT_FILE_MODE)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use std::sync::Arc;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn the_leaf_verifies_against_the_ca_for_every_loopback_name() {
        let dir = tempfile::tempdir().unwrap();
        let (m, events) = ensure(dir.path(), NOW).unwrap();
        assert_eq!(events, [TlsEvent::CaCreated, TlsEvent::LeafCreated]);
        let ca = CertificateDer::from_pem_slice(m.ca_pem.as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider()),
        )
        .build()
        .unwrap();
        let at = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            (NOW / 1000) as u64,
        ));
        for name in LEAF_NAMES {
            let server = rustls_pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&m.leaf_der, &[], &server, &[], at)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // The CA's name constraints: it cannot vouch for anything else.
        let other = rustls_pki_types::ServerName::try_from("chatgpt.com").unwrap();
        assert!(
            verifier
                .verify_server_cert(&m.leaf_der, &[], &other, &[], at)
                .is_err()
        );
        assert_eq!(m.info.ca_fingerprint.len(), 32 * 3 - 1);
        assert!(m.certified_key().is_ok());
    }

    #[test]
    fn files_are_private_reused_renewed_and_a_corrupt_key_is_backed_up() {
        let dir = tempfile::tempdir().unwrap();
        let paths = TlsPaths::new(dir.path());
        let (first, _) = ensure(dir.path(), NOW).unwrap();
        assert_eq!(fsutil::mode_of(&paths.dir), Some(0o700));
        assert_eq!(fsutil::mode_of(&paths.ca_key), Some(0o600));
        assert_eq!(fsutil::mode_of(&paths.leaf_key), Some(0o600));
        // Reused: nothing made again.
        let (again, events) = ensure(dir.path(), NOW + cert::DAY_MS).unwrap();
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(again.leaf_der, first.leaf_der);
        // 121 days on, the leaf has under 60 left: renewed, same CA.
        let later = NOW + 121 * cert::DAY_MS;
        let (renewed, events) = ensure(dir.path(), later).unwrap();
        assert_eq!(events, [TlsEvent::LeafRenewed]);
        assert_ne!(renewed.leaf_der, first.leaf_der);
        assert_eq!(renewed.info.ca_fingerprint, first.info.ca_fingerprint);
        assert!(renewed.info.leaf_not_after_ms > first.info.leaf_not_after_ms);
        // A damaged CA key: both CA files backed up, a new CA and leaf made.
        std::fs::write(&paths.ca_key, "garbage").unwrap();
        let (fresh, events) = ensure(dir.path(), later).unwrap();
        assert_ne!(fresh.info.ca_fingerprint, first.info.ca_fingerprint);
        let backups: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                TlsEvent::BackedUp(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(backups.len(), 2, "{events:?}");
        let key_backup = backups
            .iter()
            .find(|p| p.to_string_lossy().contains("ca-key.pem.corrupt-"))
            .unwrap();
        assert_eq!(std::fs::read_to_string(key_backup).unwrap(), "garbage");
        assert_eq!(fsutil::mode_of(key_backup), Some(0o600));
        assert!(events.contains(&TlsEvent::CaCreated));
        assert!(events.contains(&TlsEvent::LeafCreated));
    }

    #[test]
    fn a_leaf_signed_by_another_ca_is_replaced() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        ensure(one.path(), NOW).unwrap();
        ensure(two.path(), NOW).unwrap();
        let (a, b) = (TlsPaths::new(one.path()), TlsPaths::new(two.path()));
        std::fs::copy(&b.leaf_cert, &a.leaf_cert).unwrap();
        std::fs::copy(&b.leaf_key, &a.leaf_key).unwrap();
        let (_, events) = ensure(one.path(), NOW).unwrap();
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[2], TlsEvent::LeafCreated);
    }
}
