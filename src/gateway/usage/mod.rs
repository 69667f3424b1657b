//! The usage endpoint, both ways: asking it about accounts ([`poll`]: one account, all of
//! them, the background poller) and answering Codex's usage calls with the pool's
//! ([`pooled`]).
pub mod poll;
pub(crate) mod pooled;
