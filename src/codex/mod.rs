//! Everything about Codex itself.
pub mod auth;
pub mod config_edit;
pub mod identity;
pub mod launch;
pub mod scan;
pub mod session;
pub mod shim;
pub mod stdin_tee;
