//! `GET /`: a small self-contained status page (no external assets) that polls `GET /status`
//! every two seconds and draws every account with a bar per usage window.

use std::sync::Arc;

use super::state::GatewayState;
use crate::policy::account::State as AccountState;
use crate::policy::forecast::{PoolForecast, account_forecast, pool_forecast};
use crate::policy::usage::UsageSnapshot;
use crate::store::now_ms;
use crate::wire::{AccountLive, DecisionView, SERVICE, ServedView, Status};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page, compiled into the binary.
pub(crate) const PAGE_HTML: &str = include_str!("page.html");

/// Inline script and style only; the page may talk to its own origin and nothing else.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The axum handler for `GET /`.
pub async fn handler() -> Response {
    let mut res = axum::response::Html(PAGE_HTML).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

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

fn served_view(s: &super::tls_serve::Served) -> ServedView {
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
fn usable_pool_forecast(
    pool: &super::account::Pool,
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

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<Arc<GatewayState>>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let now = now_ms();
    let m = &state.metrics;
    let pool = state.pool();
    m.set_cooling(
        pool.accounts
            .iter()
            .filter(|a| a.cooldown_until().is_some_and(|c| c > now))
            .count(),
    );
    let usage = state.usage.all();
    for (name, u) in &usage {
        m.set_usage(name, u, now);
    }
    m.set_pool_left(usable_pool_forecast(&pool, &usage, now).and_then(|p| p.left_ms));
    m.sync_refreshes(
        state.tokens.refreshes.load(Relaxed),
        state.tokens.refresh_failures.load(Relaxed),
    );
    if let Some(r) = state.replicas.get() {
        m.sync_shared(
            r.stats.lease_waits.load(Relaxed),
            r.stats.cas_losses.load(Relaxed),
            r.stats.redis_errors.load(Relaxed),
        );
    }
    let mut res = m.encode().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained() {
        for external in ["http://", "https://", "src=\"//", "@import"] {
            assert!(
                !PAGE_HTML.contains(external),
                "page references an external asset: {external}"
            );
        }
        assert!(PAGE_HTML.contains("fetch(\"status\""));
    }
}
