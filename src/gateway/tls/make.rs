//! Making the gateway's certificates with rcgen: the private CA (name-constrained to loopback)
//! and the server certificate (the leaf) it signs. [`crate::gateway::tls::certs`] decides when, and keeps them.

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SerialNumber,
};
use rustls_pki_types::CertificateDer;

use crate::policy::cert;
use crate::store::StoreError;

/// The names the leaf is valid for: every way a local client spells loopback.
pub const LEAF_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

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

/// A certificate and key read from disk and found consistent.
pub(super) struct Pair {
    pub(super) cert_pem: String,
    pub(super) cert_der: CertificateDer<'static>,
    pub(super) key: KeyPair,
    pub(super) not_before_ms: i64,
    pub(super) not_after_ms: i64,
}

fn generate_error(what: &'static str) -> impl FnOnce(rcgen::Error) -> TlsError {
    move |e| TlsError::Generate {
        what,
        detail: e.to_string(),
    }
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

pub(super) fn new_ca(now_ms: i64) -> Result<Pair, TlsError> {
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

pub(super) fn new_leaf(ca: &Pair, now_ms: i64) -> Result<Pair, TlsError> {
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
