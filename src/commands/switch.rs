//! `cao switch [name]` (interactive picker without a name) and `cao use <name>`.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};

use super::Ctx;
use crate::cli::{SwitchArgs, UseArgs};
use crate::render::text;
use crate::store::StoreError;

/// `cao switch [name]`.
pub fn switch(ctx: &Ctx, a: &SwitchArgs) -> Result<i32> {
    let name = match &a.name {
        Some(n) => n.clone(),
        None => match pick(ctx)? {
            Some(n) => n,
            None => return Ok(0),
        },
    };
    set_default(ctx, &name)
}

/// `cao use <name>`.
pub fn use_account(ctx: &Ctx, a: &UseArgs) -> Result<i32> {
    set_default(ctx, &a.name)
}

fn set_default(ctx: &Ctx, name: &str) -> Result<i32> {
    let name = ctx.store.check_name(name.trim())?;
    ctx.store.update_registry(|reg| {
        if !reg.contains(name) {
            return Err(StoreError::UnknownAccount {
                name: name.to_string(),
            });
        }
        reg.default_account = Some(name.to_string());
        Ok(())
    })?;
    writeln!(anstream::stdout(), "Default account set to: {name}")?;
    Ok(0)
}

/// Ask which account to use. `None` when there is nothing to pick or the user cancelled.
fn pick(ctx: &Ctx) -> Result<Option<String>> {
    let overview = ctx.store.inspect()?;
    if overview.accounts.is_empty() {
        write!(anstream::stdout(), "{}", text::NO_ACCOUNTS)?;
        return Ok(None);
    }
    let names: Vec<&str> = overview.accounts.iter().map(|v| v.name.as_str()).collect();
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        bail!(
            "no account name given and no terminal to pick one on; run `cao switch <name>` with one of: {}",
            names.join(", ")
        );
    }
    let items: Vec<String> = overview
        .accounts
        .iter()
        .map(|v| {
            let mut s = format!("{} {}", if v.is_default { "*" } else { " " }, v.name);
            if let Some(email) = &v.claims.email {
                s.push_str(&format!("  {email}"));
            }
            if !v.logged_in() {
                s.push_str("  (not logged in)");
            }
            s
        })
        .collect();
    let default_index = overview
        .accounts
        .iter()
        .position(|v| v.is_default)
        .unwrap_or(0);
    let choice = dialoguer::Select::new()
        .with_prompt("Default account (Esc to cancel)")
        .items(&items)
        .default(default_index)
        .interact_opt()
        .context("could not read the selection from the terminal")?;
    match choice {
        Some(i) => Ok(names.get(i).map(|n| n.to_string())),
        None => {
            writeln!(anstream::stdout(), "No account selected.")?;
            Ok(None)
        }
    }
}
