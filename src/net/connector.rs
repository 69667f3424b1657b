//! The upstream client's connector: DNS, TCP without Nagle, and TLS to the upstream
//! (`--base-url`, `--token-url`) with rustls and the ring provider, trusting the public webpki
//! roots plus, with `--upstream-ca-file PATH`, every CA certificate in that PEM file (a
//! TLS-inspecting corporate proxy, or a test upstream on 127.0.0.1). The same roots serve the
//! HTTP client ([`http_client_trusting`]) and the gateway's WebSocket dial ([`ws_config`]).
//!
//! An explicit option rather than Codex's own `CODEX_CA_CERTIFICATE` / `SSL_CERT_FILE`
//! (codex-rs `codex-client/src/custom_ca.rs`): `cao gateway enable` points
//! `CODEX_CA_CERTIFICATE` at cao's bundle for Codex, so a gateway started from that environment
//! would otherwise trust its own local CA for the upstream.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;

use crate::net::client::HttpClient;

/// Build the upstream client (the public roots only).
pub fn http_client() -> anyhow::Result<HttpClient> {
    http_client_trusting(None)
}

/// Build the upstream client, trusting also the CA certificates in `extra_ca`
/// (`--upstream-ca-file`, [`client_config`]).
pub fn http_client_trusting(extra_ca: Option<&std::path::Path>) -> anyhow::Result<HttpClient> {
    let tls = client_config(extra_ca)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(HttpClient::new(https))
}

/// Why the upstream's TLS settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    #[error("--upstream-ca-file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("TLS set-up failed: {0}")]
    Rustls(String),
}

/// The CA certificates of a PEM file; an unreadable file, or one without any certificate, is an
/// error naming it.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamTlsError> {
    let err = |reason: String| UpstreamTlsError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    crate::pem::ca_certificates(&pem).map_err(err)
}

/// The client settings for the upstream, without ALPN (each client sets its own).
pub fn client_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, UpstreamTlsError> {
    let extra = match extra_ca {
        Some(p) => read_ca_file(p)?,
        None => Vec::new(),
    };
    client_config_with(&extra)
}

/// [`client_config`] with `extra` roots already read.
pub fn client_config_with(
    extra: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, UpstreamTlsError> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for c in extra {
        roots
            .add(c.clone())
            .map_err(|e| UpstreamTlsError::Rustls(format!("CA certificate refused: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamTlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The WebSocket dial's settings: [`client_config`] speaking HTTP/1.1 (the upgrade).
pub fn ws_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, UpstreamTlsError> {
    let mut cfg = client_config(extra_ca)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::abort());
        let missing = dir.path().join("none.pem");
        let e = client_config(Some(&missing)).err().map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.contains("none.pem")),
            "{e:?}"
        );
        let junk = dir.path().join("junk.pem");
        let _ = std::fs::write(&junk, "not a certificate\n");
        let e = client_config(Some(&junk)).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("no PEM certificate")),
            "{e:?}"
        );
        let (material, _) = crate::gateway::tls::certs::ensure(dir.path(), crate::store::now_ms())
            .unwrap_or_else(|_| std::process::abort());
        let certs = read_ca_file(&material.info.ca_path).unwrap_or_default();
        assert_eq!(certs.len(), 1);
        assert!(client_config(Some(&material.info.ca_path)).is_ok());
        assert!(ws_config(None).is_ok_and(|c| c.alpn_protocols == [b"http/1.1".to_vec()]));
    }
}
