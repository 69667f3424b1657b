//! `cao add <name> [--codex PATH] [--no-login] [--device-auth]`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use super::Ctx;
use crate::cli::AddArgs;
use crate::policy::health::mode_is_loose;
use crate::store::{DEFAULT_ACCOUNT_CONFIG, Store, StoreError, fsutil};

/// Create the account (dir 0700, config.toml, registry entry) and log it in with
/// `codex login` unless it already is.
pub fn run(ctx: &Ctx, a: &AddArgs) -> Result<i32> {
    let store = &ctx.store;
    let name = store.check_new_name(a.name.trim())?;
    // Find codex before creating anything, so a missing binary leaves no half-made account.
    let codex = if a.no_login {
        None
    } else {
        Some(crate::codex::launch::find_codex(&a.codex)?)
    };

    store.ensure_root()?;
    let dir = store.account_dir(name);
    fsutil::ensure_private_dir(&dir)?;
    refuse_shared_login(store, name)?;
    write_config_if_missing(&store.account_config_path(name))?;
    let (added, default) = store.update_registry(|reg| {
        let added = reg.add(name);
        Ok((added, reg.default_account.clone()))
    })?;
    tighten_auth_mode(store, name)?;

    let mut out = anstream::stdout();
    if added {
        writeln!(out, "Added account: {name}")?;
    } else {
        writeln!(out, "Account already registered: {name}")?;
    }
    writeln!(out, "Account directory: {}", dir.display())?;
    writeln!(
        out,
        "Default account: {}",
        default.as_deref().unwrap_or("(none)")
    )?;

    let Some(codex) = codex else {
        writeln!(
            out,
            "Skipped login (--no-login). Log in later with `cao add {name}`."
        )?;
        return Ok(0);
    };

    let needs_login = store
        .load_statuses()?
        .statuses
        .get(name)
        .is_some_and(|s| s.needs_login == Some(true));
    if !needs_login && login_status_ok(&codex, &dir) {
        writeln!(out, "Already logged in (`codex login status` succeeded).")?;
        return Ok(0);
    }

    let mut args = vec!["login"];
    if a.device_auth {
        args.push("--device-auth");
    }
    writeln!(out, "Starting `codex {}` for {name}...", args.join(" "))?;
    out.flush()?;
    // Ctrl-C reaches codex (same terminal); cao stays to say what state it left behind.
    crate::codex::launch::catch_signals();
    let status = Command::new(&codex)
        .args(&args)
        .env("CODEX_HOME", &dir)
        .status()
        .with_context(|| format!("could not start {}", codex.display()))?;
    let interrupted = crate::codex::launch::take_interrupt() || killed_by_interrupt(&status);
    if interrupted && !store.auth_path(name).is_file() {
        writeln!(
            anstream::stderr(),
            "Login interrupted: account {name} is registered but not logged in. Log it in with `cao add {name}`, or remove it with `cao remove {name}`."
        )?;
        return Ok(130);
    }
    if !status.success() {
        let code = status.code().unwrap_or(1);
        writeln!(
            anstream::stderr(),
            "codex login failed (exit code {code}); run `cao add {name}` again to retry."
        )?;
        return Ok(if code == 0 { 1 } else { code });
    }

    if store.auth_path(name).is_file() {
        tighten_auth_mode(store, name)?;
        if needs_login {
            store.update_account_status(name, |s| s.needs_login = None)?;
        }
        writeln!(anstream::stdout(), "Logged in: {name}")?;
    } else {
        super::say::warn(&format!(
            "codex login finished but {} was not written; check that {} sets cli_auth_credentials_store = \"file\"",
            store.auth_path(name).display(),
            store.account_config_path(name).display()
        ));
    }
    Ok(0)
}

/// Whether the child died from Ctrl-C (SIGINT).
fn killed_by_interrupt(status: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(2) || status.code() == Some(130)
    }
    #[cfg(not(unix))]
    {
        status.code() == Some(130)
    }
}

/// Write the account's config.toml unless one exists (never overwrite the user's).
fn write_config_if_missing(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(fsutil::SECRET_FILE_MODE);
    }
    match options.open(path) {
        Ok(mut f) => f
            .write_all(DEFAULT_ACCOUNT_CONFIG.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|source| StoreError::io("write", path, source)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::io("create", path, source)),
    }
}

/// An auth.json others can read is made 0600 (doctor reports it as insecure_permissions).
fn tighten_auth_mode(store: &Store, name: &str) -> Result<(), StoreError> {
    let path = store.auth_path(name);
    if fsutil::mode_of(&path).is_some_and(mode_is_loose) {
        fsutil::set_mode(&path, fsutil::SECRET_FILE_MODE)?;
    }
    Ok(())
}

/// Whether `codex login status` exits 0 with `CODEX_HOME` set to the account dir.
fn login_status_ok(codex: &Path, dir: &Path) -> bool {
    Command::new(codex)
        .args(["login", "status"])
        .env("CODEX_HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An account whose auth.json is a copy of a login held elsewhere (another account, or Codex's
/// own `~/.codex/auth.json`) would lose it on the first refresh: refuse, naming the file.
fn refuse_shared_login(store: &Store, name: &str) -> Result<()> {
    use crate::store::shared_login::{Login, held_elsewhere};
    let path = store.auth_path(name);
    let Ok(crate::store::AuthState::Present(file)) = store.load_auth(name) else {
        return Ok(());
    };
    let Some(login) = Login::of(&path, &file) else {
        return Ok(());
    };
    if let Some(other) = held_elsewhere(&store.logins(), &login) {
        anyhow::bail!(
            "{} holds the same login as {}: two copies of one login revoke each other on the first token refresh. Remove {} and run `cao add {name}` to log this account in on its own",
            path.display(),
            other.place.display(),
            path.display()
        );
    }
    Ok(())
}
