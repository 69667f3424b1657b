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

/// The paths the gateway answers itself ([`own_route`] has each one's handler); every other
/// path is forwarded upstream ([`crate::gateway::forward::forward`]). The perimeter's own paths
/// ([`crate::policy::perimeter::OWN_PATHS`]) are among them, and the pooled usage answer at the
/// backend's own usage path.
pub(crate) const OWN_ROUTES: [&str; 7] = [
    "/health",
    "/",
    "/status",
    "/metrics",
    "/backend-api/wham/usage",
    "/api/codex/usage",
    "/oauth/token",
];

/// The handler of one of [`OWN_ROUTES`].
fn own_route(path: &str) -> Option<MethodRouter<Arc<GatewayState>>> {
    Some(match path {
        "/health" => get(pages::health::health),
        "/" => get(pages::page::handler),
        "/status" => get(pages::status::status),
        "/metrics" => get(pages::prometheus::metrics),
        "/backend-api/wham/usage" | "/api/codex/usage" => get(pooled::pooled),
        "/oauth/token" => post(token),
        _ => return None,
    })
}

/// The gateway's own endpoints, [`OWN_ROUTES`].
pub(crate) fn own_routes() -> Router<Arc<GatewayState>> {
    OWN_ROUTES
        .iter()
        .fold(Router::new(), |router, path| match own_route(path) {
            Some(route) => router.route(path, route),
            None => router,
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

#[cfg(test)]
mod tests {
    use super::{OWN_ROUTES, own_route};

    #[test]
    fn every_own_route_has_a_handler() {
        for path in OWN_ROUTES {
            assert!(own_route(path).is_some(), "{path}");
        }
        assert!(own_route("/responses").is_none());
    }

    #[test]
    fn the_perimeters_own_paths_are_routed_here() {
        for path in crate::policy::perimeter::OWN_PATHS {
            assert!(OWN_ROUTES.contains(&path), "{path}");
        }
    }
}
