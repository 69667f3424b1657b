//! Token custody: the one broker every refresh of a login goes through (modelled on codex-rs
//! `AuthManager`, which holds one refresh at a time and re-reads auth.json before spending).
//!
//! Refresh tokens rotate, and OpenAI's token endpoint treats a spent one coming back as theft:
//! it revokes the whole login. So, for each account, in every cao process:
//!
//! - one refresh at a time in this process (a single flight), under the account's custody lease
//!   across processes ([`crate::store::custody`]);
//! - before spending, the login is re-read: someone else may have rotated it already, and a
//!   caller presenting a refresh token that was already rotated gets the current tokens back;
//! - a token is sent only once its result can be saved and it is durably marked as being spent;
//! - any 2xx means spent ([`crate::policy::token_answer`]): whatever refresh token came back is
//!   saved; none readable means the account needs a new login, never a resend;
//! - rotated tokens that cannot be saved stay in memory, are retried, and at shutdown go to a
//!   rescue file ([`TokenBroker::write_rescue`]).
//!
//! The gateway owns one broker ([`super::GatewayState::tokens`]); `cao run` runs one behind a
//! loopback token endpoint ([`super::token_endpoint`]) that Codex reaches through
//! `CODEX_REFRESH_TOKEN_URL_OVERRIDE`. Sending is in [`super::token_send`], saving again and
//! rescuing in [`super::token_rescue`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::HttpClient;
pub use super::token_send::Endpoint;
use super::token_send::{self, Sent};
use crate::policy::token_answer::{self, REQUEST_MARGIN_CAP_MS, Rotated, TokenAnswer};
use crate::store::auth_file::{AuthFile, TokenSet, decode_claims};
use crate::store::custody::{CustodyStore, FileCustody, Ledger, Recovered, Settle, fingerprint};
use crate::store::{AuthState, Store, StoreError};

/// Why no credentials could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredError {
    #[error("account has no usable login")]
    NoLogin,
    #[error("the refresh token was rejected; the account needs `cao add` (codex login) again")]
    NeedsLogin,
    #[error("token refresh failed: {0}")]
    Transient(String),
    #[error("that refresh token does not belong to any login cao holds")]
    Unknown,
}

/// What the caller wants from a refresh.
#[derive(Debug, Clone)]
pub enum Want {
    /// Tokens other than the access token `stale` (which failed or expires), unless it is
    /// still good: someone else may have refreshed already.
    Fresher { stale: Option<String> },
    /// Refresh if the access token expires within `min(cap_ms, ttl/2)` (background).
    Due { cap_ms: i64 },
    /// A client (Codex) presented this refresh token to the broker's endpoint.
    Presented(Presented),
}

/// A refresh token a client presented, with what it said about itself.
#[derive(Clone)]
pub struct Presented {
    pub refresh_token: String,
    pub reason: Option<String>,
    pub user_agent: Option<String>,
    pub originator: Option<String>,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

/// One account's custody in this process.
#[derive(Default)]
pub(super) struct Record {
    /// The single flight; it holds the number of flights finished and the last one's failure,
    /// so callers that waited through a failed flight share its failure instead of spending
    /// again at once.
    flight: tokio::sync::Mutex<Option<CredError>>,
    finished: AtomicU64,
    /// Rotated tokens whose save failed: retried, rescued at shutdown.
    pub(super) unsaved: Mutex<Option<AuthFile>>,
}

/// The broker. Cheap to share (`Arc`).
pub struct TokenBroker {
    pub(super) store: Arc<Store>,
    pub(super) custody: Arc<dyn CustodyStore>,
    pub(super) client: HttpClient,
    pub(super) endpoint: Endpoint,
    pub(super) records: Mutex<HashMap<String, Arc<Record>>>,
    busy: tokio::sync::watch::Sender<usize>,
    pub refreshes: AtomicU64,
    pub refresh_failures: AtomicU64,
}

/// Counts a refresh in flight until dropped (shutdown waits for zero).
struct Busy(tokio::sync::watch::Sender<usize>);

impl Busy {
    fn enter(tx: &tokio::sync::watch::Sender<usize>) -> Self {
        tx.send_modify(|n| *n += 1);
        Self(tx.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn blocking_err(e: tokio::task::JoinError) -> CredError {
    CredError::Transient(format!("custody task failed: {e}"))
}

fn store_err(e: StoreError) -> CredError {
    CredError::Transient(e.to_string())
}

impl TokenBroker {
    /// A broker on the data dir's own custody (file backend).
    pub fn new(store: Arc<Store>, client: HttpClient, endpoint: Endpoint) -> Self {
        let custody = Arc::new(FileCustody::new(store.clone()));
        Self::with_custody(store, custody, client, endpoint)
    }

    /// A broker on any custody backend.
    pub fn with_custody(
        store: Arc<Store>,
        custody: Arc<dyn CustodyStore>,
        client: HttpClient,
        endpoint: Endpoint,
    ) -> Self {
        Self {
            store,
            custody,
            client,
            endpoint,
            records: Mutex::new(HashMap::new()),
            busy: tokio::sync::watch::channel(0).0,
            refreshes: AtomicU64::new(0),
            refresh_failures: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub(super) fn record(&self, account: &str) -> Arc<Record> {
        let mut m = match self.records.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(account.to_string()).or_default().clone()
    }

    /// Refreshes (and their saves) in flight right now.
    pub fn in_flight(&self) -> usize {
        *self.busy.borrow()
    }

    /// Wait until no refresh is in flight.
    pub async fn wait_idle(&self) {
        let mut rx = self.busy.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// The account's ledger (no lease: a snapshot for decisions that spend nothing).
    pub fn ledger(&self, account: &str) -> Ledger {
        self.custody.ledger(account).unwrap_or_default()
    }

    /// Adopt or clean up what an interrupted spend left (blocking; at load).
    pub fn recover(&self, account: &str) -> Result<Recovered, StoreError> {
        let lease = self.custody.lease(account)?;
        let r = self.custody.recover(&lease, account)?;
        if r == Recovered::Adopted {
            tracing::warn!(
                account,
                "adopted the newer login an interrupted save left behind"
            );
        }
        Ok(r)
    }

    /// Refresh one account's login as `want` says. Runs in its own task: a caller that goes
    /// away (a client hanging up) never cancels a spend between "sent" and "saved".
    pub async fn refresh(
        self: &Arc<Self>,
        account: &str,
        want: Want,
    ) -> Result<TokenSet, CredError> {
        let (this, account) = (self.clone(), account.to_string());
        let busy = Busy::enter(&self.busy);
        tokio::spawn(async move {
            let _busy = busy;
            this.refresh_inner(&account, want).await
        })
        .await
        .unwrap_or_else(|e| Err(CredError::Transient(format!("refresh task failed: {e}"))))
    }

    async fn refresh_inner(
        self: &Arc<Self>,
        account: &str,
        want: Want,
    ) -> Result<TokenSet, CredError> {
        let rec = self.record(account);
        let seen = rec.finished.load(Ordering::Acquire);
        let mut last_failure = rec.flight.lock().await;
        if rec.finished.load(Ordering::Acquire) != seen
            && let Some(e @ CredError::Transient(_)) = last_failure.clone()
        {
            return Err(e);
        }
        let result = self.flight(account, &rec, want).await;
        *last_failure = result.as_ref().err().cloned();
        rec.finished.fetch_add(1, Ordering::Release);
        result
    }

    async fn flight(
        self: &Arc<Self>,
        account: &str,
        rec: &Record,
        want: Want,
    ) -> Result<TokenSet, CredError> {
        let (tokens, usable) = self.spend_once(account, rec, &want).await?;
        if usable {
            return Ok(tokens);
        }
        // A 2xx without a usable access token still brought a new refresh token (saved): spend
        // that one at once, inside the same flight.
        let again = Want::Fresher {
            stale: Some(tokens.access_token),
        };
        match self.spend_once(account, rec, &again).await? {
            (tokens, true) => Ok(tokens),
            _ => Err(CredError::Transient(
                "the token endpoint's answers had no usable access token (the new refresh tokens were kept)".into(),
            )),
        }
    }

    /// One look at the login and, if needed, one spend. `Ok((tokens, false))`: a new refresh
    /// token was saved but the answer had no usable access token.
    async fn spend_once(
        self: &Arc<Self>,
        account: &str,
        rec: &Record,
        want: &Want,
    ) -> Result<(TokenSet, bool), CredError> {
        let (custody, name) = (self.custody.clone(), account.to_string());
        let (lease, disk, ledger, recovered) = tokio::task::spawn_blocking(move || {
            let lease = custody.lease(&name)?;
            let recovered = custody.recover(&lease, &name)?;
            let (disk, ledger) = custody.read(&lease, &name)?;
            Ok::<_, StoreError>((lease, disk, ledger, recovered))
        })
        .await
        .map_err(blocking_err)?
        .map_err(store_err)?;
        let disk = match disk {
            AuthState::Present(f) => f,
            _ => return Err(CredError::NoLogin),
        };
        let disk_fp = disk
            .tokens()
            .and_then(|t| t.refresh_token)
            .map(|r| fingerprint(&r));
        let disk_stale = recovered == Recovered::Interrupted
            || disk_fp.as_deref().is_some_and(|f| ledger.is_spent(f));
        // Our rotated tokens that could not be saved win over a file still holding the token
        // they replaced; a file that moved on otherwise (a new login) wins over them.
        let unsaved = rec.unsaved.lock().ok().and_then(|u| u.clone());
        let (mut file, interrupted) = match unsaved {
            Some(mem) if disk_stale => (mem, false),
            Some(_) => {
                if let Ok(mut u) = rec.unsaved.lock() {
                    *u = None;
                }
                (disk, recovered == Recovered::Interrupted)
            }
            None => (disk, recovered == Recovered::Interrupted),
        };
        let current = file.tokens().ok_or(CredError::NoLogin)?;
        let now = crate::store::now_ms();
        let claims = decode_claims(&current.access_token).unwrap_or_default();
        let exp_ms = claims.exp.map(|e| e.saturating_mul(1000));
        let iat_ms = claims.iat.map(|i| i.saturating_mul(1000));
        let usable =
            token_answer::is_header_safe(&current.access_token) && exp_ms.is_none_or(|e| e > now);
        let not_due = |cap: i64| usable && !token_answer::due(now, exp_ms, iat_ms, cap);
        let reason = match want {
            Want::Fresher { stale } => {
                if not_due(REQUEST_MARGIN_CAP_MS) && stale.as_ref() != Some(&current.access_token) {
                    return Ok((current, true));
                }
                if stale.is_some() {
                    "unauthorized"
                } else {
                    "proactive_expiry"
                }
                .to_string()
            }
            Want::Due { cap_ms } => {
                if not_due(*cap_ms) {
                    return Ok((current, true));
                }
                "proactive_expiry".to_string()
            }
            Want::Presented(p) => {
                if current.refresh_token.as_deref() != Some(p.refresh_token.as_str()) {
                    // Idempotent: a token already rotated gets the current login, no spend.
                    if !ledger.knows(&fingerprint(&p.refresh_token)) {
                        return Err(CredError::Unknown);
                    }
                    if not_due(REQUEST_MARGIN_CAP_MS) {
                        return Ok((current, true));
                    }
                }
                p.reason
                    .clone()
                    .unwrap_or_else(|| "proactive_expiry".into())
            }
        };
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(CredError::NeedsLogin);
        };
        let fp = fingerprint(&refresh_token);
        // Logs name the token generation by its fingerprint (never the token).
        let generation = fp.get(..12).unwrap_or(&fp).to_string();
        if interrupted || ledger.knows(&fp) || ledger.descends_from_rejected(&fp) {
            tracing::warn!(
                account,
                generation = %generation,
                "the refresh token may already be spent (an earlier refresh was interrupted, or it was rejected); not sending it again: log the account in again"
            );
            return Err(CredError::NeedsLogin);
        }

        // Spend only what can be saved.
        let (custody, name, rt) = (
            self.custody.clone(),
            account.to_string(),
            refresh_token.clone(),
        );
        let (lease, slot) = tokio::task::spawn_blocking(move || {
            let slot = custody.begin_spend(&lease, &name, &rt);
            (lease, slot)
        })
        .await
        .map_err(blocking_err)?;
        let slot = slot.map_err(|e| {
            tracing::error!(
                account,
                generation = %generation,
                "cannot prepare the save of a refresh ({e}); the refresh token was not sent"
            );
            CredError::Transient(format!(
                "the new tokens could not be saved, so none were requested: {e}"
            ))
        })?;
        let client_info = match want {
            Want::Presented(p) => (p.user_agent.clone(), p.originator.clone()),
            _ => (None, None),
        };
        let sent = token_send::send(
            &self.client,
            &self.endpoint,
            &refresh_token,
            &reason,
            client_info,
        )
        .await;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let rotated = match sent {
            Sent::Answer(TokenAnswer::Spent(r)) => r,
            Sent::Lost(why) => {
                tracing::warn!(
                    account,
                    generation = %generation,
                    "token endpoint answer lost ({why}); counting the refresh token as spent"
                );
                Rotated {
                    flaw: Some("the answer was lost"),
                    ..Rotated::default()
                }
            }
            other => {
                self.refresh_failures.fetch_add(1, Ordering::Relaxed);
                let (rejected, err) = match other {
                    Sent::Answer(TokenAnswer::Rejected(code)) => {
                        tracing::warn!(
                            account,
                            generation = %generation,
                            "token refresh rejected ({code}); the account needs a new login"
                        );
                        (true, CredError::NeedsLogin)
                    }
                    Sent::Answer(TokenAnswer::Transient(why)) | Sent::Unsent(why) => {
                        tracing::warn!(account, generation = %generation, "token refresh failed: {why}");
                        (false, CredError::Transient(why))
                    }
                    _ => (false, CredError::Transient("token refresh failed".into())),
                };
                let (custody, name, old) = (
                    self.custody.clone(),
                    account.to_string(),
                    refresh_token.clone(),
                );
                let _ = tokio::task::spawn_blocking(move || {
                    let how = if rejected {
                        Settle::Rejected { old: &old }
                    } else {
                        Settle::Unsent
                    };
                    if let Err(e) = custody.settle(&lease, &name, how) {
                        tracing::warn!(account = %name, "could not update the custody ledger: {e}");
                    }
                })
                .await;
                return Err(err);
            }
        };
        if let Some(flaw) = rotated.flaw {
            self.refresh_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(account, generation = %generation, "token endpoint answered 2xx but {flaw}");
        }
        let Some(new_rt) = rotated.refresh_token.clone() else {
            let (custody, name, old) = (
                self.custody.clone(),
                account.to_string(),
                refresh_token.clone(),
            );
            let _ = tokio::task::spawn_blocking(move || {
                let _ = custody.settle(
                    &lease,
                    &name,
                    Settle::Spent {
                        old: &old,
                        new: None,
                    },
                );
            })
            .await;
            tracing::error!(
                account,
                generation = %generation,
                "the refresh token was spent and no new one could be read; the account needs a new login"
            );
            return Err(CredError::NeedsLogin);
        };
        let tokens = TokenSet {
            access_token: rotated
                .access_token
                .clone()
                .unwrap_or_else(|| current.access_token.clone()),
            id_token: rotated.id_token.clone().or(current.id_token.clone()),
            refresh_token: Some(new_rt.clone()),
            account_id: current.account_id.clone(),
        };
        file.set_tokens(&tokens, &jiff::Timestamp::now().to_string());
        let (custody, name, old, copy) = (
            self.custody.clone(),
            account.to_string(),
            refresh_token.clone(),
            file.clone(),
        );
        let saved = tokio::task::spawn_blocking(move || {
            let published = custody.publish(&lease, &name, slot, Some(&old), &copy);
            if let Err(e) = custody.settle(
                &lease,
                &name,
                Settle::Spent {
                    old: &old,
                    new: Some(&new_rt),
                },
            ) {
                tracing::warn!(account = %name, "could not update the custody ledger: {e}");
            }
            published
        })
        .await
        .map_err(blocking_err)?;
        match saved {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                account,
                generation = %generation,
                "auth.json changed while its refresh token was being spent (a program refreshing on its own?); saved the newest tokens"
            ),
            Err(e) => {
                tracing::error!(
                    account,
                    generation = %generation,
                    "could not save the refreshed tokens ({e}); keeping them in memory and retrying"
                );
                if let Ok(mut u) = rec.unsaved.lock() {
                    *u = Some(file);
                }
            }
        }
        if rotated.access_token.is_none() {
            return Ok((tokens, false));
        }
        tracing::info!(account, "access token refreshed");
        Ok((tokens, true))
    }
}
