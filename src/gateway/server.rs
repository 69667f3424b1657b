//! The gateway's router: its own routes (`/health`, `GET /`, `/status`, `/metrics`), the
//! perimeter and access-key layers, and the forwarding fallback.

use std::sync::Arc;

use axum::extract::State;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::Uri;
use tower::ServiceBuilder;

use super::identity::Identity;
use super::perimeter::{self, Perimeter};
use super::state::GatewayState;
use super::{access_key, proxy};

/// Build the router. Every request passes the perimeter first ([`perimeter::guard`]: Host,
/// Origin, paths), then the access key, then has its body buffered under the global budget.
///
/// The layers wrap the whole router once, not each route: `Router::layer` would stack them on
/// every route and the fallback, and calling a layered route clones its boxed stack (about 20
/// allocations per request, measured with callgrind; BENCHMARKS.md).
pub fn router(state: Arc<GatewayState>, identity: Arc<Identity>) -> Router {
    let cfg = &state.config;
    let fence = Arc::new(Perimeter::new(
        cfg.bind,
        cfg.port,
        cfg.perimeter.clone(),
        cfg.max_body_bytes,
    ));
    let both = (state.clone(), fence.clone());
    let routes = own_routes().fallback(proxy::forward).with_state(state);
    let guarded = ServiceBuilder::new()
        .layer(Extension(identity))
        .layer(middleware::from_fn_with_state(fence, perimeter::guard))
        .layer(middleware::from_fn_with_state(
            both.clone(),
            access_key::access_key,
        ))
        .layer(middleware::from_fn_with_state(both, perimeter::buffer_body))
        .service(routes);
    Router::new().fallback_service(guarded)
}

/// The gateway's own endpoints. Everything else is forwarded upstream.
fn own_routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/health", get(health))
        .route("/", get(super::page::handler))
        .route("/status", get(super::page::status))
        .route("/metrics", get(super::page::metrics))
        .route("/backend-api/wham/usage", get(super::usage_answer::pooled))
        .route("/api/codex/usage", get(super::usage_answer::pooled))
        .route(
            "/oauth/token",
            axum::routing::post(super::token_endpoint::gateway_handle),
        )
}

/// `GET /health`: 200 with a small JSON body (no account names, so it can stay unauthenticated).
/// With `?nonce=N` it also carries the proof that this is the user's cao gateway
/// ([`super::identity`]).
async fn health(
    State(state): State<Arc<GatewayState>>,
    Extension(identity): Extension<Arc<Identity>>,
    uri: Uri,
) -> Response {
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
        proof: identity.answer(uri.query()),
    })
    .into_response()
}
