//! Forwarding, in named phases (like pingora's): every method and path that is not one of the
//! gateway's own routes goes upstream with the chosen account's credentials.
//!
//! 1. [`prepare`]: limits, the upstream URL, header hygiene, the session: a
//!    [`Replay`](prepare::Replay).
//! 2. [`attempt`]: one account: credentials, send, classify ([`crate::policy::upstream`]).
//! 3. [`passes`]: the loop over accounts ([`crate::policy::route::choose`] picks each one)
//!    and the final answer ([`Served`]).
//!
//! [`request`] ties the phases together for one HTTP request and logs it.
pub(crate) mod attempt;
pub(crate) mod held;
pub(crate) mod passes;
pub(crate) mod prepare;
pub(crate) mod request;
pub(crate) mod sse_first;

pub use passes::Served;
pub use prepare::{ACCESS_KEY_HEADER, upstream_url};
pub use request::forward;
