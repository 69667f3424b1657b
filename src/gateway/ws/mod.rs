//! Responses over WebSocket, Codex's own transport, kept end to end: the upgrade and the
//! [`session`] of one downstream socket, each [`turn`] routed over the accounts, the
//! [`keepalive`] frames Codex hears while a turn shows nothing, and the [`upstream`] socket.
pub(crate) mod keepalive;
pub(crate) mod session;
pub(crate) mod turn;
pub(crate) mod upstream;
