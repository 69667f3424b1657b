//! What one gateway WebSocket carries between frames: the [`Session`] of one downstream socket
//! (its lifecycle is [`super::ws`]) and the [`Turn`] of one request frame (served on an
//! account by [`super::ws_turn`]).

use std::collections::VecDeque;
use std::sync::Arc;

use http::HeaderMap;

use super::state::GatewayState;
use super::ws_keepalive::Quiet;
use super::ws_socket::Text;
use super::ws_upstream::Upstream;
use crate::policy::ws::{Mirror, Request};

/// One downstream socket and its upstream side.
pub(super) struct Session {
    pub state: Arc<GatewayState>,
    /// The upstream socket, on the account serving this session.
    pub up: Option<Upstream>,
    /// `ws(s)://` URL of the model path upstream.
    pub url: String,
    /// The client's handshake headers, cleaned (no credentials, no hop-by-hop headers).
    pub base: HeaderMap,
    /// The routing session key (session-id / thread-id, else one per socket).
    pub session: String,
    pub mirror: Mirror,
    /// Frames Codex sent while a turn was in flight, handled after it.
    pub pending: VecDeque<Text>,
    /// Downstream is gone, or must be closed so that Codex reconnects.
    pub ended: bool,
    /// Something final of the current turn reached Codex.
    pub answered: bool,
    /// When Codex last heard from this socket (keepalive frames while a turn shows nothing).
    pub quiet: Quiet,
}

/// The request of one turn.
pub struct Turn {
    /// The frame as Codex sent it (forwarded byte for byte when it can go natively).
    pub text: Text,
    /// The frame parsed (`None`: not JSON; forwarded as is).
    pub req: Option<Request>,
    /// Its full form from the mirror (`None`: a delta the mirror cannot expand).
    pub full: Option<Request>,
}
