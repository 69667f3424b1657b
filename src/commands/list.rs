//! `cao list` and `cao current`.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::cli::ListArgs;
use crate::render::{records::to_pretty, text};

/// `cao list`: `* name (ready)`, the default marked `*`.
pub fn list(ctx: &Ctx, a: &ListArgs) -> Result<i32> {
    let overview = ctx.store.inspect()?;
    let mut out = anstream::stdout();
    let now = crate::clock::now_ms();
    if a.json {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Item<'a> {
            name: &'a str,
            is_default: bool,
            logged_in: bool,
            /// The one vocabulary: ready, full, cooling, spent, needs-login, unreadable.
            state: crate::policy::account::State,
        }
        let items: Vec<Item<'_>> = overview
            .accounts
            .iter()
            .map(|v| Item {
                name: &v.name,
                is_default: v.is_default,
                logged_in: v.logged_in(),
                state: v.state(crate::policy::strategy::DEFAULT_SWITCH_AT, now),
            })
            .collect();
        write!(out, "{}", to_pretty(&items))?;
    } else if overview.accounts.is_empty() {
        write!(out, "{}", text::NO_ACCOUNTS)?;
    } else {
        write!(out, "{}", text::list(&overview, now))?;
    }
    Ok(0)
}

/// `cao current`: the default account's name.
pub fn current(ctx: &Ctx, a: &ListArgs) -> Result<i32> {
    let registry = ctx.store.load_registry()?;
    let mut out = anstream::stdout();
    if a.json {
        write!(
            out,
            "{}",
            to_pretty(&serde_json::json!({ "defaultAccount": registry.default_account }))
        )?;
    } else {
        match registry.default_account {
            Some(name) => writeln!(out, "{name}")?,
            None => writeln!(out, "No default account set.")?,
        }
    }
    Ok(0)
}
