//! The gateway's own pages: `GET /` ([`page`]), `GET /health` ([`health`]), `GET /status`
//! ([`status`]) and `GET /metrics` ([`prometheus`]).
pub(crate) mod health;
pub mod page;
pub(crate) mod prometheus;
pub mod status;
