//! The gateway's own routes: the paths it answers itself, each with its handler. Every other
//! path is forwarded upstream ([`crate::gateway::forward`]) or, upgraded, goes to the WebSocket
//! room.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use bytes::Bytes;
use http::HeaderMap;

use crate::gateway::pages;
use crate::gateway::pool::state::GatewayState;
use crate::gateway::tokens::endpoint::{self, Stranger};
use crate::gateway::usage::pooled;
use crate::policy::perimeter::{OWN_ROUTES, OwnAnswer};

/// The handler of one of the gateway's own answers: every [`OwnAnswer`] has one (the match is
/// exhaustive), and the paths come from the policy's one table, [`OWN_ROUTES`].
fn handler(answer: OwnAnswer) -> MethodRouter<Arc<GatewayState>> {
    match answer {
        OwnAnswer::Health => get(pages::health::health),
        OwnAnswer::Page => get(pages::page::handler),
        OwnAnswer::Status => get(pages::status::status),
        OwnAnswer::Metrics => get(pages::prometheus::metrics),
        OwnAnswer::PooledUsage => get(pooled::pooled),
        OwnAnswer::Token => post(token),
    }
}

/// The gateway's own endpoints, [`OWN_ROUTES`].
pub(crate) fn own_routes() -> Router<Arc<GatewayState>> {
    OWN_ROUTES.iter().fold(Router::new(), |router, own| {
        router.route(own.path, handler(own.answer))
    })
}

/// `POST /oauth/token`: the same custody as `cao run`'s broker, on the gateway's own broker (one
/// custodian per process), forwarding refresh tokens of logins cao does not hold.
async fn token(
    State(state): State<Arc<GatewayState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    endpoint::answer(&state.tokens, &headers, &body, Stranger::Forward).await
}
