//! The gateway's side of HTTPS at start-up and while it runs: load or make the certificates
//! ([`super::tls`]), refresh Codex's bundle ([`super::tls_bundle`]), and renew the leaf in place.
//! Any failure leaves the gateway serving plain HTTP only, with a warning, rather than not at all.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::state::GatewayState;
use super::{tls, tls_bundle};

/// What the listener serves at `addr`: the URLs, the live certificate and rustls' configuration
/// (`None` when HTTPS is off: not `wanted`, see [`tls::allowed`], or the set-up failed).
pub fn setup(
    root: &Path,
    addr: SocketAddr,
    wanted: bool,
) -> (tls::Served, Option<Arc<rustls::ServerConfig>>) {
    let cert = if wanted { prepare_tls(root) } else { None };
    let config = cert.as_ref().and_then(|c| match c.server_config() {
        Ok(conf) => Some(conf),
        Err(e) => {
            tracing::warn!("serving plain HTTP only: {e}");
            None
        }
    });
    let served = tls::Served {
        http_url: format!("http://{addr}"),
        https_url: config.as_ref().and_then(|_| tls::https_url(addr)),
        cert: cert.filter(|_| config.is_some()),
    };
    (served, config)
}

/// Load (or make) the CA and leaf and refresh Codex's bundle. `None`, with a warning, when that
/// fails: the gateway then serves plain HTTP only rather than not at all.
fn prepare_tls(root: &std::path::Path) -> Option<Arc<tls::LiveCert>> {
    let made = tls::ensure(root, crate::store::now_ms()).and_then(|(material, events)| {
        log_tls_events(&events);
        refresh_bundle(&material);
        tls::LiveCert::new(&material)
    });
    match made {
        Ok(cert) => Some(Arc::new(cert)),
        Err(e) => {
            tracing::warn!("serving plain HTTP only (no HTTPS): {e}");
            None
        }
    }
}

fn refresh_bundle(material: &tls::TlsMaterial) {
    match tls_bundle::write(
        &material.info.bundle_path,
        &material.ca_pem,
        &material.info.ca_fingerprint,
        &tls_bundle::process_env,
    ) {
        Ok(notes) => {
            for note in notes {
                if let tls_bundle::BundleNote::Skipped { var, path, reason } = note {
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

fn log_tls_events(events: &[tls::TlsEvent]) {
    for event in events {
        match event {
            tls::TlsEvent::CaCreated => {
                tracing::info!("made a new local CA for the gateway's HTTPS")
            }
            tls::TlsEvent::LeafCreated => tracing::info!("made a new server certificate"),
            tls::TlsEvent::LeafRenewed => tracing::info!("renewed the server certificate"),
            tls::TlsEvent::BackedUp(p) => {
                tracing::warn!("a TLS file could not be used; kept it as {}", p.display())
            }
        }
    }
}

/// A running gateway's hourly check: renew the leaf (or CA) when due and serve the new one.
pub fn renew(state: &GatewayState) {
    let Some(cert) = state.served.get().and_then(|s| s.cert.clone()) else {
        return;
    };
    match tls::ensure(state.store.root(), crate::store::now_ms()) {
        Ok((material, events)) => {
            log_tls_events(&events);
            if events.contains(&tls::TlsEvent::CaCreated) {
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
