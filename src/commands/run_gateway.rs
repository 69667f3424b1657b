//! `cao run --gateway`: run Codex once, routed through the gateway for this run only.
//!
//! The routing goes on Codex's command line as `-c` overrides
//! ([`crate::codex::config_edit::cli_overrides`]); no file is changed. A gateway at the URL must
//! prove it is this user's ([`super::gateway_routing::require_ours`]); anything else listening
//! there is an error. If nothing listens there, one is started inside this process on a free loopback port with the saved
//! gateway settings (`gateway.json`) and stopped when Codex exits, so one command gives a
//! session that survives account switches. CLI fallback is off: the gateway switches accounts
//! mid-request, which is better than restarting Codex.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::Ctx;
use super::gateway_routing::{
    default_url, needs_ca_bundle, normalize_url, prepare_ca_bundle, require_ours,
};
use super::say::say;
use crate::cli::RunArgs;
use crate::codex::launch::{self, Launch};
use crate::codex::scan::QuotaWatch;
use crate::codex::{config_edit, on_path, shim};
use crate::gateway::{GatewayConfig, GatewayHandle, Overrides};
use crate::policy::codex_args::drop_codex_word;
use crate::policy::order::rotation;
use crate::policy::quota::QuotaClassifier;
use crate::store::{Store, StoreError, fsutil};

/// Where the embedded gateway's request log goes (its stderr lines would garble Codex's screen).
pub const EMBEDDED_LOG_FILE: &str = "run-gateway.log";

/// `cao run --gateway [--gateway-url URL] -- <codex args>`.
pub fn run(ctx: &Ctx, args: RunArgs, broker_env: Vec<(String, std::ffi::OsString)>) -> Result<i32> {
    let store = &ctx.store;
    let url = match &args.gateway_url {
        Some(u) => normalize_url(u)?,
        None => normalize_url(&default_url(store))?,
    };
    let account = pick_account(store, args.account.as_deref())?;
    let program = real_codex(&args.codex)?;
    if !args.no_fallback {
        say("CLI fallback is off with --gateway (the gateway switches accounts itself)");
    }

    let embedded = if require_ours(store, &url)? {
        say(&format!("using your gateway at {url}"));
        None
    } else {
        let gateway = Embedded::start(store)?;
        say(&format!(
            "no gateway answers at {url}; started one for this run at {} (log: {})",
            gateway.url,
            gateway.log.display()
        ));
        Some(gateway)
    };
    let routed_to = embedded.as_ref().map_or(url.as_str(), |g| g.url.as_str());
    // The gateway's HTTPS (which the TUI of a personal account requires) needs cao's CA.
    let mut env = broker_env;
    if needs_ca_bundle(routed_to) {
        let mut warnings = Vec::new();
        let info = prepare_ca_bundle(store, &mut warnings)?;
        for w in warnings {
            say(&w);
        }
        env.push((
            crate::codex::CODEX_CA_ENV.to_string(),
            info.bundle_path.into_os_string(),
        ));
    }

    let mut codex_args = config_edit::cli_overrides(routed_to);
    codex_args.extend(drop_codex_word(&args.codex_args));
    say(&format!("using account {account}'s Codex home"));
    let launch = Launch {
        program,
        args: codex_args,
        codex_home: store.account_dir(&account),
        pty: launch::on_terminal(),
        env,
    };
    launch::catch_signals();
    let watch = QuotaWatch::new(QuotaClassifier::builtin(), jiff::tz::TimeZone::system());
    let outcome = launch::run_once(&launch, watch, &mut |_, _| {});
    let stopped = embedded.map_or(Ok(()), Embedded::stop);
    match (outcome, stopped) {
        (Ok(o), Ok(())) => Ok(o.code),
        // Rotated tokens that could not be saved: fail loudly, naming the rescue file.
        (Ok(_), Err(e)) => Err(e),
        (Err(e), Err(rescue)) => {
            say(&format!("{rescue:#}"));
            Err(e)
        }
        (Err(e), Ok(())) => Err(e),
    }
}

/// The account whose directory Codex gets as `CODEX_HOME` (its auth.json makes Codex start in
/// ChatGPT mode; the gateway puts the serving account's credentials on every request).
fn pick_account(store: &Store, named: Option<&str>) -> Result<String> {
    let registry = store.load_registry()?;
    if let Some(name) = named {
        store.check_name(name)?;
        if !registry.contains(name) {
            return Err(StoreError::UnknownAccount {
                name: name.to_string(),
            }
            .into());
        }
        if !store.auth_path(name).is_file() {
            return Err(StoreError::NotLoggedIn {
                name: name.to_string(),
            }
            .into());
        }
        return Ok(name.to_string());
    }
    if registry.accounts.is_empty() {
        bail!("no accounts registered; add one with `cao add <name>`");
    }
    rotation(&registry.accounts, registry.default_account.as_deref())
        .into_iter()
        .find(|n| store.auth_path(n).is_file())
        .map(str::to_string)
        .context("no account is logged in; log one in with `cao add <name>`")
}

/// `--codex`, but never cao's own shim (it would add a second, possibly different, routing).
fn real_codex(name: &str) -> Result<PathBuf> {
    let found = launch::find_codex(name)?;
    if !shim::file_is_cao_shim(&found) {
        return Ok(found);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    on_path::find_real_codex(&path_var, &found).with_context(|| {
        format!(
            "{} is cao's shim and no other codex is on PATH; pass the real one with --codex",
            found.display()
        )
    })
}

/// A gateway running inside this process for the life of one Codex run.
struct Embedded {
    runtime: tokio::runtime::Runtime,
    handle: GatewayHandle,
    dispatch: tracing::Dispatch,
    url: String,
    log: PathBuf,
}

impl Embedded {
    fn start(store: &Store) -> Result<Self> {
        let options = Overrides {
            bind: Some("127.0.0.1".to_string()),
            port: Some(0),
            ..Overrides::default()
        };
        let config = GatewayConfig::load(store, &options)?;
        let (dispatch, log) = log_to_file(store)?;
        let worker_dispatch = dispatch.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cao-gateway")
            .enable_all()
            .on_thread_start(move || {
                // Runtime threads live as long as the runtime: keep the file logger as their
                // default for good.
                std::mem::forget(tracing::dispatcher::set_default(&worker_dispatch));
            })
            .build()
            .context("could not start the async runtime for the gateway")?;
        let shared = Arc::new(Store::at(store.root()));
        let handle = tracing::dispatcher::with_default(&dispatch, || {
            runtime.block_on(crate::gateway::spawn(shared, config))
        })
        .context("could not start a gateway for this run")?;
        let url = handle.tls_url().unwrap_or_else(|| handle.base_url());
        Ok(Self {
            runtime,
            handle,
            dispatch,
            url,
            log,
        })
    }

    /// Stop accepting, let in-flight requests and token refreshes finish, flush account state.
    /// Fails when rotated tokens could not be saved (they are in the rescue file it names).
    fn stop(self) -> Result<()> {
        let Self {
            runtime,
            handle,
            dispatch,
            ..
        } = self;
        if handle.state().tokens.in_flight() > 0 {
            say("waiting for a token refresh to finish");
        }
        let result =
            tracing::dispatcher::with_default(&dispatch, || runtime.block_on(handle.shutdown()));
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        result.context("the gateway for this run did not stop cleanly")
    }
}

/// A subscriber writing to `<data dir>/run-gateway.log` (0600, appended), filtered by `CAO_LOG`.
fn log_to_file(store: &Store) -> Result<(tracing::Dispatch, PathBuf)> {
    store.ensure_root()?;
    let path = store.root().join(EMBEDDED_LOG_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(fsutil::SECRET_FILE_MODE);
    }
    let file = options
        .open(&path)
        .with_context(|| format!("could not open {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .finish();
    Ok((tracing::Dispatch::new(subscriber), path))
}
