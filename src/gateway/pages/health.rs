//! `GET /health`: whether this is a running cao gateway, unauthenticated.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::Uri;

use crate::gateway::identity::Identity;
use crate::gateway::pool::state::GatewayState;

/// `GET /health`: 200 with a small JSON body (no account names, so it can stay unauthenticated).
/// With `?nonce=N` it also carries the proof that this is the user's cao gateway
/// ([`crate::gateway::identity`]).
pub(crate) async fn health(
    State(state): State<Arc<GatewayState>>,
    Extension(identity): Extension<Arc<Identity>>,
    uri: Uri,
) -> Response {
    let now = crate::store::now_ms();
    let pool = state.pool();
    let ready = pool.accounts.iter().filter(|a| a.is_ready(now)).count();
    axum::Json(crate::wire::Health {
        status: "ok".to_string(),
        service: crate::wire::SERVICE.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        accounts: pool.accounts.len(),
        ready,
        uptime_seconds: state.started.elapsed().as_secs(),
        proof: identity.answer(uri.query()),
    })
    .into_response()
}
