//! The gateway's side of HTTPS at start-up and while it runs: load or make the certificates
//! ([`super::certs`]), refresh Codex's bundle ([`super::bundle`]), and renew the leaf in place.
//! Any failure leaves the gateway serving plain HTTP only, with a warning, rather than not at all.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::{self, TlsError, TlsInfo, TlsMaterial};
use super::{bundle, urls};

/// What the listener serves at `addr`: the URLs, the live certificate and rustls' configuration
/// (`None` when HTTPS is off: not `wanted`, see [`allowed`], or the set-up failed).
pub(crate) fn setup(
    root: &Path,
    addr: SocketAddr,
    wanted: bool,
) -> (Served, Option<Arc<rustls::ServerConfig>>) {
    let cert = if wanted { prepare_tls(root) } else { None };
    let config = cert.as_ref().and_then(|c| match c.server_config() {
        Ok(conf) => Some(conf),
        Err(e) => {
            tracing::warn!("serving plain HTTP only: {e}");
            None
        }
    });
    let served = Served {
        http_url: format!("http://{addr}"),
        https_url: config.as_ref().and_then(|_| urls::https_url(addr)),
        cert: cert.filter(|_| config.is_some()),
    };
    (served, config)
}

/// Load (or make) the CA and leaf and refresh Codex's bundle. `None`, with a warning, when that
/// fails: the gateway then serves plain HTTP only rather than not at all.
fn prepare_tls(root: &std::path::Path) -> Option<Arc<LiveCert>> {
    let made = certs::ensure(root, crate::store::now_ms()).and_then(|(material, events)| {
        log_tls_events(&events);
        refresh_bundle(&material);
        LiveCert::new(&material)
    });
    match made {
        Ok(cert) => Some(Arc::new(cert)),
        Err(e) => {
            tracing::warn!("serving plain HTTP only (no HTTPS): {e}");
            None
        }
    }
}

fn refresh_bundle(material: &certs::TlsMaterial) {
    match bundle::write(
        &material.info.bundle_path,
        &material.ca_pem,
        &material.info.ca_fingerprint,
        &bundle::process_env,
    ) {
        Ok(notes) => {
            for note in notes {
                if let bundle::BundleNote::Skipped { var, path, reason } = note {
                    tracing::warn!(
                        "Codex CA bundle: left out {var}={}: {reason}",
                        path.display()
                    );
                }
            }
        }
        Err(e) => tracing::warn!("could not write the CA bundle for Codex: {e}"),
    }
}

fn log_tls_events(events: &[certs::TlsEvent]) {
    for event in events {
        match event {
            certs::TlsEvent::CaCreated => {
                tracing::info!("made a new local CA for the gateway's HTTPS")
            }
            certs::TlsEvent::LeafCreated => tracing::info!("made a new server certificate"),
            certs::TlsEvent::LeafRenewed => tracing::info!("renewed the server certificate"),
            certs::TlsEvent::BackedUp(p) => {
                tracing::warn!("a TLS file could not be used; kept it as {}", p.display())
            }
        }
    }
}

/// A running gateway's hourly check: renew the leaf (or CA) under the data dir `root` when due,
/// and serve the new one (nothing to do when `served` has no certificate).
pub(crate) fn renew(root: &Path, served: Option<&Served>) {
    let Some(cert) = served.and_then(|s| s.cert.clone()) else {
        return;
    };
    match certs::ensure(root, crate::store::now_ms()) {
        Ok((material, events)) => {
            log_tls_events(&events);
            if events.contains(&certs::TlsEvent::CaCreated) {
                refresh_bundle(&material);
            }
            if cert.info().as_ref() != Some(&material.info)
                && let Err(e) = cert.replace(&material)
            {
                tracing::warn!("could not serve the renewed certificate: {e}");
            }
        }
        Err(e) => tracing::warn!("could not check the server certificate: {e}"),
    }
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
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(certs::provider()))
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
pub(crate) fn allowed(config: &crate::gateway::config::options::GatewayConfig) -> bool {
    config.bind.is_loopback() || config.access_key.is_some()
}
