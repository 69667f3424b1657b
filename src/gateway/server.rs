//! The gateway's router: its own routes (`/health`, `GET /`, `/status`, `/metrics`), the
//! perimeter and access-key layers, and the forwarding fallback.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::Uri;
use tower::ServiceBuilder;

use super::identity::Identity;
use super::perimeter::{self, Perimeter};
use super::state::GatewayState;
use super::{access_key, proxy};

/// Build the router. Every request passes the admission steps first: the perimeter (Host, Origin,
/// paths), the access key, and its body buffered under the global budget.
///
/// The steps are one middleware around the whole router: `Router::layer` would stack them on
/// every route and the fallback, and calling a layered route clones its boxed stack, and each
/// `from_fn` layer boxes a future and the rest of the stack for every request (about 30
/// allocations per request in all, measured with callgrind; BENCHMARKS.md).
pub fn router(state: Arc<GatewayState>, identity: Arc<Identity>) -> Router {
    let cfg = &state.config;
    let fence = Arc::new(Perimeter::new(
        cfg.bind,
        cfg.port,
        cfg.perimeter.clone(),
        cfg.max_body_bytes,
    ));
    let routes = own_routes()
        .fallback(proxy::forward)
        .layer(Extension(identity))
        .with_state(state.clone());
    let guarded = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state((state, fence), admission))
        .service(routes);
    Router::new().fallback_service(guarded)
}

/// The way in, in order: [`perimeter::admit`], [`access_key::check`], [`perimeter::buffer`];
/// then the route, and [`perimeter::finish`] on the way out.
async fn admission(
    State((state, fence)): State<(Arc<GatewayState>, Arc<Perimeter>)>,
    req: Request,
    next: Next,
) -> Response {
    let (req, class) = match perimeter::admit(&fence, req) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    if let Err(denied) = access_key::check(&state, &fence, &req) {
        return denied.answer().await;
    }
    let (req, permit) = match perimeter::buffer(&state, &fence, req).await {
        Ok(buffered) => buffered,
        Err(refused) => return *refused,
    };
    let resp = next.run(req).await;
    drop(permit);
    perimeter::finish(class, resp)
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
