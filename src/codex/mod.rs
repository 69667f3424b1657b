//! Everything about Codex itself.
pub mod auth;
pub mod scan;
