//! State that several gateways share (`cao gateway start --state redis://…`): the Redis
//! client and its atomic steps ([`redis`]) and the sealing of token sets at rest ([`seal`]).
//! Without `--state` nothing here runs: the data dir is the embedded default.

pub mod custody;
pub mod redis;
pub mod seal;
