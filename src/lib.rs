//! cao: the Codex account orchestrator.
//!
//! Data flows one way: an edge (`commands`, `gateway`) loads state through [`store`], asks
//! [`policy`] what to do, does it, and hands the result to [`render`] or back to the client.
pub mod cli;
pub(crate) mod clock;
pub mod codex;
#[allow(clippy::print_stdout, clippy::print_stderr)] // commands are the edge that prints
pub mod commands;
pub use cao_policy::duration;
pub mod gateway;
pub mod logging;
pub mod mock;
pub mod net;
pub mod os;
pub(crate) mod pem;
pub use cao_policy as policy;
pub(crate) mod render;
pub mod shared;
pub mod store;
pub mod wire;
