//! Phase 3, the pass loop: ask the router for an account, attempt the request there, and on
//! failure move on to the next account, for up to `--max-retry-passes` passes over the pool.
//! Then the answer: the first delivered one; else, when every account is spent, an
//! upstream-shaped 429 with the earliest reset; else the last failure as upstream gave it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::response::{IntoResponse, Response};

use super::attempt::{self, Attempted};
use super::held::Held;
use super::prepare::Replay;
use crate::gateway::error::GatewayError;
use crate::gateway::pool::route_memory::switch_reason;
use crate::gateway::pool::state::{Account, GatewayState};
use crate::policy::upstream::{self, Outcome, RetryPolicy};
use crate::store::now_ms;

/// The answer for the client and who served it.
pub struct Served {
    pub response: Response,
    /// The account that served it (the first one tried, when none did).
    pub account: Option<Arc<Account>>,
    /// Whether the request moved from its first account.
    pub switched: bool,
}

impl Served {
    /// An answer the gateway made without any account.
    pub fn local(response: Response) -> Self {
        Self {
            response,
            account: None,
            switched: false,
        }
    }
}

/// Route `replay` over the accounts with the HTTP attempt ([`attempt::attempt`]).
pub async fn serve(state: &Arc<GatewayState>, replay: &Replay) -> Served {
    let cfg = &state.config;
    let policy = RetryPolicy {
        retries: cfg.upstream_retries,
        base_ms: cfg.upstream_retry_base_ms,
        max_ms: cfg.upstream_retry_max_ms,
        default_cooldown_s: cfg.cooldown_seconds,
    };
    passes(state, replay.session.as_deref(), |acct| async move {
        attempt::attempt(state, &acct, replay, &policy).await
    })
    .await
}

/// The pass loop around any attempt: `try_on(account)` sends the request on one account (the
/// HTTP attempt, or another transport's) and says whether it was delivered. Records switches
/// and pins the session to the account that served it.
pub async fn passes<F, Fut>(
    state: &Arc<GatewayState>,
    session: Option<&str>,
    mut try_on: F,
) -> Served
where
    F: FnMut(Arc<Account>) -> Fut,
    Fut: Future<Output = Attempted>,
{
    let cfg = &state.config;
    let mut tried: Vec<Arc<Account>> = Vec::new();
    let mut first: Option<Arc<Account>> = None;
    let mut last_failure: Option<Held> = None;
    let mut soonest: Option<i64> = None;
    if let Some(s) = session {
        state.adopt_shared_pin(s).await;
    }
    for _pass in 0..cfg.max_retry_passes.max(1) {
        tried.clear();
        loop {
            let tried_names: Vec<&str> = tried.iter().map(|a| a.name.as_str()).collect();
            // One reading of the clock for the choice and the pin that may follow it (the
            // pin's 12-hour life does not care about the seconds an answer takes).
            let now = now_ms();
            let acct = match state.choose(session, &tried_names, now) {
                Ok(a) => a,
                Err(s) => {
                    soonest = s;
                    break;
                }
            };
            let switched = first.as_ref().is_some_and(|f| f.name != acct.name);
            first.get_or_insert_with(|| acct.clone());
            match try_on(acct.clone()).await {
                Attempted::Delivered(response) => {
                    if switched {
                        record_switch(state, first.as_deref(), &acct, last_failure.as_ref());
                    }
                    if let Some(s) = session
                        && response.status().is_success()
                    {
                        state.pin_session(s, &acct, now);
                    }
                    return Served {
                        response,
                        account: Some(acct),
                        switched,
                    };
                }
                Attempted::Failed(held) => {
                    if held.is_some() {
                        last_failure = held;
                    }
                    tried.push(acct);
                }
            }
        }
    }
    let response = unserved(state, soonest, last_failure);
    Served {
        response,
        account: first,
        switched: tried.len() > 1,
    }
}

fn record_switch(
    state: &GatewayState,
    first: Option<&Account>,
    to: &Account,
    failed: Option<&Held>,
) {
    state.counters.switches.fetch_add(1, Ordering::Relaxed);
    let now = now_ms();
    let why = switch_reason(failed.map(|h| (h.status.as_u16(), &h.body[..])), now);
    let from = first.map_or("-", |a| a.name.as_str());
    state.metrics.switched(from, &to.name);
    state.routing.record_switch(from, &to.name, &why, now);
}

/// No account delivered: "all spent" when that is why (the last failure was a usage limit, or
/// there was none), else the last failure as upstream gave it, else "no usable account".
fn unserved(state: &GatewayState, soonest: Option<i64>, last_failure: Option<Held>) -> Response {
    let now = now_ms();
    let last_was_limit = last_failure.as_ref().is_none_or(|h| {
        matches!(
            upstream::classify(h.status.as_u16(), Some(&h.body), now),
            Outcome::UsageLimit { .. }
        )
    });
    if let Some(reset) = soonest.filter(|_| last_was_limit) {
        return GatewayError::AllSpent {
            soonest_reset_ms: Some(reset),
            now_ms: now,
            default_cooldown_s: state.config.cooldown_seconds,
        }
        .into_response();
    }
    match last_failure {
        Some(held) => held.into_response(),
        None => GatewayError::NoUsableAccount.into_response(),
    }
}
