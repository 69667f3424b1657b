//! The local gateway, in rooms along a request's path (`docs/architecture.md` walks it):
//! [`front`] (the door: perimeter, access key, body budget, own routes), [`forward`] (the HTTP
//! phases) or [`ws`] (a WebSocket session and its turns), [`pool`] (the accounts, their state,
//! session pins, replicas), [`tokens`] (custody), [`usage`] (the usage endpoint, asked and
//! answered), [`tls`] (the loopback CA and leaf), [`pages`] (the gateway's own pages), and
//! [`start`] (spawn, the handle, the background tasks). Below them: [`config`], and
//! `crate::net` for what the mock uses too.
pub mod config;
pub(crate) mod error;
pub(crate) mod forward;
pub(crate) mod front;
pub(crate) mod identity;
pub(crate) mod metrics;
pub mod pages;
pub mod pool;
pub mod running;
pub mod start;
pub mod tls;
pub mod tokens;
pub mod usage;
pub(crate) mod ws;

pub use config::{GatewayConfig, Overrides};
pub use pool::GatewayState;
pub use running::LiveGateway;
pub use start::{DRAIN_TIMEOUT, GatewayHandle, spawn};
