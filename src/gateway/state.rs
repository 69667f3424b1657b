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

use super::HttpClient;
pub use super::account::{Account, Creds, Pool};
use super::config::GatewayConfig;
use crate::policy::route::{self, Candidate, Decision, RouteInput};
use crate::store::{AuthState, Store};

/// Status-file key (cao-only) remembering which auth.json a `needsLogin` verdict was about:
/// when auth.json changes (a new login), the verdict no longer applies.
const NEEDS_LOGIN_MTIME_KEY: &str = "needsLoginAuthMtimeMs";

/// Most sessions remembered for affinity (older ones are forgotten wholesale beyond this).
const MAX_AFFINITY: usize = 20_000;

/// Pending changes to account_status.json, merged into the file by the flusher.
#[derive(Debug, Default, Clone)]
struct StatusPatch {
    last_attempt: Option<i64>,
    last_success: Option<i64>,
    last_quota: Option<i64>,
    cooldown: Option<Option<i64>>,
    reset_failures: bool,
    add_failures: u32,
    last_error: Option<Option<String>>,
    needs_login: Option<Option<i64>>,
}

/// Counters for the log and the live view.
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub switches: AtomicU64,
    pub refreshes: AtomicU64,
    pub refresh_failures: AtomicU64,
}

/// Everything the request handlers share.
pub struct GatewayState {
    pub store: Arc<Store>,
    pub config: GatewayConfig,
    pub client: HttpClient,
    pub started: Instant,
    pub counters: Counters,
    /// Live usage per account and routing memory (issue 6).
    pub usage: super::usage::UsageTracker,
    /// Last routing decision, round-robin position and recent switches.
    pub routing: super::routing::RouteMemory,
    pub metrics: super::metrics::Metrics,
    pool: RwLock<Arc<Pool>>,
    affinity: Mutex<HashMap<String, String>>,
    pending: Mutex<BTreeMap<String, StatusPatch>>,
    registry_mtime: Mutex<Option<SystemTime>>,
    /// The last status write failed (warn once, not every second).
    flush_failing: AtomicBool,
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
        let usage = super::usage::UsageTracker::from_statuses(&store.load_statuses()?);
        let state = Self {
            store,
            config,
            client,
            started: Instant::now(),
            counters: Counters::default(),
            usage,
            routing: super::routing::RouteMemory::default(),
            metrics: super::metrics::Metrics::new(),
            pool: RwLock::new(Arc::new(Pool::default())),
            affinity: Mutex::new(HashMap::new()),
            pending: Mutex::new(BTreeMap::new()),
            registry_mtime: Mutex::new(None),
            flush_failing: AtomicBool::new(false),
        };
        state.reload_registry()?;
        Ok(state)
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
        for acct in &self.pool().accounts {
            super::tokens::retry_unsaved(self, acct);
            let now = mtime(&self.store.auth_path(&acct.name));
            let before = acct.auth_mtime.lock().map(|m| *m).unwrap_or(None);
            if now == before {
                continue;
            }
            let old_token = acct.creds().map(|c| c.tokens.access_token.clone());
            if let Err(e) = self.load_creds(acct) {
                tracing::warn!(account = %acct.name, "could not reload auth.json: {e:#}");
                continue;
            }
            let new_token = acct.creds().map(|c| c.tokens.access_token.clone());
            if new_token.is_some() && new_token != old_token && acct.needs_login() {
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
            session.and_then(|s| self.affinity.lock().ok().and_then(|m| m.get(s).cloned()));
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
        tracing::debug!(decision = %decision.summary(), "route");
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

    /// Remember that `session` is served by `account`. A session moves only when its old
    /// account is gone or spent for a while ([`route::keeps_pin`]: a brief failover keeps the
    /// mapping).
    pub fn pin_session(&self, session: &str, account: &Account, now_ms: i64) {
        let pool = self.pool();
        let Ok(mut map) = self.affinity.lock() else {
            return;
        };
        if let Some(current) = map.get(session) {
            if current == &account.name {
                return;
            }
            let pinned = pool.accounts.iter().find(|a| &a.name == current);
            if route::keeps_pin(pinned.map(|a| a.candidate()).as_ref(), now_ms) {
                return;
            }
        }
        if map.len() >= MAX_AFFINITY {
            map.clear();
        }
        map.insert(session.to_string(), account.name.clone());
    }

    pub fn affinity_count(&self) -> usize {
        self.affinity.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// How many remembered sessions each account serves (for the live view).
    pub fn sessions_by_account(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        if let Ok(m) = self.affinity.lock() {
            for account in m.values() {
                *out.entry(account.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    fn patch(&self, name: &str, f: impl FnOnce(&mut StatusPatch)) {
        if let Ok(mut p) = self.pending.lock() {
            // No allocation when the account already has a pending patch (the common case).
            match p.get_mut(name) {
                Some(patch) => f(patch),
                None => f(p.entry(name.to_string()).or_default()),
            }
        }
    }

    pub fn record_success(&self, acct: &Account, now_ms: i64) {
        if acct.cooldown_until().is_some() {
            acct.cooldown_until_ms.store(0, Ordering::Relaxed);
        }
        self.patch(&acct.name, |p| {
            p.last_attempt = Some(now_ms);
            p.last_success = Some(now_ms);
            p.reset_failures = true;
            p.add_failures = 0;
            p.last_error = Some(None);
            p.cooldown = Some(None);
        });
    }

    /// A failed attempt: optional cooldown, a failure count, and why.
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
        }
        let until = acct.cooldown_until();
        self.patch(&acct.name, |p| {
            p.last_attempt = Some(now_ms);
            if quota {
                p.last_quota = Some(now_ms);
            }
            if cooldown_until.is_some() {
                p.cooldown = Some(until);
            }
            p.add_failures += 1;
            p.last_error = Some(Some(error.to_string()));
        });
    }

    /// Mark (or clear) "needs a new login" in memory and, batched, in account_status.json.
    pub fn set_needs_login(&self, acct: &Account, needs: bool) {
        acct.needs_login.store(needs, Ordering::Relaxed);
        let about = mtime_ms(mtime(&self.store.auth_path(&acct.name))).unwrap_or(0);
        self.patch(&acct.name, |p| p.needs_login = Some(needs.then_some(about)));
    }

    /// Write pending status changes to account_status.json (one locked read-modify-write).
    pub fn flush_statuses(&self) {
        let usage = self.usage.take_dirty();
        let pending = match self.pending.lock() {
            Ok(mut p) if !p.is_empty() || !usage.is_empty() => std::mem::take(&mut *p),
            _ => return,
        };
        let result = self.store.update_statuses(|file| {
            super::usage::UsageTracker::apply(file, &usage);
            for (name, p) in &pending {
                let s = file.statuses.entry(name.clone()).or_default();
                if let Some(v) = p.last_attempt {
                    s.last_attempt_at_ms = Some(v);
                }
                if let Some(v) = p.last_success {
                    s.last_success_at_ms = Some(v);
                }
                if let Some(v) = p.last_quota {
                    s.last_quota_at_ms = Some(v);
                }
                if let Some(v) = p.cooldown {
                    s.cooldown_until_ms = v;
                }
                if p.reset_failures {
                    s.consecutive_failures = Some(0);
                }
                if p.add_failures > 0 {
                    s.consecutive_failures = Some(
                        s.consecutive_failures
                            .unwrap_or(0)
                            .saturating_add(p.add_failures),
                    );
                }
                if let Some(v) = &p.last_error {
                    s.last_error = v.clone();
                }
                match p.needs_login {
                    Some(Some(about)) => {
                        s.needs_login = Some(true);
                        s.extra.insert(NEEDS_LOGIN_MTIME_KEY.into(), about.into());
                    }
                    Some(None) => {
                        s.needs_login = None;
                        s.extra.remove(NEEDS_LOGIN_MTIME_KEY);
                    }
                    None => {}
                }
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
                for (name, patch) in pending {
                    p.entry(name).or_insert(patch);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
