//! Bringing this replica's auth.json and the published token set together, under the refresh
//! lease: before every refresh and when the published set changes. The decision is
//! [`crate::policy::shared_custody::reconcile`]; this does what it says: adopt the published
//! set (written atomically, 0600, into auth.json, the token it replaces linked in the local
//! ledger), publish ours by compare-and-set, or say the current token may be spent.

use super::{Link, RedisCustody, refresh_token, short};
use crate::policy::shared_custody::{Side, Sync as Next, reconcile};
use crate::shared::redis::{Publish, Published};
use crate::shared::seal::Label;
use crate::store::auth_file::{AuthFile, decode_claims};
use crate::store::custody::{CustodyStore, Lease, Recovered, Settle, fingerprint};
use crate::store::{AuthState, StoreError};

fn issued_at(file: &AuthFile) -> Option<i64> {
    file.tokens()
        .and_then(|t| decode_claims(&t.access_token))
        .and_then(|c| c.iat)
}

impl<L: Link> RedisCustody<L> {
    /// Whether refresh token `fp` is retired (being spent, spent, or replaced).
    fn retired(&self, account: &str, fp: &str) -> Result<bool, StoreError> {
        Ok(self.call(self.shared().spend_mark(account, fp))?.is_some())
    }

    /// The published set `p`, unsealed with the state key and parsed: refused when it does
    /// not open under the fingerprint and generation stored beside it, when its refresh token
    /// is not the one that fingerprint names, or when this replica has seen a newer generation
    /// (someone who can write to the shared state put an old set back). Under the lease.
    pub(super) fn open(
        &self,
        lease: &Lease,
        account: &str,
        p: &Published,
    ) -> Result<AuthFile, StoreError> {
        let seen = self.file.ledger(account)?.shared_generation;
        if p.generation < seen {
            tracing::warn!(
                account,
                generation = p.generation,
                seen,
                "refusing the published token set: generation {} is older than generation {seen}, which this replica has seen (an old set put back in the shared state?)",
                p.generation
            );
            return Err(StoreError::Shared(format!(
                "the token set published for {account} is generation {}, older than generation {seen} this replica has seen; refusing it (an old set put back in the shared state?)",
                p.generation
            )));
        }
        let label = Label {
            account,
            fp: &p.fp,
            generation: p.generation,
        };
        let plain = self.link.key().open(&label, &p.sealed).map_err(|e| {
            tracing::warn!(
                account,
                generation = p.generation,
                "refusing the published token set: {e}"
            );
            StoreError::Shared(e.to_string())
        })?;
        let text = String::from_utf8(plain)
            .map_err(|_| StoreError::Shared("a published token set is not text".into()))?;
        let file = AuthFile::parse(&text).map_err(|e| {
            StoreError::Shared(format!(
                "a published token set of {account} does not parse: {e}"
            ))
        })?;
        if refresh_token(&file).map(|r| fingerprint(&r)).as_deref() != Some(p.fp.as_str()) {
            return Err(StoreError::Shared(format!(
                "the token set published for {account} holds another refresh token than its fingerprint names; refusing it"
            )));
        }
        self.file.note_generation(lease, account, p.generation)?;
        Ok(file)
    }

    /// `file` sealed as generation `generation` of `account`'s set.
    fn seal(&self, account: &str, generation: u64, file: &AuthFile) -> Result<String, StoreError> {
        let fp = refresh_token(file)
            .map(|r| fingerprint(&r))
            .unwrap_or_default();
        let label = Label {
            account,
            fp: &fp,
            generation,
        };
        self.link
            .key()
            .seal(&label, file.to_json_pretty().as_bytes())
            .map_err(|e| StoreError::Shared(e.to_string()))
    }

    /// Write `file` (the published set) over this replica's auth.json and link the token it
    /// replaces in the local ledger, so this replica never sends that one either.
    fn adopt(
        &self,
        lease: &Lease,
        account: &str,
        local_rt: Option<&str>,
        file: &AuthFile,
    ) -> Result<(), StoreError> {
        let slot = self.file.prepare(lease, account)?;
        self.file.publish(lease, account, slot, local_rt, file)?;
        if let (Some(old), Some(new)) = (local_rt, refresh_token(file)) {
            self.file.settle(
                lease,
                account,
                Settle::Spent {
                    old,
                    new: Some(&new),
                },
            )?;
        }
        Ok(())
    }

    /// One compare-and-set publish of `file`, replacing `expected` (a fingerprint), as the
    /// generation after the one published now (the seal is bound to it). Under the lease.
    pub(super) fn publish_set(
        &self,
        lease: &Lease,
        account: &str,
        expected: Option<&str>,
        file: &AuthFile,
    ) -> Result<Publish, StoreError> {
        let fp = refresh_token(file)
            .map(|r| fingerprint(&r))
            .unwrap_or_default();
        let now = self.call(self.shared().tokens(account))?;
        let generation = now.map_or(0, |p| p.generation) + 1;
        let sealed = self.seal(account, generation, file)?;
        let outcome = self.call(
            self.shared()
                .publish_tokens(account, expected, &fp, &sealed, generation),
        )?;
        if let Publish::Won(g) = outcome {
            self.file.note_generation(lease, account, g)?;
        }
        Ok(outcome)
    }

    /// Bring this replica's auth.json and the published set together (under the lease).
    pub(super) fn reconcile(
        &self,
        lease: &Lease,
        account: &str,
        local_outcome: Recovered,
    ) -> Result<Recovered, StoreError> {
        for _ in 0..3 {
            let local = match self.store.load_auth(account)? {
                AuthState::Present(f) => Some(f),
                _ => None,
            };
            let local_rt = local.as_ref().and_then(refresh_token);
            let local_fp = local_rt.as_deref().map(fingerprint);
            let published = self.call(self.shared().tokens(account))?;
            let local_retired = match &local_fp {
                Some(fp) => self.retired(account, fp)?,
                None => false,
            };
            let published_file = match &published {
                Some(p) => Some(self.open(lease, account, p)?),
                None => None,
            };
            // A token this replica spent itself is retired whatever the shared state says
            // (its marks can be lost, or removed by someone who can write to it).
            let spent_here = self.file.ledger(account)?;
            let published_retired = match &published {
                Some(p) if Some(&p.fp) == local_fp.as_ref() => local_retired,
                Some(p) => spent_here.is_spent(&p.fp) || self.retired(account, &p.fp)?,
                None => false,
            };
            let l = local_fp.as_deref().map(|fp| Side {
                fp,
                retired: local_retired,
                issued_at: local.as_ref().and_then(issued_at),
            });
            let p = published.as_ref().map(|p| Side {
                fp: &p.fp,
                retired: published_retired,
                issued_at: published_file.as_ref().and_then(issued_at),
            });
            let interrupted = local_outcome == Recovered::Interrupted;
            let generation = published.as_ref().map_or(0, |p| p.generation);
            match reconcile(l.as_ref(), interrupted, p.as_ref()) {
                Next::Nothing => return Ok(local_outcome),
                Next::Same { clear_local_mark } => {
                    if clear_local_mark {
                        // Our own mark, never followed by the shared one: never sent.
                        self.file.settle(lease, account, Settle::Unsent)?;
                        return Ok(Recovered::Clean);
                    }
                    return Ok(local_outcome);
                }
                Next::Interrupted => {
                    let fp = local_fp.as_deref().unwrap_or_default();
                    tracing::warn!(
                        account,
                        fp = short(fp),
                        generation,
                        "refresh token {} was being spent by a replica whose answer never came back; it is never sent again",
                        short(fp)
                    );
                    return Ok(Recovered::Interrupted);
                }
                Next::Adopt { spent } => {
                    let (Some(file), Some(p)) = (&published_file, &published) else {
                        return Ok(local_outcome);
                    };
                    self.adopt(lease, account, local_rt.as_deref(), file)?;
                    tracing::info!(
                        account,
                        fp = short(&p.fp),
                        generation,
                        "adopted the token set another replica published (generation {generation})"
                    );
                    if spent {
                        continue;
                    }
                    return Ok(Recovered::Clean);
                }
                Next::Publish { first } => {
                    let Some(file) = &local else {
                        return Ok(local_outcome);
                    };
                    let expected = published.as_ref().map(|p| p.fp.clone());
                    if let Some(old) = &expected
                        && !first
                    {
                        let mark = format!("replaced/{}", self.fence(lease));
                        self.call(self.shared().mark_spending(account, old, &mark))?;
                    }
                    match self.publish_set(lease, account, expected.as_deref(), file)? {
                        Publish::Won(g) => {
                            tracing::info!(
                                account,
                                fp = short(local_fp.as_deref().unwrap_or_default()),
                                generation = g,
                                "published this replica's token set (generation {g})"
                            );
                            return Ok(local_outcome);
                        }
                        Publish::Lost(_) => {
                            self.link.cas_lost();
                            continue;
                        }
                    }
                }
            }
        }
        Err(StoreError::Shared(format!(
            "the published token set of {account} kept changing; try again"
        )))
    }
}
