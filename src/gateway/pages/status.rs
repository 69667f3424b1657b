//! `GET /status`: the live view ([`Status`]) the page and `cao status --watch` draw.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::gateway::pool::state::GatewayState;
use crate::policy::account::State as AccountState;
use crate::policy::forecast::{PoolForecast, account_forecast, pool_forecast};
use crate::policy::usage::UsageSnapshot;
use crate::store::now_ms;
use crate::wire::{AccountLive, DecisionView, SERVICE, ServedView, Status};

/// `GET /status`: the live view ([`Status`]) the page and `cao status --watch` draw.
pub(crate) async fn status(State(state): State<Arc<GatewayState>>) -> Response {
    let mut res = axum::Json(status_view(&state, now_ms())).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The body of `GET /status` at `now`.
pub(crate) fn status_view(state: &GatewayState, now: i64) -> Status {
    use std::sync::atomic::Ordering::Relaxed;
    let pool = state.pool();
    let usage = state.usage.all();
    let default = state
        .store
        .load_registry()
        .ok()
        .and_then(|r| r.default_account);
    let switch_at = state.config.switch_at;
    let sessions = state.sessions_by_account();
    let accounts = pool
        .accounts
        .iter()
        .map(|a| {
            let u = usage.get(&a.name);
            let used = u.and_then(|u| u.fullness(now)).map(|f| f.used_percent);
            let st = a.state(used, switch_at, now);
            let cooling = a.cooldown_until().filter(|_| st == AccountState::Cooling);
            AccountLive {
                is_default: default.as_deref() == Some(a.name.as_str()),
                state: st,
                cooldown_until_ms: cooling,
                used_percent: used,
                sessions: sessions.get(&a.name).copied().unwrap_or(0),
                forecast: u.map_or_else(Vec::new, |u| account_forecast(u, now)),
                usage: u.cloned(),
                name: a.name.clone(),
            }
        })
        .collect();
    let pool_forecast = usable_pool_forecast(&state.pool(), &usage, now);
    let c = &state.counters;
    Status {
        service: SERVICE.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        now_ms: now,
        uptime_seconds: state.started.elapsed().as_secs(),
        strategy: state.config.strategy,
        switch_at,
        affinity_count: state.affinity_count(),
        requests: c.requests.load(Relaxed),
        switches: c.switches.load(Relaxed),
        refreshes: state.tokens.refreshes.load(Relaxed),
        refresh_failures: state.tokens.refresh_failures.load(Relaxed),
        accounts,
        recent_switches: state.routing.recent_switches(),
        shared: state.replicas.get().map(|r| r.view()),
        served: state.served.get().map(served_view),
        last_decision: state
            .routing
            .last_decision()
            .as_ref()
            .map(|d| DecisionView::of(d, &crate::render::time::moment_from_now)),
        pool_summary: pool_forecast.as_ref().map(crate::render::forecast::words),
        pool: pool_forecast,
    }
}

fn served_view(s: &crate::gateway::tls::serving::Served) -> ServedView {
    let info = s.cert.as_ref().and_then(|c| c.info());
    ServedView {
        http_url: s.http_url.clone(),
        https_url: s.https_url.clone(),
        ca_fingerprint: info.as_ref().map(|i| i.ca_fingerprint.clone()),
        ca_not_after_ms: info.as_ref().map(|i| i.ca_not_after_ms),
        leaf_not_after_ms: info.as_ref().map(|i| i.leaf_not_after_ms),
    }
}

/// The pool forecast over the accounts ready now.
pub(crate) fn usable_pool_forecast(
    pool: &crate::gateway::pool::account::Pool,
    usage: &std::collections::HashMap<String, UsageSnapshot>,
    now: i64,
) -> Option<PoolForecast> {
    let usable: Vec<&UsageSnapshot> = pool
        .accounts
        .iter()
        .filter(|a| a.is_ready(now))
        .filter_map(|a| usage.get(&a.name))
        .collect();
    pool_forecast(&usable, now)
}
