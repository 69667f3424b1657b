//! `cao gateway start|status|enable|disable`. `enable`/`disable` live in `gateway_routing`.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Ctx;
use super::gateway_announce as announce;
use crate::cli::gateway::{
    GatewayDisableArgs, GatewayEnableArgs, GatewayStartArgs, GatewayStateKeyArgs, GatewayStatusArgs,
};
use crate::gateway::{self, GatewayConfig, LiveGateway, Overrides, running};
use crate::policy::account::State as AccountState;
use crate::policy::strategy::DEFAULT_SWITCH_AT;
use crate::render::time;
use crate::store::inspect::{AuthView, Overview};
use crate::store::{SavedGateway, Store};
use crate::wire::{self, Health};

/// The command line of `cao gateway start` as overrides of `gateway.json`.
fn overrides(a: GatewayStartArgs) -> Overrides {
    Overrides {
        bind: a.bind,
        port: a.port,
        base_url: a.base_url,
        cooldown_seconds: a.cooldown_seconds,
        max_retry_passes: a.max_retry_passes,
        timeout_ms: a.timeout_ms,
        upstream_retries: a.upstream_retries,
        upstream_retry_base_ms: a.upstream_retry_base_ms,
        upstream_retry_max_ms: a.upstream_retry_max_ms,
        upstream_retry_jitter_ms: a.upstream_retry_jitter_ms,
        passthrough_auth: a.passthrough_auth,
        no_app_env: a.no_app_env,
        token_url: a.token_url,
        client_id: a.client_id,
        access_key: a.access_key,
        max_body_bytes: a.max_body_bytes,
        idle_timeout_ms: a.idle_timeout_ms,
        strategy: a.strategy,
        switch_at: a.switch_at,
        access_key_file: a.access_key_file,
        allowed_hosts: a.allowed_hosts,
        max_buffered_bytes: a.max_buffered_bytes,
        header_timeout_ms: a.header_timeout_ms,
        body_timeout_ms: a.body_timeout_ms,
        state_url: a.state_url,
        state_key_file: a.state_key_file,
        state_ca_file: a.state_ca_file,
        usage_poll_seconds: a.usage_poll,
        no_websocket: a.no_websocket,
        ws_keepalive_ms: a.ws_keepalive_ms,
        upstream_ca_file: a.upstream_ca_file,
    }
}

/// `cao gateway start`: resolve options, serve until SIGINT/SIGTERM. `--save` writes the
/// options only once the port is bound, with the port actually bound (`--port 0` saves the
/// free port it got). Once listening: one JSON line on stdout
/// ([`super::gateway_announce::Listening`]), the next steps on stderr, and the runtime file.
pub fn start(ctx: &Ctx, a: GatewayStartArgs) -> Result<i32> {
    let save = a.save;
    let asked = overrides(a);
    let saved = ctx.store.load_gateway()?;
    let config = GatewayConfig::resolve(&saved, &asked)?;
    ctx.flush_notices();
    access_key_notes(&asked, &config);
    let poll = config.usage_poll_seconds;
    if poll > 0 && poll < crate::policy::usage_poll::WARN_BELOW_SECONDS {
        eprintln!(
            "warning: --usage-poll {poll} asks the backend about each idle account every {poll}s; every poll is a request the backend sees (300 is the default, 60 the least advised)"
        );
    }
    let options = announce::option_sources(
        &saved,
        &asked,
        &ctx.store.gateway_path().display().to_string(),
    );
    // One thread serves every connection, as one nginx worker does (and as linkerd2-proxy's
    // default runtime): on the forward's hot path it costs 8 % less CPU per request than the
    // multi-thread scheduler with the same work (BENCHMARKS.md). Blocking file and lock work
    // already runs on `spawn_blocking` threads (status flushes, token custody, certificate
    // renewal), which this runtime has as well; one core serves some 35k requests a second.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("cao-gateway")
        .build()
        .context("could not start the async runtime")?;
    let store = Arc::new(Store::at(ctx.store.root()));
    runtime.block_on(async move {
        let upstream = config.base_url.clone();
        let mut to_save = config.clone();
        let mut stops = StopSignals::watch()?;
        let handle = gateway::spawn(store.clone(), config).await?;
        if save {
            to_save.port = handle.local_addr().port();
            to_save.save(&store)?;
            eprintln!("saved the gateway options to {}", store.gateway_path().display());
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", announce::Listening::of(&handle).line())?;
        out.flush()?;
        drop(out);
        // Right after the line (scripts waiting for it should not wait on a disk sync).
        let _record = announce::RuntimeRecord::write(store.clone(), &handle)?;
        eprint!("{}", announce::next_steps(&handle, &upstream, &options, save));
        stops.next().await?;
        eprintln!(
            "cao gateway: stopping (finishing in-flight requests, at most {:?})",
            gateway::DRAIN_TIMEOUT
        );
        let tokens = handle.state().tokens.clone();
        let shutdown = handle.shutdown();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                r = &mut shutdown => {
                    r?;
                    return Ok(0);
                }
                r = stops.next() => {
                    r?;
                    if tokens.in_flight() > 0 {
                        eprintln!("warning: a token refresh is still in flight; stopping now may lose a login (its refresh token may already be spent). Waiting for it to finish; stop with SIGKILL only if you accept that.");
                    } else {
                        eprintln!("cao gateway: still stopping (finishing in-flight requests)");
                    }
                }
            }
        }
    })
}

/// Say where the access key came from when that matters: a key on the command line is visible
/// to every local user (`ps`), a generated one is shown once, a key file others can read.
fn access_key_notes(a: &Overrides, config: &GatewayConfig) {
    use crate::gateway::config::key_source::{self, KeySource};
    use crate::gateway::config::overrides::ACCESS_KEY_ENV;
    match key_source::source_of(a) {
        Some(KeySource::CommandLine) => eprintln!(
            "WARNING: --access-key on the command line is visible to every user of this machine \
             (ps, /proc/*/cmdline). Pass it as {} or with --access-key-file instead.",
            ACCESS_KEY_ENV
        ),
        Some(KeySource::Generated) => {
            if let Some(key) = &config.access_key {
                eprintln!(
                    "generated access key (shown once; clients send it as the x-cao-key header, \
                     cao reads it from {}): {key}",
                    ACCESS_KEY_ENV
                );
            }
        }
        Some(KeySource::File) => {
            if let Some(path) = a
                .access_key_file
                .as_deref()
                .filter(|p| key_source::key_file_too_open(p))
            {
                eprintln!(
                    "warning: {} can be read by other users; make it private: chmod 600 {}",
                    path.display(),
                    path.display()
                );
            }
        }
        Some(KeySource::Environment) | None => {}
    }
}

/// SIGINT and SIGTERM, watched from before the gateway says it listens: a stop that arrives
/// right after the line (a script, a test) ends it cleanly instead of by the default action.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn watch() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate()).context("could not watch SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("could not watch SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) -> Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("could not watch Ctrl-C")?;
        Ok(())
    }
}

/// One account's readiness in `cao gateway status --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Readiness {
    name: String,
    default: bool,
    state: AccountState,
    cooldown_until_ms: Option<i64>,
    /// Why it needs a login (empty otherwise).
    detail: String,
}

/// What a running gateway said, in `cao gateway status --json`.
#[derive(Debug, Serialize)]
struct Live {
    health: Health,
    status: Option<wire::Status>,
}

/// `cao gateway status --json`.
#[derive(Debug, Serialize)]
struct Report {
    config: SavedGateway,
    url: String,
    /// The running gateway's record (pid, the URLs and port it really bound), when one runs.
    running: Option<crate::store::GatewayRuntime>,
    accounts: Vec<Readiness>,
    live: Option<Live>,
    /// Something answers at the gateway's address that could not prove it is this user's
    /// gateway (nothing was sent to it, and nothing it said is shown).
    #[serde(rename = "notOurs", skip_serializing_if = "Option::is_none")]
    not_ours: Option<String>,
}

/// Each account's readiness from the data dir, corrected by the running gateway, which knows
/// cooldowns and login failures before they reach the files.
fn readiness(overview: &Overview, live: Option<&wire::Status>, now: i64) -> Vec<Readiness> {
    overview
        .accounts
        .iter()
        .map(|acc| {
            let mut r = Readiness {
                name: acc.name.clone(),
                default: acc.is_default,
                state: AccountState::Ready,
                cooldown_until_ms: None,
                detail: match &acc.auth {
                    AuthView::Missing => "no auth.json".to_string(),
                    AuthView::Unreadable(_) => "auth.json does not parse".to_string(),
                    AuthView::NoAccess(e) => crate::policy::health::no_access_message(
                        &acc.auth_path.to_string_lossy(),
                        e,
                    ),
                    AuthView::ApiKeyOnly | AuthView::NoTokens => "no ChatGPT login".to_string(),
                    AuthView::LoggedIn if acc.status.needs_login == Some(true) => {
                        REFRESH_REJECTED.to_string()
                    }
                    AuthView::LoggedIn => String::new(),
                },
            };
            // What the files know (the last seen usage included), in the one vocabulary.
            r.state = acc.state(DEFAULT_SWITCH_AT, now);
            if r.state == AccountState::Cooling {
                r.cooldown_until_ms = acc.status.cooldown_until_ms;
            }
            match live.and_then(|l| l.account(&acc.name)) {
                Some(l) if l.state == AccountState::Cooling => {
                    r.state = AccountState::Cooling;
                    r.cooldown_until_ms = l.cooldown_until_ms;
                }
                Some(l)
                    if l.state == AccountState::NeedsLogin
                        && r.state != AccountState::NeedsLogin =>
                {
                    r.state = AccountState::NeedsLogin;
                    r.detail = REFRESH_REJECTED.to_string();
                }
                _ => {}
            }
            r
        })
        .collect()
}

const REFRESH_REJECTED: &str = "refresh token rejected";

/// `cao gateway status`: saved config, each account's readiness, and the live gateway if any.
pub fn status(ctx: &Ctx, a: &GatewayStatusArgs) -> Result<i32> {
    let saved = ctx.store.load_gateway()?;
    let config = GatewayConfig::resolve(&saved, &Overrides::from_env())?;
    let overview = ctx.store.inspect()?;
    let now = crate::clock::now_ms();
    // The running gateway's own record first: it knows the port really bound (also one
    // started with another --port and no --save).
    let running = ctx.store.load_runtime().ok().flatten();
    let url = running.as_ref().map_or_else(
        || running::reach_url(config.bind, config.port),
        |r| r.url.clone(),
    );
    let (live, not_ours) = match LiveGateway::find(&ctx.store, &url, config.access_key.clone()) {
        Ok(found) => (
            found.and_then(|g| {
                Some(Live {
                    health: g.health().ok()?,
                    status: g.status().ok(),
                })
            }),
            None,
        ),
        Err(e) => {
            eprintln!("warning: {e}; cao sent it nothing and shows nothing it says");
            (None, Some(e.to_string()))
        }
    };
    let accounts = readiness(
        &overview,
        live.as_ref().and_then(|l| l.status.as_ref()),
        now,
    );
    let mut out = std::io::stdout().lock();
    if a.json {
        let report = Report {
            config: config.to_shown(),
            url: config.local_url(),
            running,
            accounts,
            live,
            not_ours,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(0);
    }
    writeln!(
        out,
        "Gateway config ({}):",
        ctx.store.gateway_path().display()
    )?;
    writeln!(out, "  listen     {}", config.local_url())?;
    writeln!(out, "  upstream   {}", config.base_url)?;
    writeln!(
        out,
        "  cooldown   {} s when upstream gives no reset time; {} upstream retries",
        config.cooldown_seconds, config.upstream_retries
    )?;
    writeln!(out, "Accounts:")?;
    if accounts.is_empty() {
        writeln!(out, "  (none; add one with `cao add <name>`)")?;
    }
    let tz = crate::render::local_tz();
    for acc in &accounts {
        let name = &acc.name;
        let mark = if acc.default { "*" } else { " " };
        let text = match acc.state {
            AccountState::Cooling => format!(
                "cooling until {}",
                time::local_with_relative(acc.cooldown_until_ms.unwrap_or(0), now, &tz)
            ),
            AccountState::NeedsLogin => {
                format!("needs-login ({}): run `cao add {name}`", acc.detail)
            }
            AccountState::Unreadable => format!("unreadable: {}", acc.detail),
            AccountState::Ready => "ready".to_string(),
            other => format!("{} ({})", other.as_str(), other.reason()),
        };
        writeln!(out, "  {mark}{name:<20} {text}")?;
    }
    match &live {
        Some(l) => {
            let pid = running
                .as_ref()
                .map_or_else(String::new, |r| format!("pid {}, ", r.pid));
            writeln!(
                out,
                "Live: running at {url} ({pid}{} of {} ready, up {})",
                l.health.ready,
                crate::render::text::plural(l.health.accounts, "account"),
                time::duration(i64::try_from(l.health.uptime_seconds).unwrap_or(0) * 1000)
            )?;
            if let Some(st) = &l.status {
                writeln!(
                    out,
                    "  {} requests, {} account switches, {} token refreshes ({} failed), {} sessions pinned",
                    st.requests, st.switches, st.refreshes, st.refresh_failures, st.affinity_count
                )?;
                if let Some(sv) = &st.served {
                    write_served(&mut out, sv, now, &tz)?;
                }
                if let Some(sh) = &st.shared {
                    super::gateway_shared::write(&mut out, sh, now)?;
                }
            }
        }
        None if not_ours.is_some() => writeln!(
            out,
            "Live: something answers at {url} that is not your cao gateway (see the warning above)"
        )?,
        None => match &running {
            Some(r) => writeln!(
                out,
                "Live: the gateway (pid {}) recorded {url} but does not answer there",
                r.pid
            )?,
            None => writeln!(
                out,
                "Live: no gateway answers at {url} (start one with `cao gateway start`)"
            )?,
        },
    }
    Ok(0)
}

/// Both URLs and, with HTTPS, the CA's fingerprint and the certificates' expiry.
fn write_served(
    out: &mut impl Write,
    sv: &wire::ServedView,
    now: i64,
    tz: &jiff::tz::TimeZone,
) -> Result<()> {
    writeln!(out, "  http       {}", sv.http_url)?;
    match &sv.https_url {
        Some(u) => writeln!(out, "  https      {u} (same port)")?,
        None => writeln!(out, "  https      off")?,
    }
    if let Some(fp) = &sv.ca_fingerprint {
        writeln!(out, "  CA         sha256 {fp}")?;
    }
    if let Some(ms) = sv.ca_not_after_ms {
        writeln!(
            out,
            "  CA expires {}",
            time::local_with_relative(ms, now, tz)
        )?;
    }
    if let Some(ms) = sv.leaf_not_after_ms {
        writeln!(
            out,
            "  leaf expires {}",
            time::local_with_relative(ms, now, tz)
        )?;
    }
    Ok(())
}

pub fn enable(ctx: &Ctx, a: &GatewayEnableArgs) -> Result<i32> {
    super::gateway_routing::enable(ctx, a)
}

pub fn disable(ctx: &Ctx, a: &GatewayDisableArgs) -> Result<i32> {
    super::gateway_routing::disable(ctx, a)
}

/// `cao gateway state-key PATH`: a new random key for `--state-key-file` (0600, never over an
/// existing file). Prints its fingerprint, which every replica's `gateway status` shows too.
pub fn state_key(a: &GatewayStateKeyArgs) -> Result<i32> {
    let key = crate::shared::seal::StateKey::generate(&a.path)?;
    eprintln!(
        "wrote a new state key to {} (0600); copy it to every replica that shares the pool",
        a.path.display()
    );
    println!("{}", key.fingerprint());
    Ok(0)
}
