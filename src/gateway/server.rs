//! The gateway's front door: the admission steps (perimeter, access key, body budget) for every
//! request, then its own routes (`/health`, `GET /`, `/status`, `/metrics`, the pooled usage
//! answer, `/oauth/token`) or forwarding.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use http::Uri;

use super::identity::Identity;
use super::perimeter::{self, Perimeter};
use super::serve::App;
use super::state::GatewayState;
use super::{access_key, proxy};

/// The paths the gateway answers itself ([`own_route`] has each one's handler); every other
/// path is forwarded upstream ([`proxy::forward`]). The perimeter's own paths
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

/// The gateway's front door: every request passes the admission steps (the perimeter's Host,
/// Origin and path checks, the access key, its body buffered under the global budget), then
/// goes to one of the gateway's own routes or is forwarded.
///
/// A forwarded request (nearly every request the gateway serves) does not pass through an axum
/// `Router` or middleware: a router stack clones and boxes its layers and moves the request
/// and its future through each of them, about a sixth of a forward's instructions (callgrind,
/// BENCHMARKS.md). The own routes keep axum's routing and extractors.
#[derive(Clone)]
pub struct Front(Arc<Door>);

struct Door {
    state: Arc<GatewayState>,
    fence: Perimeter,
    own: Router,
}

/// Build the front door for `state`.
pub fn front(state: Arc<GatewayState>, identity: Arc<Identity>) -> Front {
    let cfg = &state.config;
    let fence = Perimeter::new(
        cfg.bind,
        cfg.port,
        cfg.perimeter.clone(),
        cfg.max_body_bytes,
    );
    let own = own_routes()
        .layer(Extension(identity))
        .with_state(state.clone());
    Front(Arc::new(Door { state, fence, own }))
}

impl App for Front {
    fn call(
        &self,
        req: Request,
        peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + use<> {
        let door = self.0.clone();
        // Boxed once here: the future holds the whole forward (several KB), and unboxed every
        // move of it on its way into hyper's dispatcher would be a copy of all of it.
        Box::pin(async move { door.admission(req, peer).await })
    }
}

impl Door {
    /// The way in, in order: [`perimeter::admit`], [`access_key::check`], [`perimeter::buffer`];
    /// then the route, and [`perimeter::finish`] on the way out.
    async fn admission(&self, req: Request, peer: SocketAddr) -> Response {
        let (req, class) = match perimeter::admit(&self.fence, req, peer) {
            Ok(admitted) => admitted,
            Err(refused) => return *refused,
        };
        if let Err(denied) = access_key::check(&self.state, &self.fence, &req, peer) {
            return denied.answer().await;
        }
        let (req, permit) = match perimeter::buffer(&self.state, &self.fence, req).await {
            Ok(buffered) => buffered,
            Err(refused) => return *refused,
        };
        let resp = if OWN_ROUTES.contains(&req.uri().path()) {
            self.own.call(req, peer).await
        } else {
            proxy::forward(&self.state, req).await
        };
        drop(permit);
        perimeter::finish(class, resp)
    }
}

/// The handler of one of [`OWN_ROUTES`].
fn own_route(path: &str) -> Option<MethodRouter<Arc<GatewayState>>> {
    Some(match path {
        "/health" => get(health),
        "/" => get(super::page::handler),
        "/status" => get(super::page::status),
        "/metrics" => get(super::page::metrics),
        "/backend-api/wham/usage" | "/api/codex/usage" => get(super::usage_answer::pooled),
        "/oauth/token" => post(super::token_endpoint::gateway_handle),
        _ => return None,
    })
}

/// The gateway's own endpoints, [`OWN_ROUTES`].
fn own_routes() -> Router<Arc<GatewayState>> {
    OWN_ROUTES
        .iter()
        .fold(Router::new(), |router, path| match own_route(path) {
            Some(route) => router.route(path, route),
            None => router,
        })
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
