//! `GET /backend-api/wham/usage` and `GET /api/codex/usage` through the gateway: Codex reads them
//! for its `/status` and blocks its composer when they say the signed-in account is spent. Through
//! cao they describe the pool ([`crate::policy::usage_endpoint::pool_body`]): the usage of the
//! account the next turn would be routed to (the routing decision, [`GatewayState::peek_next`]),
//! asked fresh from the backend when ours is older than [`FRESH_MS`]; when every account is
//! spent, the earliest reset. Other `/wham/*` calls are forwarded as before.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde_json::Value;

use crate::gateway::pool::state::GatewayState;
use crate::policy::usage_endpoint::{PoolMember, pool_body, serving};
use crate::store::now_ms;

/// Usage older than this is asked again before answering.
pub const FRESH_MS: i64 = 60_000;

/// The axum handler.
pub async fn pooled(State(state): State<Arc<GatewayState>>) -> Response {
    let next = state.peek_next(now_ms()).ok().map(|a| a.name.clone());
    let mut asked: Vec<String> = Vec::new();
    // At most two backend calls: the account the router picks, and, if the backend says that one
    // is spent, the account shown instead.
    let body = loop {
        let (body, stale) = answer(&state, next.as_deref());
        let Some(name) = stale.filter(|n| !asked.contains(n) && asked.len() < 2) else {
            break body;
        };
        let acct = state
            .pool()
            .accounts
            .iter()
            .find(|a| a.name == name)
            .cloned();
        if let Some(acct) = acct
            && let Err(e) = crate::gateway::usage::poll::fetch(&state, &acct).await
        {
            tracing::debug!(account = %name, "usage for Codex: kept what we know ({e})");
        }
        asked.push(name);
    };
    let mut res = axum::Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The pooled answer from what is known now, and the shown account if its usage is stale.
fn answer(state: &GatewayState, next: Option<&str>) -> (Value, Option<String>) {
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
    let stale = serving(&members, next, now)
        .filter(|m| m.usage.is_none_or(|u| u.seen_at_ms + FRESH_MS < now))
        .map(|m| m.name.to_string());
    (pool_body(&members, next, now), stale)
}
