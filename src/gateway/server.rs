//! The gateway's router: its own routes (`/health`), the access-key check, and the forwarding
//! fallback. Issue 6 adds `GET /`, `/status` and `/metrics` in [`own_routes`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use subtle::ConstantTimeEq;

use super::proxy::{self, ACCESS_KEY_HEADER, GatewayError};
use super::state::GatewayState;

/// Build the router.
pub fn router(state: Arc<GatewayState>) -> Router {
    own_routes()
        .fallback(proxy::forward)
        .layer(middleware::from_fn_with_state(state.clone(), access_key))
        .with_state(state)
}

/// The gateway's own endpoints. Everything else is forwarded upstream.
fn own_routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/health", get(health))
        .route("/", get(super::page::handler))
        .route("/status", get(super::page::status))
        .route("/metrics", get(super::page::metrics))
}

/// `GET /health`: 200 with a small JSON body (no account names, so it can stay unauthenticated).
async fn health(State(state): State<Arc<GatewayState>>) -> Response {
    let now = crate::store::now_ms();
    let pool = state.pool();
    let ready = pool.accounts.iter().filter(|a| a.is_ready(now)).count();
    axum::Json(super::wire::Health {
        status: "ok".to_string(),
        service: super::wire::SERVICE.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        accounts: pool.accounts.len(),
        ready,
        uptime_seconds: state.started.elapsed().as_secs(),
    })
    .into_response()
}

/// When an access key is set, every request but `/health` must carry it: as `x-cao-key`, or
/// as `Authorization: Bearer <key>` when the client's Authorization is not passed through.
/// Compared in constant time.
async fn access_key(State(state): State<Arc<GatewayState>>, req: Request, next: Next) -> Response {
    let Some(key) = state.config.access_key.as_deref() else {
        return next.run(req).await;
    };
    // The status page itself holds no data (it sends the key from `/#key=...` to /status).
    if req.uri().path() == "/health" || (req.uri().path() == "/" && req.method() == "GET") {
        return next.run(req).await;
    }
    let h = req.headers();
    let given = h.get(ACCESS_KEY_HEADER).map(|v| v.as_bytes()).or_else(|| {
        (!state.config.passthrough_auth)
            .then(|| h.get(header::AUTHORIZATION))
            .flatten()
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    });
    let ok = given.is_some_and(|g| bool::from(g.ct_eq(key.as_bytes())));
    if !ok {
        return GatewayError::InvalidAccessKey.into_response();
    }
    next.run(req).await
}
