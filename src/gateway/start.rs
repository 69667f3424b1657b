//! Start-up and shut-down: [`spawn`] binds the listener, loads the accounts and starts the
//! server and the background tasks (a status flusher writing batched account_status.json
//! changes about once a second, a reloader picking up accounts added, removed or re-logged by
//! mtime, the hourly certificate check, the usage poller, the replica's task).
//! [`GatewayHandle::shutdown`] stops accepting, lets in-flight streams finish for a bounded
//! time, and flushes state.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::gateway::config::options::GatewayConfig;
use crate::gateway::front::door;
use crate::gateway::identity;
use crate::gateway::pool::state::GatewayState;
use crate::gateway::pool::{credentials, replica_sync, replicas};
use crate::gateway::tls::serving;
use crate::gateway::usage::poll;
use crate::net::connector::http_client_trusting;
use crate::net::server as serve;
use crate::store::Store;

/// How long in-flight requests may run after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often batched status changes are written and files checked for changes.
const BACKGROUND_TICK: Duration = Duration::from_millis(1000);
/// How often a running gateway checks whether its server certificate needs renewing.
const CERT_CHECK_EVERY: Duration = Duration::from_secs(60 * 60);

/// A running gateway.
pub struct GatewayHandle {
    addr: SocketAddr,
    state: Arc<GatewayState>,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    background: tokio::task::JoinHandle<()>,
    /// The shared-state task (`--state`) and its own stop, given after the requests drained.
    replicas: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
    poller: Option<tokio::task::JoinHandle<()>>,
}

/// Start the gateway on `config.bind:config.port` (port 0 picks a free one).
pub async fn spawn(store: Arc<Store>, mut config: GatewayConfig) -> anyhow::Result<GatewayHandle> {
    config.validate()?;
    crate::os::limits::raise_fd_limit();
    let listener = tokio::net::TcpListener::bind((config.bind, config.port))
        .await
        .with_context(|| {
            format!(
                "could not listen on {}:{} (is another gateway running? pick another --port)",
                config.bind, config.port
            )
        })?;
    let addr = listener.local_addr()?;
    // The real port (`--port 0` picks one): the Host allow-list is about it.
    config.port = addr.port();
    let client = http_client_trusting(config.upstream_ca_file.as_deref())?;
    let st = store.clone();
    let tls_wanted = serving::allowed(&config);
    // With --state, token custody runs through the shared state from the first load on.
    let link = match config.state_url.clone() {
        Some(url) => Some(connect_replicas(&config, &url, addr).await?),
        None => None,
    };
    let custody = link.as_ref().map(|l| {
        Arc::new(crate::shared::custody::RedisCustody::new(
            store.clone(),
            l.clone(),
        )) as Arc<dyn crate::store::custody::CustodyStore>
    });
    let state =
        tokio::task::spawn_blocking(move || GatewayState::load_with(st, config, client, custody))
            .await
            .context("loading accounts")??;
    let state = Arc::new(state);
    let replicas = link.map(|l| start_replicas(&state, l));
    let st = store.clone();
    let port = addr.port();
    let identity =
        tokio::task::spawn_blocking(move || identity::Identity::load_or_create(&st, port))
            .await
            .context("loading the gateway secret")??;
    let root = store.root().to_path_buf();
    let (served, tls_config) =
        tokio::task::spawn_blocking(move || serving::setup(&root, addr, tls_wanted))
            .await
            .context("preparing the gateway's certificate")?;
    let _ = state.served.set(served);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let app = door::front(state.clone(), Arc::new(identity));
    let header_timeout = state.config.perimeter.header_timeout;
    let server = tokio::spawn(serve::run(
        listener,
        app,
        header_timeout,
        tls_config,
        stop.subscribe(),
    ));
    let bg_state = state.clone();
    let background = tokio::spawn(async move {
        // The first round one tick after start (the load just read everything).
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + BACKGROUND_TICK,
            BACKGROUND_TICK,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cert_checked = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
            credentials::proactive(&bg_state);
            let s = bg_state.clone();
            let check_cert = cert_checked.elapsed() >= CERT_CHECK_EVERY;
            if check_cert {
                cert_checked = std::time::Instant::now();
            }
            let _ = tokio::task::spawn_blocking(move || {
                s.flush_statuses();
                s.reload_if_changed();
                if check_cert {
                    serving::renew(s.store.root(), s.served.get());
                }
            })
            .await;
        }
    });
    let poll_every = state.config.usage_poll_seconds;
    let poller = (poll_every > 0).then(|| {
        poll::spawn(
            state.clone(),
            Duration::from_secs(poll_every),
            stop.subscribe(),
        )
    });
    Ok(GatewayHandle {
        addr,
        state,
        stop,
        server,
        background,
        replicas,
        poller,
    })
}

/// Connect to the shared state. A wrong state key or an unreachable Redis at start-up is an
/// error: the replica does not start.
async fn connect_replicas(
    config: &GatewayConfig,
    url: &str,
    addr: SocketAddr,
) -> anyhow::Result<Arc<replicas::Replicas>> {
    let key_file = config
        .state_key_file
        .clone()
        .context("--state needs --state-key-file")?;
    let ca_file = config.state_ca_file.as_deref();
    let link =
        Arc::new(replicas::Replicas::connect(url, &key_file, ca_file, addr.to_string()).await?);
    tracing::info!(replica = %link.id, state = %link.shared.url(), key = %link.key.fingerprint(), "joined the shared pool");
    Ok(link)
}

/// Start this replica's shared-state task.
fn start_replicas(
    state: &Arc<GatewayState>,
    link: Arc<replicas::Replicas>,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let _ = state.replicas.set(link.clone());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(replica_sync::run(state.clone(), link, rx));
    (tx, task)
}

impl GatewayHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:PORT` (the same port) when the gateway serves HTTPS.
    pub fn tls_url(&self) -> Option<String> {
        self.state.served.get().and_then(|s| s.https_url.clone())
    }

    /// Where Codex's CA bundle is, when the gateway serves HTTPS.
    pub fn ca_bundle(&self) -> Option<std::path::PathBuf> {
        let served = self.state.served.get()?;
        served.cert.as_ref()?.info().map(|i| i.bundle_path)
    }

    pub fn state(&self) -> &Arc<GatewayState> {
        &self.state
    }

    /// Stop accepting, give in-flight requests up to [`DRAIN_TIMEOUT`], then flush state.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let abort = self.server.abort_handle();
        match tokio::time::timeout(DRAIN_TIMEOUT, self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("gateway server ended with an error: {e}"),
            Ok(Err(e)) => tracing::warn!("gateway server task failed: {e}"),
            Err(_) => {
                tracing::warn!(
                    "in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing them"
                );
                abort.abort();
            }
        }
        let _ = self.background.await;
        if let Some((stop, task)) = self.replicas {
            let _ = stop.send(true);
            let _ = task.await;
        }
        // Every refresh in flight finishes and is saved before we go: its refresh token may be
        // spent already, and the answer is the only copy of the login.
        if self.state.tokens.in_flight() > 0 {
            tracing::warn!("waiting for a token refresh to finish");
            self.state.tokens.wait_idle().await;
        }
        if let Some(p) = self.poller {
            let _ = p.await;
        }
        // Tokens first: a rescue must not wait on (or be skipped by) the status flush.
        let finished = self.state.tokens.finish().await;
        let state = self.state.clone();
        let flushed = tokio::task::spawn_blocking(move || state.flush_statuses()).await;
        finished?;
        flushed.context("flushing gateway state")
    }
}
