//! `cao gateway start|status|enable|disable`. `enable`/`disable` live in `gateway_routing`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::{GatewayDisableArgs, GatewayEnableArgs, GatewayStartArgs, GatewayStatusArgs};
use crate::gateway::{self, GatewayConfig};
use crate::store::Store;
use crate::store::inspect::AuthView;

/// The line tests and scripts read to learn the bound address (stdout, flushed).
pub const LISTENING_PREFIX: &str = "cao gateway listening on ";

/// `cao gateway start`: resolve options, optionally save them, serve until SIGINT/SIGTERM.
pub fn start(ctx: &Ctx, a: GatewayStartArgs) -> Result<i32> {
    let config = GatewayConfig::resolve(&ctx.store, &a)?;
    ctx.flush_notices();
    if a.save {
        config.save(&ctx.store)?;
        eprintln!(
            "saved the gateway options to {}",
            ctx.store.gateway_path().display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cao-gateway")
        .build()
        .context("could not start the async runtime")?;
    let store = Arc::new(Store::at(ctx.store.root()));
    runtime.block_on(async move {
        let upstream = config.base_url.clone();
        let handle = gateway::spawn(store, config).await?;
        let pool = handle.state().pool();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{LISTENING_PREFIX}{}", handle.base_url())?;
        out.flush()?;
        drop(out);
        eprintln!(
            "forwarding to {upstream} with {} account(s); Ctrl-C to stop",
            pool.accounts.len()
        );
        let now = crate::store::now_ms();
        let ready = pool.accounts.iter().filter(|a| a.is_ready(now)).count();
        if pool.accounts.is_empty() {
            eprintln!("warning: no accounts yet; add one with `cao add <name>` (picked up without a restart)");
        } else if ready == 0 {
            eprintln!("warning: no account is ready right now (all cooling down or needing a login); see `cao gateway status`");
        }
        wait_for_stop_signal().await?;
        eprintln!(
            "cao gateway: stopping (finishing in-flight requests, at most {:?})",
            gateway::DRAIN_TIMEOUT
        );
        handle.shutdown().await?;
        Ok(0)
    })
}

async fn wait_for_stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("could not watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("could not watch SIGINT")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("could not watch Ctrl-C")?;
    Ok(())
}

/// `cao gateway status`: saved config, each account's readiness, and the live gateway if any.
pub fn status(ctx: &Ctx, a: &GatewayStatusArgs) -> Result<i32> {
    let args = GatewayStartArgs {
        access_key: std::env::var("CAO_GATEWAY_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        ..Default::default()
    };
    let config = GatewayConfig::resolve(&ctx.store, &args)?;
    let overview = ctx.store.inspect()?;
    let now = crate::store::now_ms();
    let accounts: Vec<Value> = overview
        .accounts
        .iter()
        .map(|acc| {
            let (state, until) = if matches!(acc.auth, AuthView::NoAccess(_)) {
                ("unreadable", None)
            } else if !acc.logged_in() || acc.status.needs_login == Some(true) {
                ("needs_login", None)
            } else if let Some(u) = acc.status.active_cooldown(now) {
                ("cooling", Some(u))
            } else {
                ("ready", None)
            };
            let detail = match &acc.auth {
                AuthView::Missing => "no auth.json".to_string(),
                AuthView::Unreadable(_) => "auth.json does not parse".to_string(),
                AuthView::NoAccess(e) => {
                    crate::policy::health::no_access_message(&acc.auth_path.to_string_lossy(), e)
                }
                AuthView::ApiKeyOnly | AuthView::NoTokens => "no ChatGPT login".to_string(),
                AuthView::LoggedIn if acc.status.needs_login == Some(true) => {
                    "refresh token rejected".to_string()
                }
                AuthView::LoggedIn => String::new(),
            };
            json!({"name": acc.name, "default": acc.is_default, "state": state,
                   "cooldownUntilMs": until, "detail": detail})
        })
        .collect();
    let live = query_live(&config);
    // The running gateway knows cooldowns and login failures before they reach the file.
    let mut accounts = accounts;
    if let Some(live_accounts) = live
        .as_ref()
        .and_then(|v| v["status"]["accounts"].as_array())
    {
        for acc in &mut accounts {
            let Some(l) = live_accounts.iter().find(|l| l["name"] == acc["name"]) else {
                continue;
            };
            match l["state"].as_str() {
                Some("cooling") => {
                    acc["state"] = json!("cooling");
                    acc["cooldownUntilMs"] = l["cooldownUntilMs"].clone();
                }
                Some("needs-login") if acc["state"] != "needs_login" => {
                    acc["state"] = json!("needs_login");
                    acc["detail"] = json!("refresh token rejected");
                }
                _ => {}
            }
        }
    }
    let ctx_cfg = config.to_saved_json();
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = json!({"config": ctx_cfg, "url": config.local_url(), "accounts": accounts, "live": live});
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
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
    for acc in &accounts {
        let name = acc["name"].as_str().unwrap_or("?");
        let mark = if acc["default"] == true { "*" } else { " " };
        let text = match acc["state"].as_str() {
            Some("cooling") => format!(
                "cooling until {}",
                local_time(acc["cooldownUntilMs"].as_i64().unwrap_or(0), now)
            ),
            Some("needs_login") => format!(
                "needs login ({}): run `cao add {name}`",
                acc["detail"].as_str().unwrap_or("")
            ),
            Some("unreadable") => acc["detail"].as_str().unwrap_or("").to_string(),
            _ => "ready".to_string(),
        };
        writeln!(out, "  {mark}{name:<20} {text}")?;
    }
    match &live {
        Some(v) => {
            writeln!(
                out,
                "Live: running at {} ({} of {} account(s) ready, up {} s)",
                config.local_url(),
                v["health"]["ready"],
                v["health"]["accounts"],
                v["health"]["uptimeSeconds"]
            )?;
            let st = &v["status"];
            if st.is_object() {
                writeln!(
                    out,
                    "  {} requests, {} account switches, {} token refreshes ({} failed), {} sessions pinned",
                    st["requests"],
                    st["switches"],
                    st["refreshes"],
                    st["refreshFailures"],
                    st["affinityCount"]
                )?;
            }
        }
        None => writeln!(
            out,
            "Live: no gateway answers at {} (start one with `cao gateway start`)",
            config.local_url()
        )?,
    }
    Ok(0)
}

/// `2026-11-24 22:00 (in 41m)` in local time.
fn local_time(ms: i64, now: i64) -> String {
    let when = jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| ms.to_string());
    let mins = ((ms - now).max(0) + 59_999) / 60_000;
    if mins >= 120 {
        format!("{when} (in {}h{:02}m)", mins / 60, mins % 60)
    } else {
        format!("{when} (in {mins}m)")
    }
}

/// Ask a running gateway for `/health` (and `/status` when it has one), briefly.
fn query_live(config: &GatewayConfig) -> Option<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let base = config.local_url().replace("0.0.0.0", "127.0.0.1");
    let key = config.access_key.clone().filter(|k| !k.is_empty());
    rt.block_on(async move {
        let client = gateway::http_client().ok()?;
        let get = |path: &str| {
            let mut b = http::Request::get(format!("{base}{path}"));
            if let Some(k) = &key {
                b = b.header(gateway::proxy::ACCESS_KEY_HEADER, k.as_str());
            }
            let req = b.body(Full::new(bytes::Bytes::new())).ok();
            let client = client.clone();
            async move {
                let resp = tokio::time::timeout(Duration::from_millis(1500), client.request(req?))
                    .await
                    .ok()?
                    .ok()?;
                if !resp.status().is_success() {
                    return None;
                }
                let body =
                    tokio::time::timeout(Duration::from_millis(1500), resp.into_body().collect())
                        .await
                        .ok()?
                        .ok()?
                        .to_bytes();
                serde_json::from_slice::<Value>(&body).ok()
            }
        };
        let health = get("/health").await?;
        if health.get("service").and_then(Value::as_str) != Some("cao-gateway") {
            return None;
        }
        let status = get("/status").await;
        Some(json!({"health": health, "status": status}))
    })
}

pub fn enable(ctx: &Ctx, a: &GatewayEnableArgs) -> Result<i32> {
    super::gateway_routing::enable(ctx, a)
}

pub fn disable(ctx: &Ctx, a: &GatewayDisableArgs) -> Result<i32> {
    super::gateway_routing::disable(ctx, a)
}
