//! Everything about Codex itself.
pub(crate) mod app_env;
pub mod config_edit;
pub mod identity;
pub(crate) mod launch;
pub(crate) mod on_path;
pub(crate) mod scan;
pub(crate) mod session;
pub mod shim;
pub(crate) mod stdin_tee;

/// The environment variable Codex reads for extra root certificates (PEM), before
/// `SSL_CERT_FILE` (codex-rs `codex-client/src/custom_ca.rs`).
pub(crate) const CODEX_CA_ENV: &str = "CODEX_CA_CERTIFICATE";

/// The environment variable Codex reads for the URL it refreshes its tokens at (codex-rs
/// `login/src/auth/manager.rs`; present in the 0.171.0 binary). cao points it at its own token
/// custody: `cao run`'s loopback broker, or the gateway's `/oauth/token` (the shim).
pub const REFRESH_TOKEN_URL_ENV: &str = "CODEX_REFRESH_TOKEN_URL_OVERRIDE";
