//! Command-line definitions (clap derive). No behaviour lives here; the `gateway` commands are
//! in [`gateway`].

pub(crate) mod gateway;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use gateway::GatewayCommand;

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
    /// ~/.codex-account-orchestrator], for the commands that use it (they also take it after
    /// their name); `demo`, `mock-upstream`, `completions` and `gateway state-key` ignore it
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// `--data-dir` after the name of a command that reads or writes the accounts (flattened into
/// each one's options, so the commands that ignore it do not offer it).
#[derive(Debug, Clone, Default, Args)]
pub struct DataDirArg {
    /// Data directory holding the accounts [default: $CAO_DATA_DIR, else
    /// ~/.codex-account-orchestrator]
    #[arg(long = "data-dir", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

impl Cli {
    /// The data dir asked for: after the command's name, else before it, else none (then
    /// `CAO_DATA_DIR` or the default decides).
    pub fn data_dir(&self) -> Option<&Path> {
        self.command
            .data_dir()
            .and_then(|d| d.path.as_deref())
            .or(self.data_dir.as_deref())
    }
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
    /// The `--data-dir` option of this command; `None` for the commands that do not read the
    /// accounts (`demo` uses a temporary data dir of its own).
    pub fn data_dir(&self) -> Option<&DataDirArg> {
        use GatewayCommand as G;
        match self {
            Command::Add(a) => Some(&a.data_dir),
            Command::List(a) | Command::Current(a) => Some(&a.data_dir),
            Command::Switch(a) => Some(&a.data_dir),
            Command::Use(a) => Some(&a.data_dir),
            Command::Remove(a) => Some(&a.data_dir),
            Command::Import(ImportCommand::CodexAuth(a)) => Some(&a.data_dir),
            Command::Status(a) => Some(&a.data_dir),
            Command::Doctor(a) => Some(&a.data_dir),
            Command::Report(a) => Some(&a.data_dir),
            Command::Run(a) => Some(&a.data_dir),
            Command::Gateway(G::Start(a)) => Some(&a.data_dir),
            Command::Gateway(G::Status(a)) => Some(&a.data_dir),
            Command::Gateway(G::Enable(a)) => Some(&a.data_dir),
            Command::Gateway(G::Disable(a)) => Some(&a.data_dir),
            Command::Gateway(G::Verify(a)) => Some(&a.data_dir),
            Command::Gateway(G::StateKey(_))
            | Command::Demo(_)
            | Command::MockUpstream(_)
            | Command::Completions(_) => None,
        }
    }

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
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao list\n  cao list --json | jq -r '.[] | select(.state == \"ready\") | .name'"
)]
pub struct ListArgs {
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cao switch            pick on the terminal: type to filter, a number or ↑/↓ and Enter; Esc cancels (exit 1)\n  cao switch work       make `work` the default"
)]
pub struct SwitchArgs {
    /// Account to make the default; omit for an interactive picker
    pub name: Option<String>,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  cao use work")]
pub struct UseArgs {
    /// Account to make the default
    pub name: String,
    #[command(flatten)]
    pub data_dir: DataDirArg,
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
    #[command(flatten)]
    pub data_dir: DataDirArg,
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
    #[command(flatten)]
    pub data_dir: DataDirArg,
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
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output health check results as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub health: HealthArgs,
    #[command(flatten)]
    pub data_dir: DataDirArg,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    #[command(flatten)]
    pub data_dir: DataDirArg,
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
    #[command(flatten)]
    pub data_dir: DataDirArg,
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
