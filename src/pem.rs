//! CA certificates from PEM text, for both places cao trusts a private CA: the upstream
//! (`--upstream-ca-file`, [`crate::net::connector`]) and a `rediss://` shared state
//! (`--state-ca-file`, [`crate::shared::connect`]). A leaf.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Every certificate in `pem`; why not, when it is not PEM or holds none.
pub fn ca_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM file of certificates: {e:?}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}
