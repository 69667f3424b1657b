//! Asking the usage endpoint (`GET <origin>/backend-api/wham/usage`) about accounts: one
//! account ([`fetch`]), every logged-in account a few at a time (`cao status --refresh`,
//! [`refresh_all`]), and the gateway's background poller of idle accounts ([`spawn`], scheduled by
//! [`crate::policy::usage_poll`]).
//!
//! Each call carries the account's bearer and `chatgpt-account-id` plus the `user-agent` Codex's
//! own `wham` calls carry, and like them no `originator` ([`crate::codex::identity`]); tokens are refreshed through the
//! gateway's token code when they expire soon or the endpoint answers 401. Reading this endpoint
//! does not start a usage window; nothing here sends a model call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use crate::gateway::pool::state::{Account, GatewayState};
use crate::gateway::tokens::broker::CredError;
use crate::policy::usage::UsageSnapshot;
use crate::policy::usage_endpoint::{self, EndpointError};
use crate::policy::usage_poll::{self, PollAccount, PollNext, PollOutcome, PollParams};
use crate::store::now_ms;

/// Most time one usage call may take (the endpoint answers in well under a second).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Accounts asked at the same time by `cao status --refresh`.
pub const REFRESH_CONCURRENCY: usize = 3;

/// Largest usage answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// The poller looks again at least this often (accounts added, live usage, stop).
const RECHECK: Duration = Duration::from_secs(1);

/// Why an account's usage could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not logged in")]
    NoLogin,
    #[error("needs a new login (the refresh token was rejected); log in again with `cao add`")]
    NeedsLogin,
    #[error("token refresh failed: {0}")]
    Refresh(String),
    #[error("the usage endpoint refused the credentials (HTTP {0})")]
    Refused(u16),
    #[error("the account is deactivated (HTTP 402 deactivated_workspace)")]
    Deactivated,
    #[error("the usage endpoint answered HTTP {0}")]
    Http(u16),
    #[error("could not reach the usage endpoint: {0}")]
    Network(String),
    #[error("the usage endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Answer(#[from] EndpointError),
}

impl FetchError {
    /// What this failure means for the poll schedule.
    pub fn outcome(&self) -> PollOutcome {
        match self {
            FetchError::Refused(_) | FetchError::NeedsLogin => PollOutcome::AuthRefused,
            _ => PollOutcome::Failed,
        }
    }
}

impl From<CredError> for FetchError {
    fn from(e: CredError) -> Self {
        match e {
            CredError::NoLogin => FetchError::NoLogin,
            CredError::NeedsLogin | CredError::Unknown => FetchError::NeedsLogin,
            CredError::Transient(why) => FetchError::Refresh(why),
        }
    }
}

/// The usage endpoint for the gateway's upstream: `/backend-api/wham/usage` on the origin of
/// `--base-url` (`https://chatgpt.com/backend-api/wham/usage` by default).
pub fn usage_url(base_url: &str) -> String {
    crate::gateway::forward::upstream_url(base_url, "/backend-api/wham/usage")
}

/// Read `acct`'s usage now and fold it into the gateway's usage model.
pub async fn fetch(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
) -> Result<UsageSnapshot, FetchError> {
    if acct.needs_login() {
        return Err(FetchError::NeedsLogin);
    }
    let mut creds = crate::gateway::pool::credentials::credentials(state, acct, now_ms()).await?;
    let mut refreshed = false;
    loop {
        let (status, body) = get(state, &creds).await?;
        match status.as_u16() {
            200..=299 => {
                let snap = usage_endpoint::from_endpoint(&body, now_ms())?;
                state.usage.observe(&acct.name, snap.clone());
                return Ok(snap);
            }
            401 if !refreshed => {
                refreshed = true;
                creds = crate::gateway::pool::credentials::refresh(
                    state,
                    acct,
                    Some(&creds.tokens.access_token),
                )
                .await?;
            }
            s @ (401 | 403) => return Err(FetchError::Refused(s)),
            402 if memchr::memmem::find(&body, b"deactivated_workspace").is_some() => {
                return Err(FetchError::Deactivated);
            }
            s => return Err(FetchError::Http(s)),
        }
    }
}

async fn get(
    state: &GatewayState,
    creds: &crate::gateway::pool::account::Creds,
) -> Result<(StatusCode, Bytes), FetchError> {
    let mut req = http::Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = usage_url(&state.config.base_url)
        .parse()
        .map_err(|e: http::uri::InvalidUri| FetchError::Network(e.to_string()))?;
    let h = req.headers_mut();
    creds.put_on(h);
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    // As Codex's own `wham` calls: its session user agent, no originator (tests/it/identity.rs).
    if let Ok(ua) = HeaderValue::from_str(&crate::codex::identity::backend_user_agent()) {
        h.insert(header::USER_AGENT, ua);
    }
    let call = async {
        let resp = state
            .client
            .request(req)
            .await
            .map_err(|e| FetchError::Network(e.to_string()))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| FetchError::Network(e.to_string()))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(FETCH_TIMEOUT, call)
        .await
        .map_err(|_| FetchError::Timeout(FETCH_TIMEOUT))?
}

/// Ask about every account of the pool, [`REFRESH_CONCURRENCY`] at a time, in pool order.
/// Accounts without a login are reported as such without a call.
pub async fn refresh_all(
    state: &Arc<GatewayState>,
) -> Vec<(String, Result<UsageSnapshot, FetchError>)> {
    let pool = state.pool();
    let calls = pool.accounts.iter().map(|acct| async move {
        let r = if acct.creds().is_none() {
            Err(FetchError::NoLogin)
        } else {
            fetch(state, acct).await
        };
        (acct.name.clone(), r)
    });
    futures_util::stream::iter(calls)
        .buffered(REFRESH_CONCURRENCY)
        .collect()
        .await
}

/// What the poller remembers per account.
#[derive(Debug, Default, Clone, Copy)]
struct Polled {
    at_ms: Option<i64>,
    backoff_until_ms: Option<i64>,
}

/// Start the background poller (`--usage-poll`): one account at a time, each at most once per
/// `interval`, staggered with jitter, until `stop` turns true.
pub fn spawn(
    state: Arc<GatewayState>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let mut polled: HashMap<String, Polled> = HashMap::new();
        // The first poll waits one spacing too, so a restart does not burst.
        let mut last_poll = Some(now_ms());
        loop {
            let now = now_ms();
            let pool = state.pool();
            let usage = state.usage.all();
            let accounts: Vec<PollAccount<'_>> = pool
                .accounts
                .iter()
                .map(|a| {
                    let p = polled.get(&a.name).copied().unwrap_or_default();
                    PollAccount {
                        name: &a.name,
                        needs_login: a.needs_login() || a.creds().is_none(),
                        usage_seen_ms: usage.get(&a.name).map(|u| u.seen_at_ms),
                        polled_ms: p.at_ms,
                        backoff_until_ms: p.backoff_until_ms,
                    }
                })
                .collect();
            let params = PollParams {
                interval_ms,
                now_ms: now,
                last_poll_ms: last_poll,
                jitter: fastrand::f64(),
            };
            let wait = match usage_poll::next(&accounts, &params) {
                // With several replicas, only the leader polls (the usage is shared).
                PollNext::Poll(_) if !state.leads() => RECHECK,
                PollNext::Poll(name) => {
                    let name = name.to_string();
                    drop(accounts);
                    if let Some(acct) = pool.accounts.iter().find(|a| a.name == name) {
                        let r = tokio::select! {
                            r = fetch(&state, acct) => r,
                            _ = stop.wait_for(|s| *s) => break,
                        };
                        let done = now_ms();
                        let outcome = match &r {
                            Ok(_) => PollOutcome::Ok,
                            Err(e) => {
                                tracing::info!(account = %name, "usage poll failed: {e}");
                                e.outcome()
                            }
                        };
                        state.metrics.usage_poll(&name, outcome == PollOutcome::Ok);
                        polled.insert(
                            name,
                            Polled {
                                at_ms: Some(done),
                                backoff_until_ms: usage_poll::backoff_after(outcome, done),
                            },
                        );
                        last_poll = Some(done);
                    }
                    continue;
                }
                PollNext::WaitUntil(at) => {
                    Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(RECHECK)
                }
                PollNext::Idle => RECHECK,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_url_is_on_the_backend_origin() {
        assert_eq!(
            usage_url("https://chatgpt.com/backend-api/codex"),
            "https://chatgpt.com/backend-api/wham/usage"
        );
        assert_eq!(
            usage_url("http://127.0.0.1:9"),
            "http://127.0.0.1:9/backend-api/wham/usage"
        );
    }

    #[test]
    fn auth_failures_back_off_and_others_do_not() {
        assert_eq!(FetchError::Refused(401).outcome(), PollOutcome::AuthRefused);
        assert_eq!(FetchError::Refused(403).outcome(), PollOutcome::AuthRefused);
        assert_eq!(FetchError::Deactivated.outcome(), PollOutcome::Failed);
        assert_eq!(FetchError::Http(500).outcome(), PollOutcome::Failed);
    }
}
