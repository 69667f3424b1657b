//! The gateway's shared state: the account pool (credentials, cooldowns, login state), session
//! affinity, and the batched status writes.
//!
//! The hot path only reads atomics and clones `Arc`s; files are touched by background tasks
//! ([`GatewayState::reload_if_changed`] and [`GatewayState::flush_statuses`]), never per request.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use crate::gateway::config::options::GatewayConfig;
pub use crate::gateway::pool::account::{Account, Creds, Pool};
use crate::net::client::HttpClient;
use crate::policy::route::{self, Candidate, Decision, RouteInput};
use crate::store::status::{NEEDS_LOGIN_MTIME_KEY, PendingEvents, StatusEvent, USAGE_LIMIT_ERROR};
use crate::store::{AuthState, Store};

/// Counters for the log and the live view.
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub switches: AtomicU64,
}

/// Everything the request handlers share.
pub struct GatewayState {
    pub store: Arc<Store>,
    pub config: GatewayConfig,
    pub client: HttpClient,
    pub started: Instant,
    pub counters: Counters,
    /// Live usage per account and routing memory (issue 6).
    pub usage: crate::gateway::pool::usage_tracker::UsageTracker,
    /// Last routing decision, round-robin position and recent switches.
    pub routing: crate::gateway::pool::route_memory::RouteMemory,
    pub metrics: crate::gateway::metrics::Metrics,
    /// The custodian of every account's tokens: all refreshes go through it.
    pub tokens: Arc<crate::gateway::tokens::broker::TokenBroker>,
    pool: RwLock<Arc<Pool>>,
    affinity: Mutex<crate::gateway::pool::sessions::SessionMap>,
    /// Status events not yet written to account_status.json, per account.
    pending: Mutex<BTreeMap<String, PendingEvents>>,
    registry_mtime: Mutex<Option<SystemTime>>,
    /// The last status write failed (warn once, not every second).
    flush_failing: AtomicBool,
    /// The link to the other replicas (`--state`), set once at start.
    pub replicas: std::sync::OnceLock<Arc<crate::gateway::pool::replicas::Replicas>>,
    /// The addresses this gateway serves and its certificate (set once the listener is bound).
    pub served: std::sync::OnceLock<crate::gateway::tls::serving::Served>,
    /// TLS settings of `wss://` upstream sockets (the HTTP client's roots, HTTP/1.1).
    pub ws_tls: Arc<rustls::ClientConfig>,
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn mtime_ms(t: Option<SystemTime>) -> Option<i64> {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

impl GatewayState {
    /// Load the registry, every account's auth.json and the persisted cooldowns.
    pub fn load(
        store: Arc<Store>,
        config: GatewayConfig,
        client: HttpClient,
    ) -> anyhow::Result<Self> {
        Self::load_with(store, config, client, None)
    }

    /// [`Self::load`] with token custody in `custody` (the shared state of `--state`) instead
    /// of the data dir's own.
    pub fn load_with(
        store: Arc<Store>,
        config: GatewayConfig,
        client: HttpClient,
        custody: Option<Arc<dyn crate::store::custody::CustodyStore>>,
    ) -> anyhow::Result<Self> {
        let usage = crate::gateway::pool::usage_tracker::UsageTracker::from_statuses(
            &store.load_statuses()?,
        );
        let ws_tls = crate::net::connector::ws_config(config.upstream_ca_file.as_deref())?;
        let endpoint = crate::gateway::tokens::broker::Endpoint {
            url: config.token_url.clone(),
            client_id: config.client_id.clone(),
        };
        let tokens = Arc::new(match custody {
            Some(c) => crate::gateway::tokens::broker::TokenBroker::with_custody(
                store.clone(),
                c,
                client.clone(),
                endpoint,
            ),
            None => crate::gateway::tokens::broker::TokenBroker::new(
                store.clone(),
                client.clone(),
                endpoint,
            ),
        });
        let state = Self {
            tokens,
            store,
            config,
            client,
            started: Instant::now(),
            counters: Counters::default(),
            usage,
            routing: crate::gateway::pool::route_memory::RouteMemory::default(),
            metrics: crate::gateway::metrics::Metrics::new(),
            pool: RwLock::new(Arc::new(Pool::default())),
            affinity: Mutex::new(crate::gateway::pool::sessions::SessionMap::default()),
            pending: Mutex::new(BTreeMap::new()),
            registry_mtime: Mutex::new(None),
            flush_failing: AtomicBool::new(false),
            replicas: std::sync::OnceLock::new(),
            served: std::sync::OnceLock::new(),
            ws_tls,
        };
        state.reload_registry()?;
        for s in crate::store::shared_login::shared(&state.store.logins()) {
            tracing::warn!(
                "{} and {} hold the same login{}: whichever refreshes second revokes it for both; log one of them in again on its own (`cao status --doctor` says how)",
                s.a.place.display(),
                s.b.place.display(),
                if s.linked { " (one file, linked)" } else { "" }
            );
        }
        Ok(state)
    }

    /// Whether this gateway runs the pool-wide background work (proactive refresh, usage
    /// polling): always alone; with `--state`, only while it holds the leader lease.
    pub fn leads(&self) -> bool {
        self.replicas.get().is_none_or(|r| r.is_leader())
    }

    pub fn pool(&self) -> Arc<Pool> {
        self.pool.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Re-read registry.json and rebuild the pool, keeping the state of accounts that stay.
    fn reload_registry(&self) -> anyhow::Result<()> {
        let reg_mtime = mtime(&self.store.registry_path());
        let registry = self.store.load_registry()?;
        let statuses = self.store.load_statuses()?;
        let old = self.pool();
        let order =
            crate::policy::order::rotation(&registry.accounts, registry.default_account.as_deref());
        let mut accounts = Vec::with_capacity(order.len());
        for name in order {
            if let Some(existing) = old.accounts.iter().find(|a| a.name == name) {
                accounts.push(existing.clone());
                continue;
            }
            let acct = Arc::new(Account::new(name));
            if let Err(e) = self.tokens.recover(name) {
                tracing::warn!(account = %name, "could not check for an interrupted token save: {e}");
            }
            let auth_mtime = mtime(&self.store.auth_path(name));
            self.load_creds(&acct)?;
            if let Some(st) = statuses.statuses.get(name) {
                if let Some(u) = st.cooldown_until_ms {
                    acct.cooldown_until_ms.store(u, Ordering::Relaxed);
                }
                let about = st.extra.get(NEEDS_LOGIN_MTIME_KEY).and_then(|v| v.as_i64());
                if st.needs_login == Some(true)
                    && (about.is_none() || about == mtime_ms(auth_mtime))
                {
                    acct.needs_login.store(true, Ordering::Relaxed);
                }
            }
            accounts.push(acct);
        }
        for note in self.store.take_notices() {
            tracing::warn!("{note}");
        }
        if let Ok(mut p) = self.pool.write() {
            *p = Arc::new(Pool { accounts });
        }
        if let Ok(mut m) = self.registry_mtime.lock() {
            *m = reg_mtime;
        }
        Ok(())
    }

    /// (Re)load one account's tokens from its auth.json.
    fn load_creds(&self, acct: &Account) -> anyhow::Result<()> {
        let m = mtime(&self.store.auth_path(&acct.name));
        let creds = match self.store.load_auth(&acct.name)? {
            AuthState::Present(f) => f.tokens().and_then(Creds::new).map(Arc::new),
            AuthState::Missing => None,
            AuthState::Unreadable(e) => {
                // Maybe caught mid-write by a tool that does not write atomically: keep the
                // tokens we have and look again on the next tick (mtime is not recorded).
                if acct.creds().is_none() {
                    tracing::warn!(account = %acct.name, "auth.json is unusable ({e}); account skipped until it is fixed");
                    if let Ok(mut am) = acct.auth_mtime.lock() {
                        *am = m;
                    }
                }
                return Ok(());
            }
        };
        acct.set_creds(creds);
        if let Ok(mut am) = acct.auth_mtime.lock() {
            *am = m;
        }
        Ok(())
    }

    /// Pick up accounts added, removed or re-logged since the last call (cheap: a few `stat`s),
    /// and retry auth.json writes that failed. Called about once a second, off the request path.
    pub fn reload_if_changed(&self) {
        let reg_now = mtime(&self.store.registry_path());
        let reg_before = self.registry_mtime.lock().map(|m| *m).unwrap_or(None);
        if reg_now != reg_before
            && let Err(e) = self.reload_registry()
        {
            tracing::warn!("could not reload the registry: {e:#}");
        }
        self.tokens.retry_unsaved();
        for acct in &self.pool().accounts {
            let now = mtime(&self.store.auth_path(&acct.name));
            let before = acct.auth_mtime.lock().map(|m| *m).unwrap_or(None);
            if now == before {
                continue;
            }
            // The whole token set: a new login may first appear in two writes (the access token,
            // then the refresh token), and only the second one makes it a new login.
            let old_tokens = acct.creds().map(|c| c.tokens.clone());
            if let Err(e) = self.load_creds(acct) {
                tracing::warn!(account = %acct.name, "could not reload auth.json: {e:#}");
                continue;
            }
            let new_tokens = acct.creds().map(|c| c.tokens.clone());
            // A file holding a descendant of a rejected refresh token is the same dead login.
            let fresh_login = acct
                .creds()
                .is_some_and(|c| self.tokens.is_new_login(&acct.name, &c.tokens));
            if new_tokens.is_some() && new_tokens != old_tokens && acct.needs_login() && fresh_login
            {
                tracing::info!(account = %acct.name, "new login picked up");
                self.set_needs_login(acct, false);
            }
        }
    }

    /// Decide which account serves the next attempt of a request: builds the input of
    /// [`route::choose`] from the pool, the session's pin and the usage snapshots, and records
    /// the result (round-robin position, the live view). Returns the decision and the account.
    pub fn decide(
        &self,
        session: Option<&str>,
        tried: &[&str],
        now_ms: i64,
    ) -> (Decision, Option<Arc<Account>>) {
        let pool = self.pool();
        let affinity =
            session.and_then(|s| self.affinity.lock().ok().and_then(|mut m| m.get(s, now_ms)));
        let last_assigned = self.routing.last_assigned();
        let decision = self.usage.with_snapshots(|snaps| {
            let cands: Vec<Candidate<'_>> = pool
                .accounts
                .iter()
                .map(|a| Candidate {
                    usage: snaps.get(&a.name),
                    tried: tried.contains(&a.name.as_str()),
                    ..a.candidate()
                })
                .collect();
            route::choose(&RouteInput {
                candidates: &cands,
                affinity: affinity.as_deref(),
                strategy: self.config.strategy,
                switch_at: self.config.switch_at,
                last_assigned: last_assigned.as_deref(),
                now_ms,
            })
        });
        tracing::debug!(decision = %decision.summary(&crate::render::time::moment_from_now), "route");
        let account = decision
            .account
            .as_deref()
            .and_then(|name| pool.accounts.iter().find(|a| a.name == name))
            .cloned();
        (decision, account)
    }

    /// [`Self::decide`], recording the decision: the account, or when none is usable the
    /// soonest reset (ms) among the cooling accounts, if any.
    pub fn choose(
        &self,
        session: Option<&str>,
        tried: &[&str],
        now_ms: i64,
    ) -> Result<Arc<Account>, Option<i64>> {
        let (decision, account) = self.decide(session, tried, now_ms);
        let soonest = decision.soonest_reset.as_ref().map(|s| s.1);
        self.routing.record(decision);
        account.ok_or(soonest)
    }

    /// The account a new session's next turn would be routed to: [`Self::decide`] without
    /// recording it (round-robin does not advance). Err: the soonest reset, as [`Self::choose`].
    pub fn peek_next(&self, now_ms: i64) -> Result<Arc<Account>, Option<i64>> {
        let (decision, account) = self.decide(None, &[], now_ms);
        account.ok_or(decision.soonest_reset.as_ref().map(|s| s.1))
    }

    /// Remember that `session` is served by `account`. A session moves only when its old
    /// account is gone or spent for a while ([`route::keeps_pin`]: a brief failover keeps the
    /// mapping).
    pub fn pin_session(&self, session: &str, account: &Account, now_ms: i64) {
        let pool = self.pool();
        let Ok(mut map) = self.affinity.lock() else {
            return;
        };
        if let Some(current) = map.peek(session, now_ms) {
            if current == account.name {
                return;
            }
            let pinned = pool.accounts.iter().find(|a| a.name == current);
            if route::keeps_pin(pinned.map(|a| a.candidate()).as_ref(), now_ms) {
                return;
            }
        }
        map.insert(session, &account.name, now_ms);
        if let Some(r) = self.replicas.get() {
            r.learnt_pin(session, &account.name);
        }
    }

    /// With other replicas: before routing a session this replica has not seen, take the pin
    /// another replica gave it (one bounded Redis read per session and replica).
    pub async fn adopt_shared_pin(&self, session: &str) {
        let Some(r) = self.replicas.get() else { return };
        let known = self
            .affinity
            .lock()
            .map(|m| m.peek(session, crate::store::now_ms()).is_some())
            .unwrap_or(true);
        if known {
            return;
        }
        if let Some(account) = r.pin_of(session).await
            && let Ok(mut map) = self.affinity.lock()
        {
            let now = crate::store::now_ms();
            if map.peek(session, now).is_none() {
                map.insert(session, &account, now);
            }
        }
    }

    pub fn affinity_count(&self) -> usize {
        self.affinity.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// How many remembered sessions each account serves (for the live view).
    pub fn sessions_by_account(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        if let Ok(m) = self.affinity.lock() {
            for account in m.accounts() {
                *out.entry(account.to_string()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Queue status events for `name`, written by the next [`Self::flush_statuses`].
    fn record(&self, name: &str, events: impl IntoIterator<Item = StatusEvent>, now_ms: i64) {
        if let Ok(mut p) = self.pending.lock() {
            // No allocation when the account already has pending events (the common case).
            let queue = match p.get_mut(name) {
                Some(q) => q,
                None => p.entry(name.to_string()).or_default(),
            };
            for e in events {
                queue.push(e, now_ms);
            }
        }
    }

    /// A request sent at `sent_at_ms` was served. It clears the account's cooldown only when
    /// it was sent after the cooldown was learnt: a concurrent request that left before the
    /// usage-limit answer (Codex's `/models` next to its first turn, say) proves nothing about
    /// the limit, and must not wipe it.
    pub fn record_success(&self, acct: &Account, sent_at_ms: i64, now_ms: i64) {
        if acct.cooldown_learnt_ms.load(Ordering::Relaxed) > sent_at_ms {
            self.record(&acct.name, [StatusEvent::Attempted], now_ms);
            return;
        }
        if acct.cooldown_until().is_some() {
            acct.cooldown_until_ms.store(0, Ordering::Relaxed);
        }
        self.record(
            &acct.name,
            [StatusEvent::Attempted, StatusEvent::Succeeded],
            now_ms,
        );
    }

    /// A failed attempt: optional cooldown, a failure count, and why (`quota`: a usage-limit
    /// hit, recorded as [`StatusEvent::QuotaHit`] whatever `error` says).
    pub fn record_failure(
        &self,
        acct: &Account,
        now_ms: i64,
        cooldown_until: Option<i64>,
        quota: bool,
        error: &str,
    ) {
        if let Some(u) = cooldown_until {
            acct.cooldown_until_ms.fetch_max(u, Ordering::Relaxed);
            acct.cooldown_learnt_ms.fetch_max(now_ms, Ordering::Relaxed);
            if let Some(r) = self.replicas.get() {
                r.learnt_cooldown(&acct.name, acct.cooldown_until().unwrap_or(u));
            }
        }
        // The cooldown written is the account's, which a concurrent failure may have set later.
        let until = cooldown_until.and(acct.cooldown_until());
        let failure = match until {
            Some(cooling_until_ms) if quota => StatusEvent::QuotaHit { cooling_until_ms },
            _ => StatusEvent::Failed {
                error: if quota { USAGE_LIMIT_ERROR } else { error }.to_string(),
                cooling_until_ms: until,
            },
        };
        self.record(&acct.name, [StatusEvent::Attempted, failure], now_ms);
    }

    /// Mark (or clear) "needs a new login" in memory and, batched, in account_status.json.
    pub fn set_needs_login(&self, acct: &Account, needs: bool) {
        acct.needs_login.store(needs, Ordering::Relaxed);
        let event = if needs {
            let about = mtime_ms(mtime(&self.store.auth_path(&acct.name))).unwrap_or(0);
            StatusEvent::LoginBroken {
                auth_mtime_ms: about,
            }
        } else {
            StatusEvent::LoginRestored
        };
        self.record(&acct.name, [event], crate::store::now_ms());
    }

    /// Write pending status changes to account_status.json (one locked read-modify-write).
    pub fn flush_statuses(&self) {
        let usage = self.usage.take_dirty();
        let pending = match self.pending.lock() {
            Ok(mut p) if !p.is_empty() || !usage.is_empty() => std::mem::take(&mut *p),
            _ => return,
        };
        let result = self.store.update_statuses(|file| {
            crate::gateway::pool::usage_tracker::UsageTracker::apply(file, &usage);
            for (name, events) in &pending {
                events.apply_to(file.statuses.entry(name.clone()).or_default());
            }
        });
        if result.is_ok() && self.flush_failing.swap(false, Ordering::Relaxed) {
            tracing::info!("account status written again");
        }
        if let Err(e) = result {
            if !self.flush_failing.swap(true, Ordering::Relaxed) {
                tracing::warn!("could not write account status (retrying every second): {e}");
            }
            self.usage.restore_dirty(&usage);
            if let Ok(mut p) = self.pending.lock() {
                for (name, earlier) in pending {
                    p.entry(name).or_default().prepend(earlier);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
