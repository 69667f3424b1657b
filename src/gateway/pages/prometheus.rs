//! `GET /metrics`: the Prometheus text format, gauges brought up to date first.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::status::usable_pool_forecast;
use crate::gateway::pool::state::GatewayState;
use crate::store::now_ms;

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
        HeaderValue::from_static(crate::gateway::metrics::CONTENT_TYPE),
    );
    res
}
