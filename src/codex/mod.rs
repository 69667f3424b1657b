//! Everything about Codex itself.
pub mod auth;
