//! The WebSocket wire: the framed socket with permessage-deflate, the server side of the
//! handshake and the client side.
pub mod client;
pub mod server;
pub mod socket;

pub use socket::{Msg, Socket, Text};
