//! `GET /backend-api/wham/usage` and `GET /api/codex/usage` through the gateway: Codex reads them
//! for its `/status` and blocks its composer when they say the signed-in account is spent. Through
//! cao they describe the pool ([`crate::policy::usage_endpoint::pool_body`]): the usage of the
//! account the next turn would be routed to (asked fresh from the backend when ours is older than
//! [`FRESH_MS`]), and when every account is spent, the earliest reset. Other `/wham/*` calls are
//! forwarded as before.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

use super::state::GatewayState;
use crate::policy::usage_endpoint::{PoolMember, pool_body};
use crate::store::now_ms;

/// Usage older than this is asked again before answering.
pub const FRESH_MS: i64 = 60_000;

/// The axum handler.
pub async fn pooled(State(state): State<Arc<GatewayState>>) -> Response {
    let now = now_ms();
    let next = state.peek_next(now).ok();
    if let Some(acct) = &next {
        let stale = state
            .usage
            .get(&acct.name)
            .is_none_or(|u| u.seen_at_ms + FRESH_MS < now);
        if stale && let Err(e) = super::poll::fetch(&state, acct).await {
            tracing::debug!(account = %acct.name, "usage for Codex: kept what we know ({e})");
        }
    }
    let now = now_ms();
    let pool = state.pool();
    let usage = state.usage.all();
    let members: Vec<PoolMember<'_>> = pool
        .accounts
        .iter()
        .map(|a| PoolMember {
            name: &a.name,
            logged_in: !a.needs_login() && a.creds().is_some(),
            cooldown_until_ms: a.cooldown_until(),
            usage: usage.get(&a.name),
        })
        .collect();
    let body = pool_body(&members, next.as_ref().map(|a| a.name.as_str()), now);
    let mut res = axum::Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
