//! The way in: every request passes the [`door`] (the perimeter's checks, the access key, its
//! body buffered under the global budget), then goes to one of the gateway's own routes, to
//! the WebSocket room, or is forwarded.
pub(crate) mod access_key;
pub(crate) mod door;
pub(crate) mod perimeter;
pub(crate) mod routes;
