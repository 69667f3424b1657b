//! Everything about Codex itself.
pub mod app_env;
pub mod config_edit;
pub mod identity;
pub mod launch;
pub mod scan;
pub mod session;
pub mod shim;
pub mod stdin_tee;

/// The environment variable Codex reads for extra root certificates (PEM), before
/// `SSL_CERT_FILE` (codex-rs `codex-client/src/custom_ca.rs`).
pub const CODEX_CA_ENV: &str = "CODEX_CA_CERTIFICATE";
