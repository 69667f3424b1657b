//! The gateway's side of token custody: credentials for a request from the account's cache,
//! refreshed through the gateway's [`TokenBroker`](crate::gateway::tokens::broker::TokenBroker) when due, after a
//! 401, and in the background before expiry.

use std::sync::Arc;

use crate::gateway::pool::account::{Account, Creds};
use crate::gateway::pool::state::GatewayState;
use crate::gateway::tokens::broker::{CredError, Want};
use crate::policy::token_answer::{self, PROACTIVE_MARGIN_CAP_MS, REQUEST_MARGIN_CAP_MS};

/// Wait this long after a failed background refresh before the next one.
const PROACTIVE_RETRY_MS: i64 = 60_000;

/// Whether the cached access token is due for a refresh at `now_ms` (margin `min(cap, ttl/2)`,
/// so a short-lived token is not refreshed on every request).
fn due(c: &Creds, now_ms: i64, cap_ms: i64) -> bool {
    token_answer::due(now_ms, c.exp_ms, c.iat_ms, cap_ms)
}

/// Credentials for a request: the cached ones, refreshed first if they are due.
pub async fn credentials(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    now_ms: i64,
) -> Result<Arc<Creds>, CredError> {
    match acct.creds() {
        Some(c) if !due(&c, now_ms, REQUEST_MARGIN_CAP_MS) => Ok(c),
        Some(c) => {
            let stale = c.tokens.access_token.clone();
            match refresh(state, acct, Some(&stale)).await {
                Ok(c) => Ok(c),
                // Still valid for a bit: serve with it rather than fail.
                Err(CredError::Transient(_)) if !c.expiring(now_ms, 0) => Ok(c),
                Err(e) => Err(e),
            }
        }
        None => Err(CredError::NoLogin),
    }
}

/// Refresh the account's tokens unless someone already did since `stale` (the access token the
/// caller saw fail or expire).
pub async fn refresh(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    stale: Option<&str>,
) -> Result<Arc<Creds>, CredError> {
    let want = Want::Fresher {
        stale: stale.map(str::to_string),
    };
    apply(state, acct, state.tokens.refresh(&acct.name, want).await)
}

/// Put a broker result on the account: new credentials, or "needs a new login".
pub fn apply(
    state: &GatewayState,
    acct: &Account,
    result: Result<crate::store::auth_file::TokenSet, CredError>,
) -> Result<Arc<Creds>, CredError> {
    match result {
        Ok(tokens) => {
            let creds = Arc::new(Creds::new(tokens).ok_or_else(|| {
                CredError::Transient("the access token is not a valid header value".into())
            })?);
            acct.set_creds(Some(creds.clone()));
            Ok(creds)
        }
        Err(CredError::NeedsLogin) => {
            state.set_needs_login(acct, true);
            Err(CredError::NeedsLogin)
        }
        Err(e) => Err(e),
    }
}

/// Refresh, in the background, every account whose access token expires within
/// `min(10 min, ttl/2)`, so traffic-time refreshes are rare. Does not wait for them. With
/// several replicas only the leader does this (the others adopt what it publishes).
pub fn proactive(state: &Arc<GatewayState>) {
    if !state.leads() {
        return;
    }
    let now = crate::store::now_ms();
    for acct in state.pool().accounts.iter() {
        let due_now = acct
            .creds()
            .is_some_and(|c| due(&c, now, PROACTIVE_MARGIN_CAP_MS));
        let cooling = acct.cooldown_until().is_some_and(|u| u > now);
        if !due_now || cooling || acct.needs_login() || !acct.begin_proactive(now) {
            continue;
        }
        let (state, acct) = (state.clone(), acct.clone());
        tokio::spawn(async move {
            let want = Want::Due {
                cap_ms: PROACTIVE_MARGIN_CAP_MS,
            };
            let result = state.tokens.refresh(&acct.name, want).await;
            let retry_at = match apply(&state, &acct, result) {
                Ok(_) => None,
                Err(e) => {
                    tracing::debug!(account = %acct.name, "background refresh: {e}");
                    let now = crate::store::now_ms();
                    if matches!(e, CredError::Transient(_)) {
                        // Rest the account as a failed request-time refresh does.
                        let until = now + crate::policy::upstream::AUTH_FAILURE_COOLDOWN_MS;
                        state.record_failure(&acct, now, Some(until), false, &e.to_string());
                    }
                    Some(now + PROACTIVE_RETRY_MS)
                }
            };
            acct.end_proactive(retry_at);
        });
    }
}
