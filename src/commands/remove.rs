//! `cao remove <name> [--keep-files]`.

use std::io::Write;

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::RemoveArgs;
use crate::store::StoreError;

/// Drop the account from the registry and account_status.json, and delete its directory
/// unless `--keep-files`.
pub fn run(ctx: &Ctx, a: &RemoveArgs) -> Result<i32> {
    let name = ctx.store.check_name(a.name.trim())?;
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
    let dir = ctx.store.account_dir(name);
    let mut out = anstream::stdout();
    writeln!(out, "Removed account: {name}")?;
    if a.keep_files {
        if dir.exists() {
            writeln!(out, "Kept its files in {}", dir.display())?;
        }
    } else {
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dir).with_context(|| {
                format!("could not delete {}; delete it by hand", dir.display())
            })?,
            Ok(_) => std::fs::remove_file(&dir).with_context(|| {
                format!("could not delete {}; delete it by hand", dir.display())
            })?,
            Err(_) => {}
        }
    }
    writeln!(
        out,
        "Default account: {}",
        default.as_deref().unwrap_or("(none)")
    )?;
    Ok(0)
}
