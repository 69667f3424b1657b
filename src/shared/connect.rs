//! How a replica reaches Redis: the client for a `redis://` or `rediss://` URL (TLS through the
//! redis crate's rustls, ring, no OpenSSL), a private CA to trust instead of the web PKI roots
//! (`--state-ca-file`), what a failed connect means ("unreachable", "refused the credentials",
//! "certificate not trusted"), always naming the URL with its password hidden, and the
//! connection that dials again when the redis crate's would stay failed ([`Manager`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::error::SharedError;

/// The URL without its password, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<invalid URL>".to_string(),
    }
}

/// The CA certificates (PEM) a `rediss://` connection trusts, instead of the web PKI roots.
#[derive(Clone)]
pub struct StateCa {
    pem: Vec<u8>,
    /// Where they came from, for messages.
    origin: String,
}

impl std::fmt::Debug for StateCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCa")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl StateCa {
    /// Read a PEM file of one or more CA certificates.
    pub fn load(path: &Path) -> Result<Self, SharedError> {
        let origin = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| SharedError::BadCa {
            path: origin.clone(),
            detail: e.to_string(),
        })?;
        Self::from_pem(pem, &origin)
    }

    /// CA certificates in PEM form; `origin` names them in messages.
    pub fn from_pem(pem: Vec<u8>, origin: &str) -> Result<Self, SharedError> {
        let bad = |detail: String| SharedError::BadCa {
            path: origin.to_string(),
            detail,
        };
        crate::pem::ca_certificates(&pem).map_err(bad)?;
        Ok(Self {
            pem,
            origin: origin.to_string(),
        })
    }
}

/// The client for `url` (`shown`: the same, password hidden). With `ca`, a `rediss://`
/// connection trusts those certificates only.
pub(super) fn client(
    url: &str,
    shown: &str,
    ca: Option<&StateCa>,
) -> Result<redis::Client, SharedError> {
    let bad_url = |source| SharedError::BadUrl {
        url: shown.to_string(),
        source,
    };
    match ca {
        None => redis::Client::open(url).map_err(bad_url),
        Some(ca) => {
            let tls = url::Url::parse(url).is_ok_and(|u| u.scheme() == "rediss");
            if !tls {
                return Err(SharedError::CaWithoutTls {
                    url: shown.to_string(),
                    path: ca.origin.clone(),
                });
            }
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.pem.clone()),
            };
            redis::Client::build_with_tls(url, certs).map_err(bad_url)
        }
    }
}

/// How long a re-dial waits after the error that asked for it (no tight loop while Redis keeps
/// refusing).
const REDIAL_PAUSE: Duration = Duration::from_secs(1);

/// The connection of a [`super::redis::SharedState`]: the redis crate's `ConnectionManager`,
/// replaced by a fresh one when it would stay failed. That manager dials again after I/O
/// errors only; when its re-dial itself is refused (the password was changed on the server),
/// every later call returns that error until the process restarts. [`Self::after_error`] dials a new one in the background
/// instead, so the replica catches up once Redis accepts it again.
#[derive(Clone)]
pub(super) struct Manager {
    current: Arc<RwLock<ConnectionManager>>,
    client: redis::Client,
    config: ConnectionManagerConfig,
    redialing: Arc<AtomicBool>,
}

impl Manager {
    /// Dial, then `PING`: a refused password, an untrusted certificate and an unreachable
    /// server are told apart at start ([`failed`]).
    pub(super) async fn open(
        client: redis::Client,
        config: ConnectionManagerConfig,
        shown: &str,
    ) -> Result<Self, SharedError> {
        let mut conn = client
            .get_connection_manager_with_config(config.clone())
            .await
            .map_err(|e| failed(shown, e))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| failed(shown, e))?;
        Ok(Self {
            current: Arc::new(RwLock::new(conn)),
            client,
            config,
            redialing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The connection to send on (cheap: a handle).
    pub(super) fn get(&self) -> ConnectionManager {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// After a call failed with `e`: when the manager may be stuck on it (a refused password),
    /// dial a new one in the
    /// background (one at a time), and use it once it is up.
    pub(super) fn after_error(&self, e: &redis::RedisError) {
        let stuck = e.kind() == redis::ErrorKind::AuthenticationFailed
            || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"));
        if !stuck || self.redialing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.redialing.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        handle.spawn(async move {
            tokio::time::sleep(REDIAL_PAUSE).await;
            let fresh = this
                .client
                .get_connection_manager_with_config(this.config.clone())
                .await;
            if let Ok(conn) = fresh
                && let Ok(mut current) = this.current.write()
            {
                *current = conn;
            }
            this.redialing.store(false, Ordering::Release);
        });
    }
}

/// What a failed connect (or its first call) means.
pub(super) fn failed(shown: &str, source: redis::RedisError) -> SharedError {
    let url = shown.to_string();
    let refused = source.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(source.code(), Some("NOAUTH" | "WRONGPASS"));
    if refused {
        return SharedError::Refused { url, source };
    }
    if untrusted(&source) {
        return SharedError::Untrusted { url, source };
    }
    SharedError::Unreachable { url, source }
}

/// Whether the TLS handshake failed on the server's certificate.
fn untrusted(e: &redis::RedisError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if tls_error(err).is_some_and(|t| matches!(t, rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The rustls error `err` is or wraps (the redis crate keeps an I/O error in an `Arc`).
fn tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    if let Some(t) = err.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    if let Some(inner) = err.downcast_ref::<Shared>() {
        return tls_error(inner.as_ref());
    }
    err.downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let err = StateCa::from_pem(b"not a pem".to_vec(), "/x/ca.pem").unwrap_err();
        assert!(err.to_string().contains("/x/ca.pem"), "{err}");
        let ca = rcgen::generate_simple_self_signed(vec!["r".into()]).unwrap();
        let ok = StateCa::from_pem(ca.cert.pem().into_bytes(), "/x/ca.pem").unwrap();
        assert_eq!(ok.origin, "/x/ca.pem");
    }

    #[test]
    fn a_ca_is_only_for_rediss_urls() {
        let ca = rcgen::generate_simple_self_signed(vec!["r".into()]).unwrap();
        let ca = StateCa::from_pem(ca.cert.pem().into_bytes(), "ca.pem").unwrap();
        let shown = "redis://:***@127.0.0.1:6379/0";
        let err = client("redis://:pw@127.0.0.1:6379/0", shown, Some(&ca)).unwrap_err();
        assert!(matches!(err, SharedError::CaWithoutTls { .. }), "{err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
        assert!(client("rediss://127.0.0.1:6380/0", "r", Some(&ca)).is_ok());
        assert!(client("rediss://127.0.0.1:6380/0", "r", None).is_ok());
    }
}
