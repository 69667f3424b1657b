//! State that several gateways share (`cao gateway start --state redis://…`): the Redis
//! client and its atomic steps ([`redis`]), how it connects (TLS, a private CA, what a failed
//! connect means: [`connect`]), what can go wrong ([`error`]) and the sealing of token sets at rest
//! ([`seal`]).
//! Without `--state` nothing here runs: the data dir is the embedded default.

pub mod connect;
pub(crate) mod custody;
pub mod error;
pub mod redis;
pub mod seal;
