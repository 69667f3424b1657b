//! One pool across several gateways (`--state redis://…`): this replica's link to the shared
//! state in [`crate::shared`].
//!
//! Nothing here sits on a request's hot path: what this replica learns (cooldowns, session
//! pins, usage) is queued and written behind by [`crate::gateway::pool::replica_sync::run`]; what the others learnt is read by the
//! same task a few times a second and folded into the local pool, where the router reads it as
//! before. The one read in a request's path is a session pin this replica has never seen
//! (once per session and replica, bounded by [`AFFINITY_LOOKUP_TIMEOUT`]).
//!
//! The same task keeps the replica's heartbeat and the leader lease: usage polling and
//! proactive refresh run only on the leader ([`Replicas::is_leader`]); another replica takes
//! over within [`LEADER_TTL`] when the leader stops renewing.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::shared::connect::StateCa;
use crate::shared::error::SharedError;
use crate::shared::redis::SharedState;
use crate::shared::seal::StateKey;
use crate::wire::Replica;

/// The key prefix of everything cao keeps in Redis.
pub const KEY_PREFIX: &str = "cao:";
/// The leader lease: lapses this long after its holder's last renewal.
pub(crate) const LEADER_TTL: Duration = Duration::from_secs(10);
/// How long a request waits for a session pin from Redis before routing without it.
const AFFINITY_LOOKUP_TIMEOUT: Duration = Duration::from_millis(200);
const LEADER_LEASE: &str = "leader";

/// What this replica learnt and has not yet written to Redis.
pub(super) enum Learnt {
    Cooldown { account: String, until_ms: i64 },
    Pin { session: String, account: String },
}

/// What the last look at the shared state found (for `/status`, without a call).
#[derive(Debug, Clone, Default)]
struct Seen {
    replicas: Vec<Replica>,
    leader: Option<String>,
    refresh: Vec<crate::wire::LeaseView>,
}

/// The replica id in a fencing value (`<replica>/<random>`).
fn holder_of(fence: &str) -> String {
    fence.split('/').next().unwrap_or(fence).to_string()
}

/// Counters for `/metrics` and `/status`.
#[derive(Debug, Default)]
pub struct ReplicaStats {
    pub lease_waits: AtomicU64,
    pub cas_losses: AtomicU64,
    pub redis_errors: AtomicU64,
}

/// This replica's link to the shared state.
pub struct Replicas {
    pub shared: SharedState,
    pub key: StateKey,
    /// This replica's id (host name and pid unless given).
    pub id: String,
    /// Where this replica serves (for the replicas list).
    pub address: String,
    pub stats: ReplicaStats,
    leader: AtomicBool,
    leader_fence: Mutex<Option<String>>,
    reachable: AtomicBool,
    /// The last replicas list and leader read from Redis (for `/status`, without a call).
    seen: Mutex<Seen>,
    learnt: mpsc::UnboundedSender<Learnt>,
    pub(super) inbox: Mutex<Option<mpsc::UnboundedReceiver<Learnt>>>,
    /// A catch-up with the published token sets is running.
    pub(super) syncing: Arc<AtomicBool>,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas")
            .field("id", &self.id)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl Replicas {
    /// Connect (trusting the CA certificates in `ca_file` for `rediss://`, when given), load
    /// the state key and check it against the one the other replicas use.
    pub async fn connect(
        url: &str,
        key_file: &Path,
        ca_file: Option<&Path>,
        address: String,
    ) -> anyhow::Result<Self> {
        let key = StateKey::load(key_file)
            .with_context(|| "the shared state needs the same --state-key-file on every replica")?;
        let ca = ca_file.map(StateCa::load).transpose()?;
        let shared = SharedState::connect_trusting(url, KEY_PREFIX, ca.as_ref()).await?;
        shared.claim_key(key.fingerprint()).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Self {
            shared,
            key,
            id: replica_id(),
            address,
            stats: ReplicaStats::default(),
            leader: AtomicBool::new(false),
            leader_fence: Mutex::new(None),
            reachable: AtomicBool::new(true),
            seen: Mutex::new(Seen::default()),
            learnt: tx,
            inbox: Mutex::new(Some(rx)),
            syncing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Whether this replica runs the pool-wide background work (polling, proactive refresh).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Whether the last Redis call worked. While it does not, no refresh token is spent.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Count a Redis result; flips [`Self::reachable`] and says so once per change.
    pub fn note<T>(&self, r: Result<T, SharedError>) -> Option<T> {
        match r {
            Ok(v) => {
                self.saw_outcome(None);
                Some(v)
            }
            Err(e) => {
                self.saw_outcome(Some(&e));
                None
            }
        }
    }

    fn saw_outcome(&self, error: Option<&SharedError>) {
        match error {
            None => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!(url = %self.shared.url(), "shared state reachable again");
                }
            }
            Some(e) => {
                self.stats.redis_errors.fetch_add(1, Ordering::Relaxed);
                self.shared.after_error(e);
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        url = %self.shared.url(),
                        "shared state unreachable ({e}): serving with tokens that are still valid; no token refresh until it is back"
                    );
                }
            }
        }
    }

    /// Queue a cooldown for the other replicas.
    pub fn learnt_cooldown(&self, account: &str, until_ms: i64) {
        let _ = self.learnt.send(Learnt::Cooldown {
            account: account.to_string(),
            until_ms,
        });
    }

    /// Queue a session pin for the other replicas.
    pub fn learnt_pin(&self, session: &str, account: &str) {
        let _ = self.learnt.send(Learnt::Pin {
            session: session.to_string(),
            account: account.to_string(),
        });
    }

    /// The account another replica pinned `session` to, if any (bounded wait).
    pub async fn pin_of(&self, session: &str) -> Option<String> {
        match tokio::time::timeout(AFFINITY_LOOKUP_TIMEOUT, self.shared.affinity(session)).await {
            Ok(r) => self.note(r).flatten(),
            Err(_) => {
                self.stats.redis_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// What `/status` shows of the shared state (from the last read; no Redis call).
    pub fn view(&self) -> crate::wire::SharedView {
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        crate::wire::SharedView {
            url: self.shared.url().to_string(),
            replica: self.id.clone(),
            reachable: self.reachable(),
            leader: seen.leader,
            refresh_leases: seen.refresh,
            key_fingerprint: self.key.fingerprint().to_string(),
            replicas: seen.replicas,
            lease_waits: self.stats.lease_waits.load(Ordering::Relaxed),
            cas_losses: self.stats.cas_losses.load(Ordering::Relaxed),
            redis_errors: self.stats.redis_errors.load(Ordering::Relaxed),
        }
    }

    /// Read the replicas list, the leader and the refresh leases held right now (of
    /// `accounts`) into [`Self::view`]'s cache.
    pub(super) async fn look_around(&self, accounts: &[String]) {
        let list = self.shared.replicas().await;
        let holder = self.shared.lease_holder(LEADER_LEASE).await;
        let (Some(list), Some(holder)) = (self.note(list), self.note(holder)) else {
            return;
        };
        let mut refresh = Vec::new();
        for account in accounts {
            let r = self
                .shared
                .lease_holder(&crate::shared::custody::lease_name(account))
                .await;
            match self.note(r) {
                Some(Some(fence)) => refresh.push(crate::wire::LeaseView {
                    account: account.clone(),
                    holder: holder_of(&fence),
                }),
                Some(None) => {}
                None => return,
            }
        }
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Seen {
                replicas: list,
                leader: holder.as_deref().map(holder_of),
                refresh,
            };
        }
    }

    /// Give up the leader lease (at shutdown), so another replica takes over at once.
    pub async fn resign(&self) {
        let fence = self.leader_fence.lock().ok().and_then(|mut f| f.take());
        if let Some(f) = fence {
            let r = self.shared.release_lease(LEADER_LEASE, &f).await;
            self.note(r);
        }
        self.leader.store(false, Ordering::Relaxed);
    }

    pub(super) async fn keep_leadership(&self) {
        let fence = self.leader_fence.lock().ok().and_then(|f| f.clone());
        let held = match fence {
            Some(f) => {
                let r = self.shared.renew_lease(LEADER_LEASE, &f, LEADER_TTL).await;
                let kept = self.note(r).unwrap_or(false);
                if !kept && let Ok(mut slot) = self.leader_fence.lock() {
                    *slot = None;
                }
                kept
            }
            None => {
                let r = self
                    .shared
                    .try_lease(LEADER_LEASE, &self.id, LEADER_TTL)
                    .await;
                match self.note(r).flatten() {
                    Some(f) => {
                        if let Ok(mut slot) = self.leader_fence.lock() {
                            *slot = Some(f);
                        }
                        true
                    }
                    None => false,
                }
            }
        };
        if held != self.leader.swap(held, Ordering::Relaxed) {
            if held {
                tracing::info!(replica = %self.id, "this replica now leads (usage polling, proactive refresh)");
            } else {
                tracing::info!(replica = %self.id, "another replica leads now");
            }
        }
    }
}

impl crate::shared::custody::Link for Replicas {
    fn shared(&self) -> &SharedState {
        &self.shared
    }

    fn key(&self) -> &StateKey {
        &self.key
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn reachable(&self) -> bool {
        Replicas::reachable(self)
    }

    fn saw(&self, error: Option<&SharedError>) {
        self.saw_outcome(error);
    }

    fn lease_waited(&self) {
        self.stats.lease_waits.fetch_add(1, Ordering::Relaxed);
    }

    fn cas_lost(&self) {
        self.stats.cas_losses.fetch_add(1, Ordering::Relaxed);
    }
}

/// `hostname-pid`: unique among replicas on one Redis, readable in `/status`.
fn replica_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}-{}", std::process::id())
}
