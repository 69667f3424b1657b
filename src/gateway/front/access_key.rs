//! The middleware that checks the gateway's access key ([`crate::gateway::config::key_source`] says where it
//! comes from), logging failures with the peer's address and answering each address more
//! slowly with every failure in a row ([`crate::gateway::front::perimeter::FailedAttempts`]).

use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{Method, header};
use subtle::ConstantTimeEq;

use crate::gateway::error::GatewayError;
use crate::gateway::forward::prepare::ACCESS_KEY;
use crate::gateway::front::perimeter::Perimeter;
use crate::gateway::pool::state::GatewayState;
use crate::policy::perimeter as rules;

/// When an access key is set, every request but `/health` and the page itself must carry it:
/// as `x-cao-key`, or as `Authorization: Bearer <key>` when the client's Authorization is not
/// passed through. Compared in constant time; failures are logged with the peer and answered
/// ([`Denied::answer`]) more slowly each time from the same address.
pub fn check(
    state: &GatewayState,
    p: &Perimeter,
    req: &Request,
    peer: std::net::SocketAddr,
) -> Result<(), Denied> {
    let Some(key) = state.config.access_key.as_deref() else {
        return Ok(());
    };
    // The status page itself holds no data (it sends the key from `/#key=...` to /status).
    if req.uri().path() == "/health" || (req.uri().path() == "/" && req.method() == Method::GET) {
        return Ok(());
    }
    let h = req.headers();
    let given = h.get(&ACCESS_KEY).map(|v| v.as_bytes()).or_else(|| {
        (!state.config.passthrough_auth)
            .then(|| h.get(header::AUTHORIZATION))
            .flatten()
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    });
    let ok = given.is_some_and(|g| bool::from(g.ct_eq(key.as_bytes())));
    if ok {
        p.attempts.clear(peer.ip());
        return Ok(());
    }
    let count = p.attempts.note(peer.ip());
    let delay = rules::failure_delay_ms(count);
    tracing::warn!(
        peer = %peer,
        path = %req.uri().path(),
        failures = count,
        delay_ms = delay,
        "access key missing or wrong"
    );
    Err(Denied { delay_ms: delay })
}

/// A request without the right key: answered after a delay that grows with each failure in a
/// row from the same address.
#[derive(Debug)]
pub struct Denied {
    delay_ms: u64,
}

impl Denied {
    /// Wait out the delay, then say 401.
    pub async fn answer(self) -> Response {
        if self.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        }
        GatewayError::InvalidAccessKey.into_response()
    }
}
