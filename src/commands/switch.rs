//! `cao switch [name]` (interactive picker without a name) and `cao use <name>`.

use std::io::{IsTerminal, Write};

use anyhow::{Result, bail};

use super::Ctx;
use super::switch_picker::{self, Item, Outcome};
use crate::cli::{SwitchArgs, UseArgs};
use crate::policy::strategy::DEFAULT_SWITCH_AT;
use crate::render::text;
use crate::store::StoreError;

/// `cao switch [name]`. Without a name, the picker; cancelling it changes nothing and exits 1
/// (Esc) or 130 (Ctrl-C, as a shell reports an interrupted command).
pub fn switch(ctx: &Ctx, a: &SwitchArgs) -> Result<i32> {
    let name = match &a.name {
        Some(n) => n.clone(),
        None => match pick(ctx)? {
            Picked::Name(n) => n,
            Picked::Nothing(code) => return Ok(code),
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

/// What the picker ended with.
enum Picked {
    Name(String),
    /// Nothing to pick or nothing picked: the exit code.
    Nothing(i32),
}

/// Ask which account to use, on the terminal ([`super::switch_picker`]).
fn pick(ctx: &Ctx) -> Result<Picked> {
    let overview = ctx.store.inspect()?;
    if overview.accounts.is_empty() {
        write!(anstream::stdout(), "{}", text::NO_ACCOUNTS)?;
        return Ok(Picked::Nothing(1));
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        let names: Vec<&str> = overview.accounts.iter().map(|v| v.name.as_str()).collect();
        bail!(
            "no account name given and no terminal to pick one on; run `cao switch <name>` with one of: {}",
            names.join(", ")
        );
    }
    let now = crate::clock::now_ms();
    let items = overview
        .accounts
        .iter()
        .map(|v| Item {
            name: v.name.clone(),
            is_default: v.is_default,
            state: v.state(DEFAULT_SWITCH_AT, now).as_str(),
            detail: v.claims.email.clone().unwrap_or_default(),
        })
        .collect();
    let current = overview
        .accounts
        .iter()
        .find(|v| v.is_default)
        .map_or_else(|| "none".to_string(), |v| v.name.clone());
    match switch_picker::run(items)? {
        Outcome::Picked(name) => Ok(Picked::Name(name)),
        Outcome::Cancelled => {
            writeln!(
                anstream::stderr(),
                "No account selected; the default is still {current}."
            )?;
            Ok(Picked::Nothing(1))
        }
        Outcome::Interrupted => {
            writeln!(
                anstream::stderr(),
                "Interrupted; the default is still {current}."
            )?;
            Ok(Picked::Nothing(130))
        }
    }
}
