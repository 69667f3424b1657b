//! The `cao gateway` command line (clap derive): `start`, `status`, `enable`, `disable`, `verify`
//! and `state-key`. No behaviour lives here.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};

use super::{DataDirArg, parse_http_url};
use crate::policy::strategy::Strategy;

// Parsed once per run: the size of the `start` options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Start the local gateway
    Start(Box<GatewayStartArgs>),
    /// Show gateway config and account readiness (and the live view when it runs)
    Status(GatewayStatusArgs),
    /// Route ~/.codex (or $CODEX_HOME) through the gateway and install a codex shim
    Enable(GatewayEnableArgs),
    /// Undo `gateway enable`: restore config.toml and remove the shim
    Disable(GatewayDisableArgs),
    /// Check that the gateway at a URL is this user's cao gateway (the shim runs it before Codex)
    #[command(hide = true)]
    Verify(GatewayVerifyArgs),
    /// Create the key file for `--state-key-file` (several gateways sharing one pool)
    #[command(
        after_help = "Examples:\n  cao gateway state-key ~/.config/cao/state.key\n  \
        # copy the file (0600) to every replica, then on each:\n  \
        cao gateway start --state redis://redis.internal:6379/0 --state-key-file ~/.config/cao/state.key --save"
    )]
    StateKey(GatewayStateKeyArgs),
}

/// `--strategy` takes the policy's own spellings ([`Strategy::as_str`]), listed in `--help`.
fn strategy_parser() -> impl TypedValueParser<Value = Strategy> {
    PossibleValuesParser::new(Strategy::ALL.map(Strategy::as_str))
        .try_map(|s| s.parse::<Strategy>())
}

/// `cao gateway start` options. Every value is optional here so that unset flags fall back to
/// `gateway.json`, then to the defaults.
#[derive(Debug, Clone, Default, Args)]
#[command(
    after_help = "Examples:\n  cao gateway start                     on 127.0.0.1:4319\n  cao gateway start --port 0 --save     a free port, remembered in gateway.json\n  cao gateway start --strategy least-used --switch-at 90\n  cao gateway start --bind 0.0.0.0 --access-key \"$(openssl rand -hex 16)\"\n\nThen: `cao gateway enable` routes your everyday codex through it, or `cao run --gateway -- ...` one run."
)]
pub struct GatewayStartArgs {
    /// Address to bind; non-loopback needs --access-key [default: 127.0.0.1]
    #[arg(long, value_name = "ADDR", value_parser = parse_ip)]
    pub bind: Option<String>,
    /// Port; 0 picks a free one [default: 4319]
    #[arg(long)]
    pub port: Option<u16>,
    /// Upstream base URL [default: https://chatgpt.com/backend-api/codex]
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub base_url: Option<String>,
    /// Cooldown for a spent account when upstream gives no reset time [default: 900]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub cooldown_seconds: Option<u64>,
    /// Passes over all accounts per request [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_retry_passes: Option<u32>,
    /// Upstream request timeout [default: 120000]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: Option<u64>,
    /// Retries for upstream 5xx and connection errors [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=20))]
    pub upstream_retries: Option<u32>,
    /// Base delay of the exponential retry backoff [default: 200]
    #[arg(long, value_name = "MS")]
    pub upstream_retry_base_ms: Option<u64>,
    /// Maximum retry delay [default: 2000]
    #[arg(long, value_name = "MS")]
    pub upstream_retry_max_ms: Option<u64>,
    /// Random jitter added to each retry delay [default: 120]
    #[arg(long, value_name = "MS")]
    pub upstream_retry_jitter_ms: Option<u64>,
    /// Do not replace the client's Authorization header
    #[arg(long)]
    pub passthrough_auth: bool,
    /// Accepted for compatibility; changes nothing here (Codex ignores OPENAI_BASE_URL for
    /// ChatGPT logins): `cao gateway enable` routes the desktop app and exports its
    /// CODEX_CA_CERTIFICATE (`cao gateway enable --no-app-env` does not)
    #[arg(long)]
    pub no_app_env: bool,
    /// OAuth token endpoint for refreshes [default: https://auth.openai.com/oauth/token]
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub token_url: Option<String>,
    /// OAuth client id for refreshes [default: the Codex CLI's]
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Access key clients must send (required to bind a non-loopback address; at least 16
    /// characters). Prefer CAO_GATEWAY_KEY or --access-key-file: a key on the command line is
    /// visible to every user in `ps`. `--access-key generate` makes one and prints it once
    #[arg(
        long,
        env = "CAO_GATEWAY_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub access_key: Option<String>,
    /// Read the access key from this file (first line; keep it 0600)
    #[arg(long, value_name = "PATH", conflicts_with = "access_key")]
    pub access_key_file: Option<PathBuf>,
    /// Another name the gateway answers to besides 127.0.0.1, localhost and [::1] (`name` or
    /// `name:port`; repeatable), e.g. behind a reverse proxy
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Request bytes all clients together may have buffered in the gateway [default: 268435456 (256 MB)]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_buffered_bytes: Option<u64>,
    /// Time a client has to send a request's headers, and the idle keep-alive limit [default: 30000]
    #[arg(long, value_name = "MS", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: Option<u64>,
    /// Time a client has to send a whole request body [default: 60000]
    #[arg(long, value_name = "MS", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_ms: Option<u64>,
    /// Largest request body accepted [default: 67108864 (64 MB)]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_body_bytes: Option<u64>,
    /// End a stream that stays silent this long [default: 300000]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_ms: Option<u64>,
    /// How new sessions pick an account [default: fill-first]
    #[arg(long, value_parser = strategy_parser())]
    pub strategy: Option<Strategy>,
    /// Stop giving new sessions to an account whose window is this full, 1-100 [default: 98]
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub switch_at: Option<f64>,
    /// Share one pool with other gateways through Redis (redis:// or rediss://; see
    /// docs/replicas.md)
    #[arg(long = "state", value_name = "URL", env = "CAO_STATE_URL")]
    pub state_url: Option<String>,
    /// The 0600 file holding the key that seals tokens in the shared state (the same file on
    /// every replica; `cao gateway state-key PATH` makes one)
    #[arg(long, value_name = "PATH")]
    pub state_key_file: Option<String>,
    /// Trust these CA certificates (PEM) for a rediss:// --state URL instead of the web PKI
    /// roots (a Redis with a private CA)
    #[arg(long, value_name = "PATH", env = "CAO_STATE_CA_FILE")]
    pub state_ca_file: Option<String>,
    /// Ask the usage endpoint about idle accounts every this many seconds, one account at a
    /// time (0 turns it off; below 60 warns) [default: 300]
    #[arg(long, value_name = "SECONDS")]
    pub usage_poll: Option<u64>,
    /// Answer Codex's WebSocket upgrade with 426, so it uses HTTP for the whole session (the
    /// behaviour before the gateway spoke Responses over WebSocket)
    #[arg(long)]
    pub no_websocket: bool,
    /// While a WebSocket turn has nothing to show Codex yet (switching accounts, waiting for
    /// the first output), send Codex a keepalive text frame this often; Codex's idle timer
    /// ignores pings [default: 10000]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_keepalive_ms: Option<u64>,
    /// Also trust the CA certificates in this PEM file for the upstream (--base-url,
    /// --token-url), besides the public roots: a TLS-inspecting proxy, or a test upstream
    #[arg(long, value_name = "PATH")]
    pub upstream_ca_file: Option<String>,
    /// Persist these options to gateway.json
    #[arg(long)]
    pub save: bool,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao gateway status\n  cao gateway status --json | jq .running.url   where the running gateway listens"
)]
pub struct GatewayStatusArgs {
    /// Output JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao gateway enable                          the running gateway (or the saved address)\n  cao gateway enable --base-url http://127.0.0.1:5000\n  CODEX_HOME=~/work-codex cao gateway enable  another Codex home\n\nUndo with `cao gateway disable`."
)]
pub struct GatewayEnableArgs {
    /// Gateway base URL Codex should use [default: the address saved in gateway.json, else
    /// 127.0.0.1:4319, over https:// (the same port serves both)]
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub base_url: Option<String>,
    /// Do not export CODEX_CA_CERTIFICATE to GUI apps (the desktop app, IDEs): `launchctl
    /// setenv` on macOS, the systemd user environment and ~/.config/environment.d on Linux;
    /// an earlier export is put back
    #[arg(long, env = "CAO_NO_APP_ENV", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_app_env: bool,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao gateway disable     restore config.toml as it was and remove the shim"
)]
pub struct GatewayDisableArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct GatewayVerifyArgs {
    /// Gateway base URL [default: the address saved in gateway.json, else http://127.0.0.1:4319]
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub url: Option<String>,
    /// Print nothing when the gateway is verified
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct GatewayStateKeyArgs {
    /// Where to write the new key (0600; an existing file is never overwritten)
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// `--bind`: an IP address (`127.0.0.1`, `::1`, `0.0.0.0`), kept as text for the config.
fn parse_ip(text: &str) -> Result<String, String> {
    text.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("{text:?} is not an IP address (e.g. 127.0.0.1 or ::1)"))
}

/// `--switch-at`: a percentage above 0 and at most 100.
fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        Ok(_) => Err(format!("{text} is not a percentage between 1 and 100")),
        Err(_) => Err(format!("{text:?} is not a number (e.g. 98)")),
    }
}
