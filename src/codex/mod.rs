//! Everything about Codex itself.
pub mod auth;
pub mod config_edit;
pub mod scan;
