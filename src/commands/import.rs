//! `cao import codex-auth`: turn codex-auth snapshots (`~/.codex/accounts/<name>.json`, each a
//! copy of Codex's auth.json) into cao accounts.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::Ctx;
use crate::cli::ImportCodexAuthArgs;
use crate::store::shared_login;
use crate::store::{AuthFile, DEFAULT_ACCOUNT_CONFIG, StoreError, fsutil};

/// Files that name the active snapshot, looked for in the source dir, then its parent.
const ACTIVE_MARKERS: [&str; 6] = [
    ".active",
    "active",
    ".current",
    "current",
    ".selected",
    "selected",
];

pub fn codex_auth(ctx: &Ctx, a: &ImportCodexAuthArgs) -> Result<i32> {
    let store = &ctx.store;
    let source = match &a.source {
        Some(p) => absolute(p)?,
        None => crate::store::home_dir("pass the snapshot directory with --source <dir>")?
            .join(".codex")
            .join("accounts"),
    };
    if !source.is_dir() {
        bail!(
            "source directory not found: {}; pass the snapshot directory with --source <dir>",
            source.display()
        );
    }
    let mut snapshots: Vec<(String, PathBuf)> = std::fs::read_dir(&source)
        .map_err(|e| StoreError::io("list", &source, e))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let path = e.path();
            (file.ends_with(".json") && path.is_file()).then_some((file, path))
        })
        .collect();
    snapshots.sort();

    let mut out = anstream::stdout();
    let mut err = anstream::stderr();
    if snapshots.is_empty() {
        writeln!(out, "No snapshot files found in {}.", source.display())?;
        return Ok(0);
    }

    let (mut imported, mut skipped, mut errors) = (Vec::new(), 0usize, 0usize);
    // Logins already held (accounts, Codex's own auth.json), plus the snapshots taken so far:
    // a second copy of one login would revoke both on the first refresh.
    let mut held = store.logins();
    for (file, path) in &snapshots {
        let raw_name = file.trim_end_matches(".json").trim();
        let name = match store.check_new_name(raw_name) {
            Ok(n) => n,
            Err(e) => {
                writeln!(err, "Skipping snapshot '{file}': {e}")?;
                errors += 1;
                continue;
            }
        };
        let auth = match fsutil::read_optional(path)
            .map_err(|e| e.to_string())
            .and_then(|t| AuthFile::parse(&t.unwrap_or_default()))
        {
            Ok(auth) => auth,
            Err(e) => {
                writeln!(err, "Skipping snapshot '{file}': invalid JSON ({e}).")?;
                errors += 1;
                continue;
            }
        };
        // Other JSON in the folder (a config, an index) is not a login: leave it alone.
        if auth.tokens().is_none() && auth.api_key().is_none() {
            writeln!(
                err,
                "Skipping '{file}': not a Codex auth.json (no tokens and no OPENAI_API_KEY)."
            )?;
            skipped += 1;
            continue;
        }
        let target = store.auth_path(name);
        if let Some(login) = shared_login::Login::of(&target, &auth) {
            let own = |l: &&shared_login::Login| l.place == target && a.overwrite;
            if let Some(other) = shared_login::held_elsewhere(&held, &login).filter(|l| !own(l)) {
                writeln!(
                    err,
                    "Skipping snapshot '{file}': the same login is already held by {} (two copies of one login revoke each other on the first refresh; log this account in on its own with `cao add {name}`).",
                    other.place.display()
                )?;
                skipped += 1;
                continue;
            }
            held.push(login);
        }
        let dir = store.account_dir(name);
        fsutil::ensure_private_dir(&dir)?;
        let config = store.account_config_path(name);
        if !config.exists() {
            fsutil::write_atomic(
                &config,
                DEFAULT_ACCOUNT_CONFIG.as_bytes(),
                fsutil::SECRET_FILE_MODE,
            )?;
        }
        store.update_registry(|reg| Ok(reg.add(name)))?;
        let _lock = store.lock_auth(name)?;
        if store.auth_path(name).exists() && !a.overwrite {
            writeln!(
                err,
                "Skipping snapshot '{file}': {} already exists (use --overwrite to replace it).",
                store.auth_path(name).display()
            )?;
            skipped += 1;
            continue;
        }
        store.save_auth(name, &auth)?;
        imported.push(name.to_string());
    }

    let mut default_missing = false;
    let active = a
        .default
        .clone()
        .or_else(|| a.current.clone())
        .or_else(|| find_active(&source));
    if let Some(active) = active {
        // Accept `work`, `work.json` or a path to the snapshot.
        let active = active.trim();
        let active = active.rsplit('/').next().unwrap_or(active);
        let active = active.trim_end_matches(".json").to_string();
        let set = store
            .check_name(&active)
            .map_err(anyhow::Error::from)
            .and_then(|n| {
                store
                    .update_registry(|reg| {
                        let found = reg.contains(n);
                        if found {
                            reg.default_account = Some(n.to_string());
                        }
                        Ok(found)
                    })
                    .map_err(anyhow::Error::from)
            });
        match set {
            Ok(true) => writeln!(out, "Default account set to: {active}")?,
            Ok(false) => {
                default_missing = a.default.is_some();
                writeln!(
                    err,
                    "Requested default '{active}' not found in imported accounts."
                )?
            }
            Err(e) => {
                default_missing = a.default.is_some();
                writeln!(err, "Unable to set default account '{active}': {e}")?
            }
        }
    }

    writeln!(
        out,
        "Import complete. Imported: {}, skipped: {skipped}, errors: {errors}.",
        imported.len()
    )?;
    if !imported.is_empty() {
        writeln!(out, "Imported accounts: {}", imported.join(", "))?;
    }
    // Scripts must notice a snapshot that could not be read or a --default that was not set.
    Ok(if errors > 0 || default_missing { 1 } else { 0 })
}

/// The active snapshot's name from a marker file in `source` or its parent, else from a
/// `<parent>/auth.json` symlink pointing at one of the snapshots.
fn find_active(source: &Path) -> Option<String> {
    let parent = source.parent();
    let dirs = std::iter::once(source).chain(parent);
    for dir in dirs {
        for marker in ACTIVE_MARKERS {
            if let Ok(text) = std::fs::read_to_string(dir.join(marker)) {
                let value = text.trim();
                if !value.is_empty() {
                    return Some(value.to_string());
                }
            }
        }
    }
    let target = std::fs::read_link(parent?.join("auth.json")).ok()?;
    let stem = target.file_stem()?.to_str()?.to_string();
    source
        .join(format!("{stem}.json"))
        .is_file()
        .then_some(stem)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}
