//! What a caller asks of the gateway on top of `gateway.json` ([`Overrides`]): the command line
//! of `cao gateway start`, or a fixed set such as `cao run --gateway`'s loopback-and-free-port.
//! [`crate::gateway::config::options::GatewayConfig::resolve`] turns it and the saved file into the options the
//! gateway runs with; the access key ([`crate::gateway::config::key_source`]) and the perimeter's options
//! ([`crate::gateway::config::perimeter_options`]) are resolved from it too.

use crate::policy::strategy::Strategy;

/// The environment variable holding the access key (`--access-key`).
pub const ACCESS_KEY_ENV: &str = "CAO_GATEWAY_KEY";

/// What a caller asks for on top of `gateway.json`: `None` / `false` = not asked, the saved
/// value or the default applies.
#[derive(Clone, Default)]
pub struct Overrides {
    pub bind: Option<String>,
    pub port: Option<u16>,
    pub base_url: Option<String>,
    pub cooldown_seconds: Option<u64>,
    pub max_retry_passes: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub upstream_retries: Option<u32>,
    pub upstream_retry_base_ms: Option<u64>,
    pub upstream_retry_max_ms: Option<u64>,
    pub upstream_retry_jitter_ms: Option<u64>,
    pub passthrough_auth: bool,
    pub no_app_env: bool,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub access_key: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub strategy: Option<Strategy>,
    pub switch_at: Option<f64>,
    /// Read the access key from this file instead ([`crate::gateway::config::key_source`]).
    pub access_key_file: Option<std::path::PathBuf>,
    /// Perimeter options: [`crate::gateway::config::perimeter_options::Options`].
    pub allowed_hosts: Vec<String>,
    pub max_buffered_bytes: Option<u64>,
    pub header_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub state_url: Option<String>,
    pub state_key_file: Option<String>,
    pub state_ca_file: Option<String>,
    pub usage_poll_seconds: Option<u64>,
    /// `--no-websocket` (not saved: a switch for one run).
    pub no_websocket: bool,
    /// `--ws-keepalive-ms`: keepalive interval of a WebSocket turn that shows Codex nothing yet.
    pub ws_keepalive_ms: Option<u64>,
    /// `--upstream-ca-file`: extra CA certificates (PEM) trusted for the upstream.
    pub upstream_ca_file: Option<String>,
}

impl Overrides {
    /// Nothing asked but the access key from [`ACCESS_KEY_ENV`]: what a command that talks to
    /// the running gateway (rather than starting one) resolves with.
    pub fn from_env() -> Self {
        Self {
            access_key: std::env::var(ACCESS_KEY_ENV).ok(),
            ..Self::default()
        }
    }
}
