//! Command-line definitions (clap derive). No behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::policy::strategy::Strategy;

/// cao: run the OpenAI Codex CLI across several ChatGPT accounts.
///
/// When one account's usage limit is spent, Codex keeps working on the next one.
#[derive(Debug, Parser)]
#[command(name = "cao", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Examples:\n  cao add work\n  cao run -- exec \"summarize README\"\n  cao gateway start\n  cao status --doctor\n\nData dir: --data-dir, else $CAO_DATA_DIR, else ~/.codex-account-orchestrator"
)]
pub struct Cli {
    /// Data directory holding the accounts [default: $CAO_DATA_DIR, else
    /// ~/.codex-account-orchestrator]. Accepted by every command; `demo` (a temporary one),
    /// `mock-upstream`, `completions` and `gateway state-key` do not use it
    #[arg(long, global = true, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the gateway options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a new account and log it in with `codex login`
    Add(AddArgs),
    /// List registered accounts (`*` marks the default)
    List(ListArgs),
    /// Show the current default account
    Current(ListArgs),
    /// Switch the default account (interactive picker if no name is given)
    Switch(SwitchArgs),
    /// Set the default account
    Use(UseArgs),
    /// Remove an account from the rotation
    Remove(RemoveArgs),
    /// Import accounts from other tools
    #[command(subcommand)]
    Import(ImportCommand),
    /// Show every account: login, token expiry, usage, cooldown, failures
    Status(StatusArgs),
    /// Deprecated: use `cao status --doctor`
    #[command(hide = true)]
    Doctor(DoctorArgs),
    /// Deprecated: use `cao status --report`
    #[command(hide = true)]
    Report(ReportArgs),
    /// Run codex, falling back to the next account when a usage limit is hit
    Run(RunArgs),
    /// Manage the local gateway (a proxy that switches accounts mid-session)
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Show the whole product offline in seconds: mock upstream, gateway, account switch
    Demo(DemoArgs),
    /// Run the mock Codex upstream with fault injection (for testing your set-up)
    MockUpstream(MockUpstreamArgs),
    /// Print shell completions
    Completions(CompletionsArgs),
}

impl Command {
    /// Whether this command serves requests or runs Codex for a long time, so logging must
    /// never block it (see `logging::init`).
    pub fn logs_on_hot_path(&self) -> bool {
        matches!(
            self,
            Command::Run(_)
                | Command::Gateway(GatewayCommand::Start(_))
                | Command::Demo(_)
                | Command::MockUpstream(_)
        )
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao add work                   create the account and log in with the browser\n  cao add personal --device-auth log in with a device code (no browser on this machine)\n  cao add spare --no-login       create it now, log in later with `cao add spare`"
)]
pub struct AddArgs {
    /// Account name: 1-64 letters, digits, '-' or '_'
    pub name: String,
    /// Path to the codex binary
    #[arg(long, default_value = "codex", value_name = "PATH")]
    pub codex: String,
    /// Create the account without logging in
    #[arg(long, conflicts_with = "device_auth")]
    pub no_login: bool,
    /// Log in with the device-code flow (`codex login --device-auth`)
    #[arg(long)]
    pub device_auth: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao list\n  cao list --json | jq -r '.[] | select(.state == \"ready\") | .name'"
)]
pub struct ListArgs {
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao switch            pick on the terminal: type to filter, a number or ↑/↓ and Enter; Esc cancels (exit 1)\n  cao switch work       make `work` the default"
)]
pub struct SwitchArgs {
    /// Account to make the default; omit for an interactive picker
    pub name: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  cao use work")]
pub struct UseArgs {
    /// Account to make the default
    pub name: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao remove old             asks before deleting its credentials\n  cao remove old --yes       no question (scripts)\n  cao remove old --keep-files  only unregister it"
)]
pub struct RemoveArgs {
    /// Account to remove
    pub name: String,
    /// Keep the account's directory (auth.json, config.toml) on disk
    #[arg(long)]
    pub keep_files: bool,
    /// Do not ask for confirmation before deleting the account's credentials
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import account snapshots written by codex-auth (~/.codex/accounts/*.json)
    CodexAuth(ImportCodexAuthArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao import codex-auth                           every ~/.codex/accounts/*.json\n  cao import codex-auth --source ~/backup/accounts --default work\n  cao import codex-auth --overwrite               replace existing auth.json files"
)]
pub struct ImportCodexAuthArgs {
    /// Directory holding the *.json snapshots [default: ~/.codex/accounts]
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// Overwrite existing auth.json files
    #[arg(long)]
    pub overwrite: bool,
    /// Treat this account as the active one during import
    #[arg(long, value_name = "NAME")]
    pub current: Option<String>,
    /// Set this account as the default after import
    #[arg(long, value_name = "NAME")]
    pub default: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// Warn when a token expires within this many hours
    #[arg(long, default_value_t = 24, value_name = "HOURS")]
    pub expires_within_hours: u64,
    /// Warn when an account has this many consecutive failures
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub max_failures: u32,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao status                  the dashboard (one line per account when piped)\n  cao status work             everything about one account\n  cao status --doctor         health check: exit 0 ok, 1 warnings, 2 errors\n  cao status --json | jq '.[] | select(.cooldownRemainingMs > 0) | .name'\n  cao status --report > accounts.md    shareable: no emails, ids or paths\n  cao status --watch          live, from the running gateway"
)]
pub struct StatusArgs {
    /// Show only this account, with every detail
    #[arg(value_name = "NAME", conflicts_with_all = ["doctor", "report", "watch"])]
    pub account: Option<String>,
    /// Output account status as JSON
    #[arg(long, conflicts_with_all = ["compact", "pretty", "full", "watch"])]
    pub json: bool,
    /// One line per account
    #[arg(long, conflicts_with_all = ["pretty", "full", "doctor", "report", "watch"])]
    pub compact: bool,
    /// Framed dashboard (the default on a terminal)
    #[arg(long, conflicts_with_all = ["full", "doctor", "report"])]
    pub pretty: bool,
    /// Verbose multi-line view per account
    #[arg(long, conflicts_with_all = ["doctor", "report", "watch"])]
    pub full: bool,
    /// Run health checks; exit 0 ok, 1 warnings, 2 errors
    #[arg(long, conflicts_with_all = ["report", "watch"])]
    pub doctor: bool,
    /// Generate a shareable report (md or json)
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "md", value_name = "FORMAT", conflicts_with_all = ["json", "watch"])]
    pub report: Option<ReportFormat>,
    /// With --report: also include emails, account ids and paths
    #[arg(long, requires = "report")]
    pub private: bool,
    /// Redraw the dashboard in place every few seconds (from the running gateway if any); q or
    /// Ctrl-C quits
    #[arg(long)]
    pub watch: bool,
    /// Seconds between redraws with --watch
    #[arg(long, default_value_t = 2, value_name = "SECONDS", requires = "watch", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
    /// Ask the backend's usage endpoint about every logged-in account first (no gateway needed)
    #[arg(long)]
    pub refresh: bool,
    /// Upstream base URL for --refresh (same meaning as `gateway start --base-url`; default: the
    /// saved gateway option, else https://chatgpt.com/backend-api/codex)
    #[arg(long, value_name = "URL", requires = "refresh")]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub health: HealthArgs,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output health check results as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub health: HealthArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Everything after `--` goes to codex untouched, e.g.\n  cao run -- exec \"summarize README\"\n  cao run --account work -- resume --last"
)]
pub struct RunArgs {
    /// Run with this account only
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Path to the codex binary
    #[arg(long, default_value = "codex", value_name = "PATH")]
    pub codex: String,
    /// Run only the default (or --account) account; never fall back to another
    #[arg(long)]
    pub no_fallback: bool,
    /// Passes over all accounts when every one hits its limit
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_passes: u32,
    /// Seconds to wait between passes
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub retry_delay: u64,
    /// When every account is cooling down, wait for the soonest reset instead of exiting
    #[arg(long)]
    pub wait: bool,
    /// Route Codex through the gateway (starting one for this run if none answers); the
    /// gateway switches accounts, so CLI fallback options do not apply
    #[arg(long, conflicts_with_all = ["no_fallback", "max_passes", "retry_delay", "wait"])]
    pub gateway: bool,
    /// Gateway URL for --gateway [default: the running gateway, else the address saved in
    /// gateway.json, else http://127.0.0.1:4319]
    #[arg(long, value_name = "URL", requires = "gateway", value_parser = parse_http_url)]
    pub gateway_url: Option<String>,
    /// Arguments for codex (after `--`)
    #[arg(last = true, allow_hyphen_values = true, value_name = "CODEX_ARGS")]
    pub codex_args: Vec<String>,
}

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

/// `--strategy` takes the policy's own spellings ([`Strategy::as_str`]).
impl ValueEnum for Strategy {
    fn value_variants<'a>() -> &'a [Self] {
        &Strategy::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
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
    pub access_key_file: Option<std::path::PathBuf>,
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
    #[arg(long, value_enum)]
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
    /// Persist these options to gateway.json
    #[arg(long)]
    pub save: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao gateway status\n  cao gateway status --json | jq .running.url   where the running gateway listens"
)]
pub struct GatewayStatusArgs {
    /// Output JSON
    #[arg(long)]
    pub json: bool,
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
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao gateway disable     restore config.toml as it was and remove the shim"
)]
pub struct GatewayDisableArgs {}

#[derive(Debug, Args)]
pub struct GatewayVerifyArgs {
    /// Gateway base URL [default: the address saved in gateway.json, else http://127.0.0.1:4319]
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub url: Option<String>,
    /// Print nothing when the gateway is verified
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct GatewayStateKeyArgs {
    /// Where to write the new key (0600; an existing file is never overwritten)
    #[arg(value_name = "PATH")]
    pub path: std::path::PathBuf,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao demo\n  cao demo --keep    then look around with the printed `cao --data-dir ... status`"
)]
pub struct DemoArgs {
    /// Keep the temporary data dir afterwards
    #[arg(long)]
    pub keep: bool,
    /// Also drive the real codex (from PATH) through the demo gateway
    #[arg(long)]
    pub with_codex: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao mock-upstream --port 4400\n  cao mock-upstream --scenario docs/scenario-example.json   (see docs/mock-upstream.md)"
)]
pub struct MockUpstreamArgs {
    /// Address to bind
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: String,
    /// Port (0 picks a free one and prints it)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Scenario file (JSON) with per-account faults; see docs/mock-upstream.md
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples (where each shell looks for them):\n  cao completions bash > ~/.local/share/bash-completion/completions/cao\n  cao completions zsh > ~/.zfunc/_cao        (with fpath+=~/.zfunc before compinit in ~/.zshrc)\n  cao completions fish > ~/.config/fish/completions/cao.fish\n  cao completions powershell >> $PROFILE"
)]
pub struct CompletionsArgs {
    /// Shell to generate completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `--bind`: an IP address (`127.0.0.1`, `::1`, `0.0.0.0`), kept as text for the config.
fn parse_ip(text: &str) -> Result<String, String> {
    text.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("{text:?} is not an IP address (e.g. 127.0.0.1 or ::1)"))
}

/// URL options: an absolute `http://` or `https://` URL with a host.
fn parse_http_url(text: &str) -> Result<String, String> {
    match url::Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(text.trim().to_string())
        }
        Ok(_) => Err(format!("{text:?} is not an http:// or https:// URL")),
        Err(e) => Err(format!(
            "{text:?} is not a URL ({e}); write it like http://127.0.0.1:4319"
        )),
    }
}

/// `--switch-at`: a percentage above 0 and at most 100.
fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        Ok(_) => Err(format!("{text} is not a percentage between 1 and 100")),
        Err(_) => Err(format!("{text:?} is not a number (e.g. 98)")),
    }
}
