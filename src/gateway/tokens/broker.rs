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
//! The gateway owns one broker ([`crate::gateway::pool::state::GatewayState::tokens`]); `cao run` runs one behind a
//! loopback token endpoint ([`crate::gateway::tokens::endpoint`]) that Codex reaches through
//! `CODEX_REFRESH_TOKEN_URL_OVERRIDE`. One spend is [`crate::gateway::tokens::spend`], sending it
//! [`crate::gateway::tokens::send`], saving again and rescuing [`crate::gateway::tokens::rescue`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::gateway::tokens::send::Endpoint;
use crate::net::client::HttpClient;
use crate::store::auth_file::{AuthFile, TokenSet};
use crate::store::custody::{CustodyStore, FileCustody, Ledger, Recovered};
use crate::store::{Store, StoreError};

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
}
