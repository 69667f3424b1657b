//! The gateway's HTTPS on loopback: a private CA and the server certificate it signs (the
//! leaf), kept in `<data dir>/tls/`.
//!
//! Why: since 0.156 the Codex TUI checks the workspace routing that `accounts/check` returns,
//! and for personal accounts (`NO_CONSTRAINT`) it requires `chatgpt_base_url` to be `https://`
//! ("workspace backend must use an HTTPS origin without credentials"). Codex trusts extra roots
//! from the PEM file named by `CODEX_CA_CERTIFICATE` (codex-rs `codex-client/src/custom_ca.rs`),
//! and rustls there refuses a self-signed leaf, so cao makes a CA of its own and a leaf signed by
//! it; [`super::tls_bundle`] writes the file Codex is pointed at.
//!
//! The CA is name-constrained to `127.0.0.1`, `::1` and `localhost`: a stolen CA key could not
//! be used to impersonate chatgpt.com to a Codex that trusts it. Nothing here touches the system
//! trust store.
//!
//! Files (dir 0700, keys 0600): `ca.pem`, `ca-key.pem`, `gateway.pem`, `gateway-key.pem`. A
//! file that does not parse, a key that does not match its certificate, or a leaf that the CA
//! did not sign is copied to `<file>.corrupt-<ms>` and made again. When each is renewed is
//! [`crate::policy::cert`]'s decision.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SerialNumber,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;

use crate::policy::cert::{self, CertAction};
use crate::store::{FileLock, StoreError, fsutil};

/// The directory under the data dir.
pub const TLS_DIR: &str = "tls";
const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const LEAF_CERT_FILE: &str = "gateway.pem";
const LEAF_KEY_FILE: &str = "gateway-key.pem";
/// The PEM bundle Codex gets as `CODEX_CA_CERTIFICATE`.
pub const BUNDLE_FILE: &str = "codex-ca-bundle.pem";
const LOCK_FILE: &str = ".tls.lock";
/// Certificates are public: readable, like any certificate file (the dir stays 0700).
const CERT_FILE_MODE: u32 = 0o644;

/// The names the leaf is valid for: every way a local client spells loopback.
pub const LEAF_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// Where everything lives.
#[derive(Debug, Clone)]
pub struct TlsPaths {
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

/// Errors making or loading the certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not make the gateway's {what}: {detail}")]
    Generate { what: &'static str, detail: String },
    #[error("could not set up TLS for the gateway: {0}")]
    Rustls(String),
}

fn generate_error(what: &'static str) -> impl FnOnce(rcgen::Error) -> TlsError {
    move |e| TlsError::Generate {
        what,
        detail: e.to_string(),
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

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A certificate and key read from disk and found consistent.
struct Pair {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
    not_before_ms: i64,
    not_after_ms: i64,
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
            let p = new_ca(now_ms)?;
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
            let p = new_leaf(&ca, now_ms)?;
            write_pair(&p, &paths.leaf_cert, &paths.leaf_key)?;
            events.push(match found {
                Loaded::Good(_) => TlsEvent::LeafRenewed,
                _ => TlsEvent::LeafCreated,
            });
            p
        }
    };
    let info = TlsInfo {
        ca_fingerprint: fingerprint(&ca.cert_der),
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

fn base_params(lifetime_days: i64, now_ms: i64, common_name: &str) -> CertificateParams {
    let (from, until) = cert::validity(lifetime_days, now_ms);
    let mut params = CertificateParams::default();
    params.not_before = offset_time(from);
    params.not_after = offset_time(until);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "cao");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params
}

fn new_ca(now_ms: i64) -> Result<Pair, TlsError> {
    let key = KeyPair::generate().map_err(generate_error("CA key"))?;
    let mut params = base_params(
        cert::CA_LIFETIME_DAYS,
        now_ms,
        "cao local gateway CA (loopback only)",
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 1], 32)),
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                std::net::Ipv6Addr::LOCALHOST.into(),
                128,
            )),
            GeneralSubtree::DnsName("localhost".to_string()),
        ],
        excluded_subtrees: Vec::new(),
    });
    let certificate = params.self_signed(&key).map_err(generate_error("CA"))?;
    Ok(made(&certificate, key, &params))
}

/// A certificate just made, with its key and validity.
fn made(certificate: &rcgen::Certificate, key: KeyPair, params: &CertificateParams) -> Pair {
    Pair {
        cert_pem: certificate.pem(),
        cert_der: certificate.der().clone(),
        key,
        not_before_ms: params.not_before.unix_timestamp().saturating_mul(1000),
        not_after_ms: params.not_after.unix_timestamp().saturating_mul(1000),
    }
}

fn new_leaf(ca: &Pair, now_ms: i64) -> Result<Pair, TlsError> {
    let issuer =
        Issuer::from_ca_cert_der(&ca.cert_der, &ca.key).map_err(generate_error("CA issuer"))?;
    let key = KeyPair::generate().map_err(generate_error("server key"))?;
    let mut params = base_params(cert::LEAF_LIFETIME_DAYS, now_ms, "cao gateway (loopback)");
    let names: Vec<String> = LEAF_NAMES.iter().map(|n| n.to_string()).collect();
    params.subject_alt_names = CertificateParams::new(names)
        .map_err(generate_error("server certificate names"))?
        .subject_alt_names;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let certificate = params
        .signed_by(&key, &issuer)
        .map_err(generate_error("server certificate"))?;
    Ok(made(&certificate, key, &params))
}

fn offset_time(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// 16 random bytes, top bit clear (a positive serial number).
fn random_serial() -> [u8; 16] {
    let mut serial = [0u8; 16];
    for b in serial.iter_mut() {
        *b = fastrand::u8(..);
    }
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    serial
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The leaf the HTTPS side serves, swapped in place when a running gateway renews it.
#[derive(Debug)]
pub struct LiveCert {
    key: RwLock<Arc<CertifiedKey>>,
    info: RwLock<TlsInfo>,
}

impl LiveCert {
    pub fn new(material: &TlsMaterial) -> Result<Self, TlsError> {
        Ok(Self {
            key: RwLock::new(Arc::new(material.certified_key()?)),
            info: RwLock::new(material.info.clone()),
        })
    }

    /// What `/status` shows.
    pub fn info(&self) -> Option<TlsInfo> {
        self.info.read().ok().map(|i| i.clone())
    }

    /// Serve `material` from now on (new handshakes; open connections keep theirs).
    pub fn replace(&self, material: &TlsMaterial) -> Result<(), TlsError> {
        let key = Arc::new(material.certified_key()?);
        if let Ok(mut k) = self.key.write() {
            *k = key;
        }
        if let Ok(mut i) = self.info.write() {
            *i = material.info.clone();
        }
        Ok(())
    }

    /// The rustls server configuration serving this certificate. HTTP/1.1 only, as on the
    /// plain side: the WebSocket upgrade Codex tries first needs it.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.key.read().ok().map(|k| k.clone())
    }
}

/// What a running gateway serves: both URLs and, with HTTPS, its certificate.
#[derive(Debug, Clone)]
pub struct Served {
    /// `http://ADDR:PORT`
    pub http_url: String,
    /// `https://127.0.0.1:PORT` (same port) when HTTPS is on.
    pub https_url: Option<String>,
    pub cert: Option<Arc<LiveCert>>,
}

/// True when the gateway may serve HTTPS on `config`'s address: always on loopback; beyond it
/// only under the same rule as plain HTTP (an access key), which `GatewayConfig::validate`
/// already enforces for the socket as a whole.
pub fn allowed(config: &super::GatewayConfig) -> bool {
    config.bind.is_loopback() || config.access_key.is_some()
}

/// `https://` URL for a gateway listening on `addr`, when the leaf covers how clients reach it
/// (loopback, or a wildcard bind reached over loopback).
pub fn https_url(addr: std::net::SocketAddr) -> Option<String> {
    use std::net::IpAddr;
    match addr.ip() {
        IpAddr::V4(a) if a.is_loopback() || a.is_unspecified() => {
            Some(format!("https://127.0.0.1:{}", addr.port()))
        }
        IpAddr::V6(a) if a.is_loopback() || a.is_unspecified() => {
            Some(format!("https://[::1]:{}", addr.port()))
        }
        _ => None,
    }
}

/// True when `url` names this machine by one of the leaf's names ([`LEAF_NAMES`]' kind).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The `https://` twin of a gateway's plain `http://` loopback URL (same port: cao serves both
/// there); `None` for other URLs.
pub fn https_for(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    if u.scheme() != "http" || !is_loopback(&u) {
        return None;
    }
    let port = u.port_or_known_default()?;
    u.set_scheme("https").ok()?;
    u.set_port(Some(port)).ok()?;
    Some(u.as_str().trim_end_matches('/').to_string())
}

/// The plain `http://` twin of a loopback `https://` gateway URL, to ask it `/health` without
/// trusting its certificate (cao serves both on one port). Other URLs come back unchanged.
pub fn plain_for(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_string();
    };
    if !is_loopback(&u) {
        return url.to_string();
    }
    let Some(port) = u.port_or_known_default() else {
        return url.to_string();
    };
    if u.scheme() != "https" || u.set_scheme("http").is_err() || u.set_port(Some(port)).is_err() {
        return url.to_string();
    }
    u.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

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
    fn urls_switch_scheme_on_the_same_port() {
        assert_eq!(
            https_for("http://127.0.0.1:4319").as_deref(),
            Some("https://127.0.0.1:4319")
        );
        assert_eq!(
            https_for("http://[::1]:80").as_deref(),
            Some("https://[::1]:80")
        );
        assert_eq!(https_for("http://192.168.1.2:4319"), None);
        assert_eq!(https_for("https://127.0.0.1:4319"), None);
        assert_eq!(plain_for("https://127.0.0.1:4319"), "http://127.0.0.1:4319");
        assert_eq!(plain_for("https://127.0.0.1"), "http://127.0.0.1:443");
        assert_eq!(plain_for("http://h:1"), "http://h:1");
        assert_eq!(plain_for("https://example.com"), "https://example.com");
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
