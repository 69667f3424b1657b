//! `cao remove <name> [--keep-files]`.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::RemoveArgs;
use crate::store::StoreError;

/// Drop the account from the registry and account_status.json, and delete its directory
/// unless `--keep-files`.
pub fn run(ctx: &Ctx, a: &RemoveArgs) -> Result<i32> {
    let name = ctx.store.check_name(a.name.trim())?;
    if !ctx.store.load_registry()?.contains(name) {
        return Err(StoreError::UnknownAccount {
            name: name.to_string(),
        }
        .into());
    }
    let dir = ctx.store.account_dir(name);
    if !a.keep_files && !a.yes && dir.exists() && std::io::stdin().is_terminal() {
        let mut err = anstream::stderr();
        write!(
            err,
            "Remove account {name} and delete {} (its login: auth.json, config.toml)? [y/N] ",
            dir.display()
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            writeln!(
                anstream::stdout(),
                "Nothing removed. (--keep-files removes the account but keeps its files; --yes skips this question.)"
            )?;
            return Ok(1);
        }
    }
    let default = ctx.store.update_registry(|reg| {
        if !reg.remove(name) {
            return Err(StoreError::UnknownAccount {
                name: name.to_string(),
            });
        }
        Ok(reg.default_account.clone())
    })?;
    if ctx.store.status_path().exists() {
        ctx.store.update_statuses(|file| {
            file.statuses.remove(name);
        })?;
    }
    let mut out = anstream::stdout();
    writeln!(out, "Removed account: {name}")?;
    if a.keep_files {
        if dir.exists() {
            writeln!(out, "Kept its files in {}", dir.display())?;
        }
    } else {
        let deleted = match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dir).map(|()| true),
            Ok(_) => std::fs::remove_file(&dir).map(|()| true),
            Err(_) => Ok(false),
        }
        .with_context(|| format!("could not delete {}; delete it by hand", dir.display()))?;
        if deleted {
            writeln!(
                out,
                "Deleted {} (its auth.json and config.toml)",
                dir.display()
            )?;
        }
    }
    writeln!(
        out,
        "Default account: {}",
        default.as_deref().unwrap_or("(none)")
    )?;
    Ok(0)
}
