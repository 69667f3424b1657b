//! Token custody: the one [`TokenBroker`] every refresh of a login goes through, one
//! [`spend`] of a refresh token, [`send`]ing it to the token endpoint, saving again and
//! [`rescue`] files, and the broker's own token [`endpoint`] for Codex.
pub mod broker;
pub mod endpoint;
pub mod rescue;
pub mod send;
pub mod spend;

pub use broker::{CredError, Presented, TokenBroker, Want};
pub use send::Endpoint;
