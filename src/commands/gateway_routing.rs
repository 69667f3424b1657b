//! `cao gateway enable` / `cao gateway disable`: point the user's Codex at the gateway and back.
//!
//! `enable` edits `$CODEX_HOME/config.toml` (see [`crate::codex::config_edit`] for what and why),
//! keeps a backup of the original (`config.toml.cao.bak`), records what it changed
//! (`config.toml.cao-routing.json`), and installs the `codex` shim ([`crate::codex::shim`]).
//! With HTTPS it also exports Codex's CA bundle to GUI apps ([`crate::codex::app_env`]).
//! `disable` removes the shim if cao wrote it, puts back the GUI apps' earlier value and undoes
//! exactly the recorded changes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::Ctx;
use super::say::warn;
use crate::cli::gateway::{GatewayDisableArgs, GatewayEnableArgs};
use crate::codex::config_edit::{self, RoutingRecord};
use crate::codex::{app_env, on_path, shim};
use crate::gateway::identity::Verdict;
use crate::gateway::running;
use crate::store::fsutil;

/// Suffix of the copy of config.toml taken before the first change.
pub const BACKUP_SUFFIX: &str = ".cao.bak";
/// Suffix of the record of what `enable` changed.
pub const RECORD_SUFFIX: &str = ".cao-routing.json";

/// Where Codex keeps its config: `$CODEX_HOME`, else `~/.codex`.
pub fn codex_home() -> Result<PathBuf, crate::store::StoreError> {
    match std::env::var_os("CODEX_HOME").filter(|v| !v.is_empty()) {
        Some(v) => Ok(PathBuf::from(v)),
        None => Ok(crate::store::home_dir("pass --data-dir / set CODEX_HOME")?.join(".codex")),
    }
}

/// What to say when HOME is unset and `enable`/`disable` need `~/.local/bin` for the shim.
const HOME_ADVICE: &str = "cao needs it for its codex shim in ~/.local/bin";

/// The files `enable` and `disable` work on.
struct Paths {
    /// `config.toml` as the user knows it (may be a symlink).
    config: PathBuf,
    backup: PathBuf,
    record: PathBuf,
}

impl Paths {
    fn new(codex_home: &Path) -> Self {
        let config = codex_home.join("config.toml");
        let with = |suffix: &str| {
            let mut name = config.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            backup: with(BACKUP_SUFFIX),
            record: with(RECORD_SUFFIX),
            config,
        }
    }

    /// The file to write: the symlink's target when config.toml is a link (dotfile managers),
    /// so the link survives.
    fn write_target(&self) -> PathBuf {
        match std::fs::symlink_metadata(&self.config) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::canonicalize(&self.config).unwrap_or_else(|_| self.config.clone())
            }
            _ => self.config.clone(),
        }
    }
}

/// Whether this user's cao gateway runs at `url` (`Ok(true)`), nothing listens there
/// (`Ok(false)`), or something else does: an error saying so, as no token may go there.
pub fn require_ours(store: &crate::store::Store, url: &str) -> Result<bool> {
    match crate::gateway::running::verify(store, url) {
        Verdict::Ours => Ok(true),
        Verdict::NothingListening => Ok(false),
        Verdict::NotOurs(why) => bail!(
            "refusing to send your Codex login to {url}: something answers there that is not your cao gateway ({why}). \
             Stop whatever listens there, or start your gateway on another port (`cao gateway start --port N --save`) and use that URL"
        ),
    }
}

/// Check and normalise a gateway URL (no trailing slash: Codex appends `/responses`).
pub fn normalize_url(raw: &str) -> Result<String> {
    let parsed = url::Url::parse(raw.trim())
        .with_context(|| format!("{raw:?} is not a URL; use e.g. http://127.0.0.1:4319"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        bail!("{raw:?} is not an http(s) URL; use e.g. http://127.0.0.1:4319");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        bail!("{raw:?} has a query or fragment; give just the gateway's base URL");
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// The URL Codex is routed to when none is given: the saved gateway address over `https://`
/// when the gateway serves HTTPS there (loopback), since the Codex TUI of a personal account
/// refuses a plain-http `chatgpt_base_url`; else the plain address.
pub fn default_url(store: &crate::store::Store) -> String {
    let plain = running::find_url(store);
    crate::gateway::tls::urls::https_for(&plain).unwrap_or(plain)
}

/// True when `url` is the gateway's own HTTPS (a loopback `https://` URL), whose certificate
/// Codex trusts only through cao's CA bundle.
pub fn needs_ca_bundle(url: &str) -> bool {
    url::Url::parse(url)
        .is_ok_and(|u| u.scheme() == "https" && crate::gateway::tls::urls::is_loopback(&u))
}

/// Make sure the CA, the leaf and Codex's bundle exist (keeping the user's own CA in the
/// bundle) and return the bundle's path; warnings for the user go to `warnings`.
pub fn prepare_ca_bundle(
    store: &crate::store::Store,
    warnings: &mut Vec<String>,
) -> Result<crate::gateway::tls::certs::TlsInfo> {
    use crate::gateway::tls::bundle::BundleNote;
    let (info, notes) = crate::gateway::tls::bundle::prepare(store.root(), crate::store::now_ms())
        .context("could not prepare the gateway's certificate for Codex")?;
    for note in notes {
        if let BundleNote::Skipped { var, path, reason } = note {
            warnings.push(format!(
                "your {var}={} was not copied into Codex's CA bundle: {reason}",
                path.display()
            ));
        }
    }
    Ok(info)
}

/// The gateway URL `cao gateway enable` routed `codex_home`'s config.toml to, if it did (a
/// damaged record counts as none here; `disable` reports it).
pub fn recorded_url(codex_home: &Path) -> Option<String> {
    read_record(&Paths::new(codex_home).record)
        .ok()
        .flatten()
        .map(|r| r.base_url)
}

/// `cao gateway enable`.
pub fn enable(ctx: &Ctx, args: &GatewayEnableArgs) -> Result<i32> {
    let url = match &args.base_url {
        Some(u) => normalize_url(u)?,
        None => normalize_url(&default_url(&ctx.store))?,
    };
    // Before anything changes: a gateway at the URL must be this user's (Codex will send its
    // login there).
    let running = require_ours(&ctx.store, &url)?;
    let paths = Paths::new(&codex_home()?);
    let home = crate::store::home_dir(HOME_ADVICE)?;

    let current = read_text(&paths.config)?;
    let record = read_record(&paths.record)?;
    let enabled = config_edit::enable(current.as_deref(), record.as_ref(), &url).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; the file was left untouched",
            paths.config.display()
        )
    })?;

    if let Some(parent) = paths.config.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("could not create {}", parent.display()))?;
    }
    let mut backup_note = None;
    if let Some(original) = current.as_deref().filter(|_| record.is_none()) {
        if paths.backup.exists() {
            backup_note = Some(format!(
                "kept the existing backup {} (it may be older than this change)",
                paths.backup.display()
            ));
        } else {
            fsutil::write_atomic(&paths.backup, original.as_bytes(), fsutil::SECRET_FILE_MODE)?;
        }
    }
    // Record first: a crash between the two writes leaves a record whose changes are simply
    // not found, never changes without a record.
    write_record(&paths.record, &enabled.record)?;
    let target = paths.write_target();
    let mode = fsutil::mode_of(&target).unwrap_or(fsutil::SECRET_FILE_MODE);
    fsutil::write_atomic(&target, enabled.text.as_bytes(), mode)?;

    let mut warnings: Vec<String> = enabled.notes;
    warnings.extend(backup_note);
    let tls = if needs_ca_bundle(&url) {
        Some(prepare_ca_bundle(&ctx.store, &mut warnings)?)
    } else {
        None
    };
    let bundle = tls.as_ref().map(|t| t.bundle_path.clone());
    let mut out = std::io::stdout().lock();
    writeln!(out, "Codex now goes through the gateway at {url}")?;
    writeln!(out, "  config: {}", paths.config.display())?;
    if paths.backup.exists() {
        writeln!(out, "  backup: {}", paths.backup.display())?;
    }
    for (key, was) in replaced_urls(&enabled.record) {
        writeln!(
            out,
            "  replaced your own {key} = {was} (kept in the backup; `cao gateway disable` puts it back)"
        )?;
    }
    if let Some(t) = &tls {
        writeln!(
            out,
            "  CA:     {} (SHA-256 {}); Codex trusts it through CODEX_CA_CERTIFICATE={}",
            t.ca_path.display(),
            t.ca_fingerprint,
            t.bundle_path.display()
        )?;
    }
    // A Codex the shim does not start (the desktop app, an IDE) gets the bundle from the GUI
    // apps' environment, where the platform has one; `--no-app-env` (or plain http) puts back
    // an earlier export instead.
    let mechanism = app_env::Mechanism::detect(&home);
    let app = match (&tls, &mechanism) {
        (Some(t), Some(m)) if !args.no_app_env => {
            app_env::export(ctx.store.root(), m, &t.bundle_path.to_string_lossy())?
        }
        _ => app_env::restore(ctx.store.root(), mechanism.as_ref())?,
    };
    for line in &app.done {
        writeln!(out, "  GUI apps: {line}")?;
    }
    if let Some(t) = &tls {
        if app.exported() {
            writeln!(
                out,
                "  Quit and reopen the Codex desktop app or your IDE so it picks up CODEX_CA_CERTIFICATE."
            )?;
        } else {
            warnings.push(format!(
                "a Codex not started through the shim (the desktop app, an IDE extension) reads only config.toml and needs CODEX_CA_CERTIFICATE={} in its environment to trust the gateway's https; cao did not set it for GUI apps ({}; see docs/routing.md)",
                t.bundle_path.display(),
                if args.no_app_env { "--no-app-env" } else { "no launchctl or systemd user environment here" }
            ));
        }
    }
    warnings.extend(app.warnings);
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let shim_path = shim::shim_path(&home);
    match on_path::find_real_codex(&path_var, &shim_path) {
        None => warnings.push(
            "no codex found on PATH, so no shim was installed (config.toml is routed); install Codex and run `cao gateway enable` again".to_string()
        ),
        Some(real) => match shim::install(
            &home,
            &real,
            &url,
            &shim::Verifier::this_cao(&ctx.store),
            bundle.as_deref(),
        )? {
            shim::Installed::Written(p) => {
                writeln!(out, "  shim:   {} -> {}", p.display(), real.display())?;
                let dir = shim::shim_dir(&home);
                if !on_path::dir_on_path(&path_var, &dir) {
                    warnings.push(format!(
                        "{} is not on PATH, so the shim is not used; add it: export PATH=\"{}:$PATH\"",
                        dir.display(),
                        dir.display()
                    ));
                } else if let Some(first) = on_path::codex_on_path(&path_var).first()
                    && !shim::file_is_cao_shim(first)
                {
                    warnings.push(format!(
                        "PATH finds {} before the shim; put {} earlier in PATH",
                        first.display(),
                        dir.display()
                    ));
                }
            }
            shim::Installed::Occupied(p) => warnings.push(format!(
                "{} exists and is not cao's shim; left it alone (config.toml is routed)",
                p.display()
            )),
        },
    }
    if let Some(home_dir) = paths.config.parent()
        && !home_dir.join("auth.json").exists()
    {
        warnings.push(format!(
            "{} has no auth.json: Codex needs a ChatGPT login there to start (any account; the gateway puts the serving account's credentials on every request); run `codex login` there (a login of its own; never copy an account's auth.json: two copies of one login revoke each other on the first token refresh)",
            home_dir.display()
        ));
    }
    if !running {
        warnings.push(format!(
            "no gateway answers at {url} yet; start one with `cao gateway start` (Codex fails to connect until then)"
        ));
    }
    writeln!(out, "Undo with `cao gateway disable`.")?;
    drop(out);
    for w in warnings {
        warn(&w);
    }
    Ok(0)
}

/// The user's own URL settings `enable` replaced (key, old value as TOML), not counting a
/// value that already pointed where it points now.
fn replaced_urls(record: &RoutingRecord) -> Vec<(&str, &str)> {
    record
        .changes
        .iter()
        .filter(|c| c.key.ends_with("_base_url"))
        .filter_map(|c| {
            let was = c.previous.as_deref()?;
            let same = was.trim().trim_matches('"') == c.value;
            (!same).then_some((c.key.as_str(), was))
        })
        .collect()
}

/// `cao gateway disable`.
pub fn disable(ctx: &Ctx, _args: &GatewayDisableArgs) -> Result<i32> {
    let paths = Paths::new(&codex_home()?);
    let home = crate::store::home_dir(HOME_ADVICE)?;
    let mut out = std::io::stdout().lock();
    let mut warnings = Vec::new();

    // Work out the config undo first, so an unparsable file stops everything before any change.
    let record = read_record(&paths.record)?;
    let current = read_text(&paths.config)?;
    let undone =
        match &record {
            Some(record) => Some(config_edit::disable(current.as_deref(), record).map_err(
                |e| anyhow::anyhow!("{}: {e}; nothing was changed", paths.config.display()),
            )?),
            None => None,
        };

    match shim::remove(&home)? {
        shim::Removed::Removed(p) => writeln!(out, "Removed the codex shim {}", p.display())?,
        shim::Removed::Absent(_) => writeln!(out, "No codex shim to remove.")?,
        shim::Removed::NotOurs(p) => {
            warnings.push(format!("{} is not cao's shim; left it alone", p.display()))
        }
    }
    let app = app_env::restore(ctx.store.root(), app_env::Mechanism::detect(&home).as_ref())?;
    for line in &app.done {
        writeln!(out, "GUI apps: {line}")?;
    }
    warnings.extend(app.warnings);

    let (Some(record), Some(undone)) = (record, undone) else {
        writeln!(
            out,
            "{} is not routed by cao (no {}); nothing to undo.",
            paths.config.display(),
            paths.record.display()
        )?;
        drop(out);
        for w in warnings {
            warn(&w);
        }
        return Ok(0);
    };
    match &undone.text {
        Some(text) => {
            let target = paths.write_target();
            let mode = fsutil::mode_of(&target).unwrap_or(fsutil::SECRET_FILE_MODE);
            if current.as_deref() != Some(text.as_str()) {
                fsutil::write_atomic(&target, text.as_bytes(), mode)?;
            }
        }
        None => {
            if current.is_some() {
                std::fs::remove_file(&paths.config)
                    .with_context(|| format!("could not remove {}", paths.config.display()))?;
            }
        }
    }
    std::fs::remove_file(&paths.record)
        .with_context(|| format!("could not remove {}", paths.record.display()))?;

    if undone.exact {
        writeln!(
            out,
            "Restored {} to what it was before `cao gateway enable`.",
            paths.config.display()
        )?;
        let backup = read_text(&paths.backup).ok().flatten();
        if backup.is_some() && backup == record.original {
            let _ = std::fs::remove_file(&paths.backup);
        }
    } else {
        writeln!(
            out,
            "Removed cao's routing from {} (your other edits are kept).",
            paths.config.display()
        )?;
    }
    for key in &undone.left {
        warnings.push(format!(
            "`{key}` was changed after `cao gateway enable`, so it was left as it is"
        ));
    }
    if paths.backup.exists() {
        writeln!(out, "  backup kept: {}", paths.backup.display())?;
    }
    drop(out);
    for w in warnings {
        warn(&w);
    }
    Ok(0)
}

/// Read a text file; `None` when missing; an error naming the file when unreadable or not UTF-8
/// (never guess at bytes cao would then rewrite).
fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            anyhow::anyhow!(
                "{} is not UTF-8 text; cao leaves it untouched (fix its encoding first)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("could not read {}", path.display())),
    }
}

fn read_record(path: &Path) -> Result<Option<RoutingRecord>> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let record: RoutingRecord = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} (cao's record of what `gateway enable` changed) is damaged; restore config.toml from its .cao.bak backup and delete the record",
            path.display()
        )
    })?;
    if record.version != config_edit::RECORD_VERSION {
        bail!(
            "{} was written by another cao version (record version {}); use that version to disable, or restore config.toml from its .cao.bak backup",
            path.display(),
            record.version
        );
    }
    Ok(Some(record))
}

fn write_record(path: &Path, record: &RoutingRecord) -> Result<()> {
    let mut text = serde_json::to_string_pretty(record)?;
    text.push('\n');
    fsutil::write_atomic(path, text.as_bytes(), fsutil::SECRET_FILE_MODE)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_trimmed() {
        assert_eq!(
            normalize_url("http://127.0.0.1:4319/").unwrap(),
            "http://127.0.0.1:4319"
        );
        assert_eq!(
            normalize_url(" http://h:1/base/ ").unwrap(),
            "http://h:1/base"
        );
        assert!(normalize_url("127.0.0.1:4319").is_err());
        assert!(normalize_url("ftp://h").is_err());
        assert!(normalize_url("http://h/?x=1").is_err());
    }
}
