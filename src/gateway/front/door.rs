//! The gateway's front door: the admission steps (perimeter, access key, body budget) for every
//! request, then its own routes ([`super::routes`]), the WebSocket room for an upgrade, or
//! forwarding.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::Request;
use axum::response::Response;

use super::access_key;
use super::perimeter::{self, Perimeter};
use super::routes;
use crate::gateway::forward;
use crate::gateway::identity::Identity;
use crate::gateway::pool::state::GatewayState;
use crate::gateway::ws;
use crate::net::server::App;
use crate::net::ws::server::is_upgrade;
use crate::policy::perimeter::own_route;

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
    let own = routes::own_routes()
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
        let resp = if own_route(req.uri().path()).is_some() {
            self.own.call(req, peer).await
        } else if is_upgrade(req.headers()) {
            // Responses over WebSocket (426 with --no-websocket: Codex then uses HTTP).
            let state = &self.state;
            forward::request::logged(state, req, |parts, _| async move {
                forward::Served::local(ws::session::handle(state.clone(), parts).await)
            })
            .await
        } else {
            forward::forward(&self.state, req).await
        };
        drop(permit);
        perimeter::finish(class, resp)
    }
}
