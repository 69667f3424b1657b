//! `cao demo` (the whole product, offline, in seconds) and `cao mock-upstream` (the mock Codex
//! backend with fault injection, as a tool).
//!
//! The demo builds a throw-away data dir with three accounts holding synthetic tokens, starts the
//! built-in mock upstream with the first account already spent and the second close to its
//! limit, puts the real gateway in front of it, and sends Codex-shaped streamed requests through
//! the gateway while narrating what upstream saw: the usage-limit answer, the switch, the
//! cooldown with its reset time. It ends with the same dashboard `cao status` prints.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::demo_script::{self as script, DEMO_ACCOUNTS};
use super::say;
use crate::cli::{DemoArgs, MockUpstreamArgs};
use crate::gateway::{self, GatewayConfig};
use crate::mock::{MockUpstream, Scenario};
use crate::policy::health::HealthOptions;
use crate::render::{RenderOpts, dashboard, style};
use crate::store::Store;

/// What `cao mock-upstream` prints first (stdout, flushed), so scripts can read the address.
pub const MOCK_LISTENING_PREFIX: &str = "mock upstream listening on ";

/// `cao demo [--keep] [--with-codex]`.
pub fn demo(a: &DemoArgs) -> Result<i32> {
    let dir = tempfile::Builder::new()
        .prefix("cao-demo-")
        .tempdir()
        .context("could not create a temporary directory for the demo")?;
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;

    // The gateway's request log goes to stderr at `info`; the demo narrates instead. With
    // CAO_LOG set, the user asked for the log: keep it.
    let quiet = std::env::var_os("CAO_LOG").is_none();
    let run = || runtime.block_on(run_demo(&data, a.with_codex));
    let result = if quiet {
        tracing::dispatcher::with_default(&tracing::Dispatch::none(), run)
    } else {
        run()
    };

    let mut out = anstream::stdout();
    if a.keep {
        let kept = dir.keep();
        writeln!(
            out,
            "\nKept the demo data dir: {}\n  look around: cao --data-dir {} status",
            kept.join("data").display(),
            kept.join("data").display()
        )?;
    } else {
        let path = dir.path().to_path_buf();
        dir.close()
            .with_context(|| format!("could not remove the demo dir {}", path.display()))?;
        writeln!(
            out,
            "\nRemoved the demo data dir (run `cao demo --keep` to look inside)."
        )?;
    }
    result?;
    Ok(0)
}

async fn run_demo(data: &std::path::Path, with_codex: bool) -> Result<()> {
    let started = Instant::now();
    let mut out = anstream::stdout();
    writeln!(
        out,
        "{}",
        style::bold(
            "cao demo: three accounts, a local mock of the ChatGPT Codex backend, and the cao gateway between Codex and it."
        )
    )?;
    writeln!(
        out,
        "Everything runs on 127.0.0.1 with synthetic tokens; nothing leaves this machine.\n"
    )?;

    let store = Arc::new(Store::at(data));
    script::create_accounts(&store)?;
    for acct in DEMO_ACCOUNTS {
        writeln!(
            out,
            "  account {:<13} ({}) {}",
            style::bold(acct.name),
            acct.account_id,
            style::dim(acct.story)
        )?;
    }

    let mock = MockUpstream::spawn("127.0.0.1", 0, script::scenario(crate::clock::now_ms()))
        .await
        .context("could not start the mock upstream")?;
    let config = GatewayConfig {
        port: 0,
        base_url: mock.base_url(),
        token_url: mock.token_url(),
        ..GatewayConfig::default()
    };
    let handle = gateway::spawn(store.clone(), config)
        .await
        .context("could not start the demo gateway")?;
    writeln!(out, "\n  mock upstream  {}", mock.base_url())?;
    writeln!(
        out,
        "  cao gateway    {}  (what Codex talks to)\n",
        handle.base_url()
    )?;
    out.flush()?;

    let client = crate::net::http_client()?;
    let steps = script::steps();
    let mut seen = 0;
    for (i, step) in steps.iter().enumerate() {
        writeln!(
            out,
            "{} {}",
            style::bold(&format!("[{}] Codex:", i + 1)),
            step.caption
        )?;
        out.flush()?;
        seen = script::send_and_narrate(&client, &handle, &mock, step, seen).await?;
        script::print_cooldowns(&handle)?;
        writeln!(out)?;
    }

    if with_codex {
        script::drive_real_codex(&handle.base_url(), &mock.token_url(), data).await?;
    }

    handle.shutdown().await?;
    mock.shutdown().await;

    let overview = store.inspect()?;
    // The terminal's real width (80 when not on one), so the README's first command never wraps.
    let r = RenderOpts::now(super::status::terminal_width(80));
    let health = overview.health(&HealthOptions::new(24, 3), r.now_ms);
    writeln!(
        out,
        "{}",
        style::bold("What `cao status` shows now (account_status.json, written by the gateway):")
    )?;
    out.write_all(dashboard::render(&overview, &health, &r).as_bytes())?;
    writeln!(
        out,
        "\nDone in {:.1} s. Use it for real: `cao add <name>` for each ChatGPT account, then `cao gateway start` and `cao gateway enable`.",
        started.elapsed().as_secs_f64()
    )?;
    out.flush()?;
    Ok(())
}

/// `cao mock-upstream [--bind ADDR] [--port N] [--scenario FILE]`: serve until Ctrl-C.
pub fn mock_upstream(a: &MockUpstreamArgs) -> Result<i32> {
    let scenario = match &a.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cao-mock")
        .build()
        .context("could not start the async runtime")?;
    let loopback = a
        .bind
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(a.bind == "localhost");
    if !loopback {
        say::warn(&format!(
            "the mock upstream has no access control and issues tokens to anyone; it is listening beyond this machine on {}",
            a.bind
        ));
    }
    runtime.block_on(async move {
        let mock = MockUpstream::spawn(&a.bind, a.port, scenario).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{MOCK_LISTENING_PREFIX}{}", mock.base_url())?;
        out.flush()?;
        drop(out);
        say::note(&format!(
            "token endpoint: {}\npoint a gateway at it: cao gateway start --base-url {} --token-url {}\nCtrl-C to stop",
            mock.token_url(),
            mock.base_url(),
            mock.token_url()
        ));
        wait_for_stop().await?;
        say::note("mock upstream: stopping");
        tokio::time::timeout(Duration::from_secs(5), mock.shutdown())
            .await
            .ok();
        Ok(0)
    })
}

async fn wait_for_stop() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("could not watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("could not watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
