//! Custody of refresh tokens on disk: the storage the token broker spends through.
//!
//! A refresh token is spent once, by one custodian, and only when its result can be saved:
//!
//! 1. [`CustodyStore::lease`]: the exclusive right to refresh one account, across processes
//!    (here the account's `.auth.lock`; a shared backend such as Redis would hold a lease key).
//! 2. [`CustodyStore::begin_spend`]: a temp file for the result exists, holds room for it and is
//!    fsynced next to auth.json (in the link target's directory for a symlinked auth.json), and
//!    the token is durably marked as being spent in the account's ledger (`.cao-custody.json`).
//!    If either fails, nothing is sent.
//! 3. the broker sends the token; then [`CustodyStore::publish`] writes the answer into the
//!    prepared file and renames it over auth.json (compare-and-set: it reports whether auth.json
//!    still held the token that was spent), and [`CustodyStore::settle`] records the outcome in
//!    the ledger (spent, and what replaced it; or rejected; or not sent after all).
//! 4. [`CustodyStore::recover`], at load and before every refresh: a prepared file left by a
//!    process killed after the answer came back is a newer login of the same account: adopt it;
//!    any other leftover is deleted. A "being spent" mark whose answer never came back means the
//!    token may be spent: the broker must not send it again.
//!
//! The ledger keeps fingerprints (SHA-256 prefixes) of refresh tokens, never tokens.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AuthFile, AuthState, Store, StoreError, fsutil};

/// The per-account ledger file (inside the account dir).
pub(crate) const LEDGER_FILE: &str = ".cao-custody.json";
/// Name prefix of prepared result files (orphans of a crash are found by it).
pub(crate) const SLOT_PREFIX: &str = ".cao-auth-";
/// Room kept in a prepared file beyond the current auth.json (new tokens are about as long).
const SLOT_ROOM: usize = 4096;
/// Most links the ledger remembers.
const MAX_LINKS: usize = 256;

/// A short, stable fingerprint of a refresh token (hex of the first 16 bytes of its SHA-256).
pub fn fingerprint(refresh_token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, refresh_token.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A token marked as being spent: sent (or about to be), answer not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spending {
    pub fp: String,
    pub at_ms: i64,
}

/// One spent refresh token and the one that replaced it (if it could be read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub fp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub at_ms: i64,
}

/// What custody knows about an account's refresh tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spending: Option<Spending>,
    #[serde(default)]
    pub chain: Vec<Link>,
    #[serde(default)]
    pub rejected: Vec<String>,
    /// With shared state (`--state`): the newest generation of the account's published token
    /// set this replica has opened or published. An older one is refused (a set put back).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shared_generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Ledger {
    /// The token was sent and rotated: never send it again.
    pub fn is_spent(&self, fp: &str) -> bool {
        self.chain.iter().any(|l| l.fp == fp)
    }

    pub fn is_rejected(&self, fp: &str) -> bool {
        self.rejected.iter().any(|r| r == fp)
    }

    /// The token is part of this account's history (spent or rejected).
    pub fn knows(&self, fp: &str) -> bool {
        self.is_spent(fp) || self.is_rejected(fp)
    }

    /// Whether `fp` (or an ancestor of it) was rejected: its login is dead, so a file holding
    /// it is not a new login.
    pub fn descends_from_rejected(&self, fp: &str) -> bool {
        let mut cur = fp.to_string();
        for _ in 0..=self.chain.len() {
            if self.is_rejected(&cur) {
                return true;
            }
            match self
                .chain
                .iter()
                .find(|l| l.next.as_deref() == Some(cur.as_str()))
            {
                Some(parent) => cur = parent.fp.clone(),
                None => return false,
            }
        }
        false
    }

    fn link(&mut self, fp: &str, next: Option<&str>, at_ms: i64) {
        if let Some(l) = self.chain.iter_mut().find(|l| l.fp == fp) {
            if l.next.is_none() {
                l.next = next.map(str::to_string);
            }
        } else {
            self.chain.push(Link {
                fp: fp.to_string(),
                next: next.map(str::to_string),
                at_ms,
            });
        }
        if self.chain.len() > MAX_LINKS {
            let extra = self.chain.len() - MAX_LINKS;
            self.chain.drain(..extra);
        }
    }
}

/// The exclusive right to refresh one account (released on drop).
pub struct Lease {
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl Lease {
    /// A lease kept alive by `held` (another backend's guard; released when it drops).
    pub fn holding(held: impl std::any::Any + Send + Sync) -> Self {
        Self {
            _held: Box::new(held),
        }
    }

    /// The guard this lease holds, if it is a `T` (a backend reading its own lease back).
    pub fn held<T: std::any::Any>(&self) -> Option<&T> {
        self._held.downcast_ref::<T>()
    }
}

/// A prepared, fsynced file that will hold the result of one spend.
pub struct Slot {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

/// What [`CustodyStore::recover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    Clean,
    /// A newer login left by an interrupted save was made auth.json.
    Adopted,
    /// The current refresh token was being spent when a process died before the answer was
    /// saved: it may be spent; it must not be sent again.
    Interrupted,
}

/// How a spend ended, for the ledger.
#[derive(Debug, Clone, Copy)]
pub enum Settle<'a> {
    /// A 2xx: `old` is spent; `new` replaced it (when one could be read).
    Spent { old: &'a str, new: Option<&'a str> },
    /// The endpoint refused `old` for good.
    Rejected { old: &'a str },
    /// Not spent after all (no answer, or a transient error): the mark is lifted.
    Unsent,
}

/// The storage seam of token custody. The file backend below serves one machine; a shared
/// backend (Redis: a lease key, a being-spent key, a compare-and-set publish in Lua) slots in
/// behind the same calls.
pub trait CustodyStore: Send + Sync {
    /// Block until this process holds the account's lease.
    fn lease(&self, account: &str) -> Result<Lease, StoreError>;
    /// The ledger as it stands (no lease: for decisions that spend nothing).
    fn ledger(&self, account: &str) -> Result<Ledger, StoreError>;
    /// The login as published, and the ledger.
    fn read(&self, lease: &Lease, account: &str) -> Result<(AuthState, Ledger), StoreError>;
    /// Adopt or delete what an interrupted spend left behind.
    fn recover(&self, lease: &Lease, account: &str) -> Result<Recovered, StoreError>;
    /// Make sure the result can be saved, then durably mark `refresh_token` as being spent.
    fn begin_spend(
        &self,
        lease: &Lease,
        account: &str,
        refresh_token: &str,
    ) -> Result<Slot, StoreError>;
    /// A slot for writing without a spend (retrying a save that failed).
    fn prepare(&self, lease: &Lease, account: &str) -> Result<Slot, StoreError>;
    /// Write `file` through `slot` over auth.json. Returns whether auth.json still held
    /// `expected` (the refresh token that was spent) just before.
    fn publish(
        &self,
        lease: &Lease,
        account: &str,
        slot: Slot,
        expected: Option<&str>,
        file: &AuthFile,
    ) -> Result<bool, StoreError>;
    /// Record how a spend ended.
    fn settle(&self, lease: &Lease, account: &str, how: Settle<'_>) -> Result<(), StoreError>;
}

/// Custody in the data dir (one machine, many processes).
pub(crate) struct FileCustody {
    store: std::sync::Arc<Store>,
}

impl FileCustody {
    pub fn new(store: std::sync::Arc<Store>) -> Self {
        Self { store }
    }

    fn ledger_path(&self, account: &str) -> PathBuf {
        self.store.account_dir(account).join(LEDGER_FILE)
    }

    fn load_ledger(&self, account: &str) -> Result<Ledger, StoreError> {
        Ok(self
            .store
            .read_json_or_back_up::<Ledger>(&self.ledger_path(account))?
            .unwrap_or_default())
    }

    fn save_ledger(&self, account: &str, ledger: &Ledger) -> Result<(), StoreError> {
        self.store.write_json(&self.ledger_path(account), ledger)
    }

    /// Remember that the account's published token set reached `generation` (under the lease).
    pub fn note_generation(
        &self,
        _lease: &Lease,
        account: &str,
        generation: u64,
    ) -> Result<(), StoreError> {
        let mut ledger = self.load_ledger(account)?;
        if generation > ledger.shared_generation {
            ledger.shared_generation = generation;
            self.save_ledger(account, &ledger)?;
        }
        Ok(())
    }

    /// Prepared files in the account dir and in the link target's dir.
    fn orphans(&self, account: &str) -> Vec<PathBuf> {
        let auth = self.store.auth_path(account);
        let mut dirs = vec![self.store.account_dir(account)];
        if let Some(d) = fsutil::link_target(&auth).parent()
            && !dirs.iter().any(|x| x == d)
        {
            dirs.push(d.to_path_buf());
        }
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for dir in dirs {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(SLOT_PREFIX) {
                    let t = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    found.push((t, e.path()));
                }
            }
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        found.into_iter().map(|(_, p)| p).collect()
    }
}

impl CustodyStore for FileCustody {
    fn lease(&self, account: &str) -> Result<Lease, StoreError> {
        let lock = self.store.lock_auth(account)?;
        Ok(Lease {
            _held: Box::new(lock),
        })
    }

    fn ledger(&self, account: &str) -> Result<Ledger, StoreError> {
        self.load_ledger(account)
    }

    fn read(&self, _lease: &Lease, account: &str) -> Result<(AuthState, Ledger), StoreError> {
        Ok((self.store.load_auth(account)?, self.load_ledger(account)?))
    }

    fn recover(&self, lease: &Lease, account: &str) -> Result<Recovered, StoreError> {
        let (state, mut ledger) = self.read(lease, account)?;
        let before = ledger.clone();
        let current = match &state {
            AuthState::Present(f) => f.tokens(),
            _ => None,
        };
        let cur_fp = current
            .as_ref()
            .and_then(|t| t.refresh_token.as_deref())
            .map(fingerprint);
        let cur_account = current
            .as_ref()
            .and_then(|t| t.account_id.clone())
            .or_else(|| match &state {
                AuthState::Present(f) => f.claims().chatgpt_account_id,
                _ => None,
            });
        let being_spent = ledger.spending.as_ref().map(|s| s.fp.clone());
        let mut adopted = false;
        let target = fsutil::link_target(&self.store.auth_path(account));
        for path in self.orphans(account) {
            let text = fsutil::read_optional(&path)?.unwrap_or_default();
            let candidate = AuthFile::parse(text.trim_end()).ok();
            let newer = candidate.as_ref().and_then(|f| {
                let same = f.claims().chatgpt_account_id == cur_account;
                let rt = f.tokens()?.refresh_token?;
                let fp = fingerprint(&rt);
                (same
                    && Some(&fp) != cur_fp.as_ref()
                    && being_spent.is_some()
                    && being_spent == cur_fp
                    && !ledger.knows(&fp))
                .then_some(fp)
            });
            match (newer, adopted) {
                (Some(fp), false) => {
                    std::fs::rename(&path, &target)
                        .map_err(|source| StoreError::io("adopt", &path, source))?;
                    fsutil::sync_dir(&target);
                    let at = super::now_ms();
                    if let Some(old) = &cur_fp {
                        ledger.link(old, Some(&fp), at);
                    }
                    ledger.spending = None;
                    adopted = true;
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let mut outcome = if adopted {
            Recovered::Adopted
        } else {
            Recovered::Clean
        };
        if !adopted && let Some(s) = ledger.spending.clone() {
            if Some(&s.fp) == cur_fp.as_ref() {
                outcome = Recovered::Interrupted;
            } else {
                // auth.json moved on since the mark: that spend was saved.
                ledger.link(&s.fp, cur_fp.as_deref(), s.at_ms);
                ledger.spending = None;
            }
        }
        if ledger != before {
            self.save_ledger(account, &ledger)?;
        }
        Ok(outcome)
    }

    fn prepare(&self, _lease: &Lease, account: &str) -> Result<Slot, StoreError> {
        let auth = self.store.auth_path(account);
        let target = fsutil::link_target(&auth);
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.store.account_dir(account));
        let current = fsutil::read_optional(&target)?.unwrap_or_else(|| "{}".into());
        let mut tmp = tempfile::Builder::new()
            .prefix(SLOT_PREFIX)
            .tempfile_in(&dir)
            .map_err(|source| StoreError::io("create temp file in", &dir, source))?;
        fsutil::set_mode(tmp.path(), fsutil::SECRET_FILE_MODE)?;
        // The current login plus room (JSON whitespace): the blocks the result needs are
        // allocated now, so a full disk refuses here, before anything is spent.
        let mut bytes = current.into_bytes();
        bytes.extend(std::iter::repeat_n(b' ', SLOT_ROOM));
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|source| StoreError::io("prepare", tmp.path(), source))?;
        fsutil::sync_dir(tmp.path());
        Ok(Slot { tmp, target })
    }

    fn begin_spend(
        &self,
        lease: &Lease,
        account: &str,
        refresh_token: &str,
    ) -> Result<Slot, StoreError> {
        let slot = self.prepare(lease, account)?;
        let mut ledger = self.load_ledger(account)?;
        ledger.spending = Some(Spending {
            fp: fingerprint(refresh_token),
            at_ms: super::now_ms(),
        });
        self.save_ledger(account, &ledger)?;
        Ok(slot)
    }

    fn publish(
        &self,
        _lease: &Lease,
        account: &str,
        slot: Slot,
        expected: Option<&str>,
        file: &AuthFile,
    ) -> Result<bool, StoreError> {
        let Slot { mut tmp, target } = slot;
        let still = match self.store.load_auth(account)? {
            AuthState::Present(f) => {
                f.tokens().and_then(|t| t.refresh_token).as_deref() == expected
            }
            _ => expected.is_none(),
        };
        let text = file.to_json_pretty();
        let path = tmp.path().to_path_buf();
        tmp.as_file_mut()
            .rewind()
            .and_then(|()| tmp.as_file_mut().write_all(text.as_bytes()))
            .and_then(|()| tmp.as_file().set_len(text.len() as u64))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|source| StoreError::io("write", &path, source))?;
        fault_point("CAO_FAULT_HOLD_BEFORE_RENAME_MS");
        tmp.persist(&target)
            .map_err(|e| StoreError::io("rename temp file onto", &target, e.error))?;
        fsutil::sync_dir(&target);
        Ok(still)
    }

    fn settle(&self, _lease: &Lease, account: &str, how: Settle<'_>) -> Result<(), StoreError> {
        let mut ledger = self.load_ledger(account)?;
        let at = super::now_ms();
        match how {
            Settle::Spent { old, new } => {
                let new_fp = new.map(fingerprint);
                ledger.link(&fingerprint(old), new_fp.as_deref(), at);
            }
            Settle::Rejected { old } => {
                let fp = fingerprint(old);
                if !ledger.is_rejected(&fp) {
                    ledger.rejected.push(fp);
                }
                if ledger.rejected.len() > MAX_LINKS {
                    ledger.rejected.remove(0);
                }
            }
            Settle::Unsent => {}
        }
        ledger.spending = None;
        self.save_ledger(account, &ledger)
    }
}

/// A crash window made wide for tests: sleep this many ms when the env var is set (the kill -9
/// custody test stops the process here, between "answer written" and "renamed").
fn fault_point(var: &str) {
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_hide_the_token() {
        let fp = fingerprint("rt-acc-1-0");
        assert_eq!(fp.len(), 32);
        assert_eq!(fp, fingerprint("rt-acc-1-0"));
        assert_ne!(fp, fingerprint("rt-acc-1-1"));
        assert!(!fp.contains("acc"));
    }

    #[test]
    fn descent_from_a_rejected_token_is_followed_through_the_chain() {
        let mut l = Ledger::default();
        l.link("a", Some("b"), 1);
        l.link("b", Some("c"), 2);
        assert!(!l.descends_from_rejected("c"));
        l.rejected.push("a".into());
        assert!(l.descends_from_rejected("c"));
        assert!(!l.descends_from_rejected("z"));
        assert!(l.is_spent("b") && l.knows("a") && !l.is_spent("c"));
    }
}
