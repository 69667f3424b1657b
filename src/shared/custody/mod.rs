//! Token custody across replicas: the Redis backend of [`CustodyStore`], used by the gateway's
//! token broker when it runs with `--state redis://…`.
//!
//! The same steps as on one machine ([`crate::store::custody`]), with the shared state as the
//! authority and each replica's data dir written through:
//!
//! - [`lease`](CustodyStore::lease): this data dir's lock, then `cao:lease:refresh:<account>`
//!   (`SET NX PX` with a fencing value), renewed while held and given back when the refresh and
//!   its save are done. Only held around one token call and its save.
//! - [`recover`](CustodyStore::recover), before every refresh and when the published set
//!   changes: compare this replica's auth.json with the published set
//!   ([`crate::policy::shared_custody::reconcile`]) and adopt it (written atomically, 0600, into
//!   auth.json), publish ours, or say the current token may be spent.
//! - [`begin_spend`](CustodyStore::begin_spend): the local slot and mark, then the durable shared
//!   mark `cao:spend:<account>:<fp>` (`SET NX`) before the token is sent. A holder that dies
//!   mid-call leaves the mark: no replica ever sends that token again.
//! - [`publish`](CustodyStore::publish): the sealed set goes to `cao:tokens:<account>` by the
//!   compare-and-set on the fingerprint of the token it replaced; a loser adopts the winner's
//!   set. Whatever happens, the answer is saved in this replica's auth.json first.
//!
//! How this replica's auth.json and the published set are brought together is [`reconcile`];
//! this file holds the lease, the spend marks and the publish of a new set.
//!
//! Fail closed: while Redis does not answer no lease is granted, so nothing is spent; requests
//! are served with the tokens that are still valid. Logs carry refresh-token fingerprints and
//! generations, never tokens.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::SharedError;
use super::redis::{Publish, SharedState};
use super::seal::StateKey;
use crate::store::auth_file::AuthFile;
use crate::store::custody::{
    CustodyStore, FileCustody, Lease, Ledger, Recovered, Settle, Slot, fingerprint,
};
use crate::store::{AuthState, Store, StoreError};

mod reconcile;

/// A refresh lease lapses this long after its holder's last renewal (a dead holder's lease).
pub const REFRESH_LEASE_TTL: Duration = Duration::from_secs(5);
/// How long a refresh waits for another replica's refresh of the same account.
pub const REFRESH_LEASE_WAIT: Duration = Duration::from_secs(8);

/// What this backend needs from the replica it runs in (implemented by the gateway's link).
pub trait Link: Send + Sync + 'static {
    fn shared(&self) -> &SharedState;
    fn key(&self) -> &StateKey;
    /// This replica's id (the owner part of every fence it takes).
    fn id(&self) -> &str;
    /// Whether the last Redis call worked.
    fn reachable(&self) -> bool;
    /// Count a Redis call's outcome (flips reachable, says so once).
    fn saw(&self, error: Option<&SharedError>);
    /// A refresh waited for another replica's lease.
    fn lease_waited(&self);
    /// A publish lost the compare-and-set.
    fn cas_lost(&self);
}

/// Token custody in the shared state, written through to this replica's data dir.
pub struct RedisCustody<L: Link> {
    file: FileCustody,
    store: Arc<Store>,
    link: Arc<L>,
    handle: tokio::runtime::Handle,
}

/// A held refresh lease: the data dir's lock and the shared lease (given back on drop).
struct Held {
    _file: Lease,
    fence: String,
    _renewing: tokio::sync::oneshot::Sender<()>,
}

/// The first 12 hex digits of a fingerprint, for logs.
fn short(fp: &str) -> &str {
    fp.get(..12).unwrap_or(fp)
}

fn refresh_token(file: &AuthFile) -> Option<String> {
    file.tokens().and_then(|t| t.refresh_token)
}

/// The shared lease of one account's refresh (`cao:lease:refresh:<account>`).
pub fn lease_name(account: &str) -> String {
    format!("refresh:{account}")
}

impl<L: Link> RedisCustody<L> {
    /// Custody for `store`'s accounts in `link`'s shared state. Call from inside the tokio
    /// runtime the Redis connection runs on; its methods then block (the broker calls them on
    /// blocking threads).
    pub fn new(store: Arc<Store>, link: Arc<L>) -> Self {
        Self {
            file: FileCustody::new(store.clone()),
            store,
            link,
            handle: tokio::runtime::Handle::current(),
        }
    }

    /// Run one Redis call to completion from a blocking thread, counting its outcome.
    fn call<T>(&self, fut: impl Future<Output = Result<T, SharedError>>) -> Result<T, StoreError> {
        let r = tokio::task::block_in_place(|| self.handle.block_on(fut));
        match r {
            Ok(v) => {
                self.link.saw(None);
                Ok(v)
            }
            Err(e) => {
                self.link.saw(Some(&e));
                Err(shared_err(&e))
            }
        }
    }

    fn shared(&self) -> &SharedState {
        self.link.shared()
    }

    fn fence<'a>(&self, lease: &'a Lease) -> &'a str {
        lease.held::<Held>().map_or("", |h| h.fence.as_str())
    }
}

fn shared_err(e: &SharedError) -> StoreError {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        cur = s.source();
    }
    StoreError::Shared(format!(
        "{msg}; no token refresh until the shared state answers"
    ))
}

impl<L: Link> CustodyStore for RedisCustody<L> {
    fn lease(&self, account: &str) -> Result<Lease, StoreError> {
        let file = self.file.lease(account)?;
        let name = lease_name(account);
        let deadline = Instant::now() + REFRESH_LEASE_WAIT;
        let mut waited = false;
        let fence = loop {
            if !self.link.reachable() {
                return Err(StoreError::Shared(
                    "the shared state is unreachable; no token refresh until it is back".into(),
                ));
            }
            let got = self.call(self.shared().try_lease(
                &name,
                self.link.id(),
                REFRESH_LEASE_TTL,
            ))?;
            if let Some(f) = got {
                break f;
            }
            if !waited {
                waited = true;
                self.link.lease_waited();
            }
            if Instant::now() >= deadline {
                let holder = self
                    .call(self.shared().lease_holder(&name))
                    .ok()
                    .flatten()
                    .and_then(|f| f.split('/').next().map(str::to_string))
                    .unwrap_or_else(|| "another replica".into());
                return Err(StoreError::Shared(format!(
                    "the refresh of {account} is held by {holder} for more than {REFRESH_LEASE_WAIT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(fastrand::u64(15..45)));
        };
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let (shared, f, acct) = (self.shared().clone(), fence.clone(), account.to_string());
        self.handle.spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_LEASE_TTL / 3);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    _ = tick.tick() => {
                        if let Ok(false) = shared.renew_lease(&name, &f, REFRESH_LEASE_TTL).await {
                            tracing::warn!(account = %acct, "the refresh lease lapsed while held (a pause longer than {REFRESH_LEASE_TTL:?}?)");
                            return;
                        }
                    }
                }
            }
            let _ = shared.release_lease(&name, &f).await;
        });
        Ok(Lease::holding(Held {
            _file: file,
            fence,
            _renewing: tx,
        }))
    }

    fn ledger(&self, account: &str) -> Result<Ledger, StoreError> {
        self.file.ledger(account)
    }

    fn read(&self, lease: &Lease, account: &str) -> Result<(AuthState, Ledger), StoreError> {
        self.file.read(lease, account)
    }

    fn recover(&self, lease: &Lease, account: &str) -> Result<Recovered, StoreError> {
        let local = self.file.recover(lease, account)?;
        self.reconcile(lease, account, local)
    }

    fn begin_spend(
        &self,
        lease: &Lease,
        account: &str,
        refresh_token: &str,
    ) -> Result<Slot, StoreError> {
        let slot = self.file.begin_spend(lease, account, refresh_token)?;
        let fp = fingerprint(refresh_token);
        let marked = self.call(self.shared().mark_spending(account, &fp, self.fence(lease)));
        match marked {
            Ok(true) => Ok(slot),
            other => {
                // Not sent: lift our own mark. A shared mark whose answer was lost stays, and
                // only costs this login (never a resend).
                self.file.settle(lease, account, Settle::Unsent)?;
                Err(match other {
                    Err(e) => e,
                    _ => StoreError::Shared(format!(
                        "refresh token {} of {account} is already being spent by another replica; not sending it",
                        short(&fp)
                    )),
                })
            }
        }
    }

    fn prepare(&self, lease: &Lease, account: &str) -> Result<Slot, StoreError> {
        self.file.prepare(lease, account)
    }

    fn publish(
        &self,
        lease: &Lease,
        account: &str,
        slot: Slot,
        expected: Option<&str>,
        file: &AuthFile,
    ) -> Result<bool, StoreError> {
        let expected_fp = expected.map(fingerprint);
        let new_fp = refresh_token(file)
            .map(|r| fingerprint(&r))
            .unwrap_or_default();
        let outcome = if self.link.reachable() {
            self.publish_set(lease, account, expected_fp.as_deref(), file)
        } else {
            Err(StoreError::Shared("unreachable".into()))
        };
        match outcome {
            Ok(Publish::Won(g)) => {
                tracing::info!(
                    account,
                    fp = short(&new_fp),
                    generation = g,
                    "published the new token set (generation {g})"
                );
                self.file.publish(lease, account, slot, expected, file)
            }
            Ok(Publish::Lost(p)) => {
                self.link.cas_lost();
                let theirs = self.open(lease, account, &p)?;
                tracing::warn!(
                    account,
                    fp = short(&p.fp),
                    generation = p.generation,
                    "another replica published generation {} first; adopting it instead of ours",
                    p.generation
                );
                self.file.publish(lease, account, slot, expected, &theirs)?;
                Ok(false)
            }
            Err(e) => {
                // The answer is the only copy of the login: keep it here; it is published when
                // the shared state answers again (the next reconcile sees the spent token's mark).
                tracing::warn!(
                    account,
                    fp = short(&new_fp),
                    "saved the new token set in this replica only ({e}); it is published when the shared state is back"
                );
                self.file.publish(lease, account, slot, expected, file)
            }
        }
    }

    fn settle(&self, lease: &Lease, account: &str, how: Settle<'_>) -> Result<(), StoreError> {
        self.file.settle(lease, account, how)?;
        if let Settle::Unsent = how
            && let Ok((AuthState::Present(f), _)) = self.file.read(lease, account)
            && let Some(rt) = refresh_token(&f)
        {
            // Never sent after all: lift the shared mark, if it is ours.
            let fp = fingerprint(&rt);
            let fence = self.fence(lease);
            if self
                .call(self.shared().spend_mark(account, &fp))?
                .as_deref()
                == Some(fence)
            {
                self.call(self.shared().unmark_spending(account, &fp))?;
            }
        }
        Ok(())
    }
}
