//! `cao status --refresh`: ask the backend's usage endpoint about every logged-in account before
//! rendering, without a running gateway. It loads the accounts the way the gateway does (so token
//! refreshes go through the gateway's token code, under the same locks), asks
//! [`crate::gateway::usage::poll::REFRESH_CONCURRENCY`] accounts at a time, and writes what it learned
//! into account_status.json, where every view reads it. Tokens rotated on the way that cannot be
//! saved go to a rescue file and the command fails naming it, as the gateway does.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::Ctx;
use crate::gateway::Overrides;
use crate::gateway::usage::poll;
use crate::gateway::{GatewayConfig, GatewayState};
use crate::store::Store;

/// Refresh every account's usage; says on stderr which accounts failed and why.
pub fn refresh(ctx: &Ctx, base_url: Option<&str>) -> Result<()> {
    let overrides = Overrides {
        base_url: base_url.map(str::to_string),
        usage_poll_seconds: Some(0),
        ..Overrides::default()
    };
    let config = GatewayConfig::load(&ctx.store, &overrides)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let store = Arc::new(Store::at(ctx.store.root()));
    let results = runtime.block_on(async move {
        let client = crate::net::http_client_trusting(config.upstream_ca_file.as_deref())?;
        let state = tokio::task::spawn_blocking(move || GatewayState::load(store, config, client))
            .await
            .context("loading accounts")??;
        let state = Arc::new(state);
        let results = poll::refresh_all(&state).await;
        // Tokens rotated on the way are saved (or rescued, loudly) like the gateway's.
        let finished = state.tokens.finish().await;
        tokio::task::spawn_blocking(move || state.flush_statuses())
            .await
            .context("saving account status")?;
        anyhow::Ok((results, finished))
    })?;
    let (results, finished) = results;
    let mut err = anstream::stderr();
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    for (name, r) in &failed {
        if let Err(e) = r {
            super::say::warn(&format!("could not refresh the usage of {name}: {e}"));
        }
    }
    if !results.is_empty() {
        writeln!(
            err,
            "usage refreshed for {} of {} account(s)",
            results.len() - failed.len(),
            results.len()
        )?;
    }
    Ok(finished?)
}
