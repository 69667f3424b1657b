//! The pool the request handlers share: [`GatewayState`] (accounts, cooldowns, login state,
//! session pins, the batched status writes), each [`account`], the [`sessions`] map, the
//! [`route_memory`], live usage per account ([`usage_tracker`]), an account's
//! [`credentials`] for a request, and the link to other replicas ([`replicas`],
//! [`replica_sync`]).
pub mod account;
pub(crate) mod credentials;
pub(crate) mod replica_sync;
pub mod replicas;
pub(crate) mod route_memory;
pub(crate) mod sessions;
pub mod state;
pub mod usage_tracker;

pub use state::GatewayState;
