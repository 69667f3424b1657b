//! What `cao run` reads and writes in the data dir around each attempt: the quota patterns of
//! `config.toml`, the account's own Codex config, the status an attempt leaves in
//! account_status.json, and the session handed on to the next account. The run itself is
//! [`super::run`].

use anyhow::{Context, Result};

use super::say::say;
use crate::clock::now_ms;
use crate::codex::scan::QuotaHit;
use crate::codex::session::{Session, share_session};
use crate::policy::codex_args::continue_args;
use crate::policy::quota::QuotaClassifier;
use crate::policy::run_plan::{Attempt, cooldown_until};
use crate::store::status::StatusEvent;
use crate::store::{Store, fsutil};

/// Whether auth.json exists and this user can open it (Codex could not use it otherwise).
pub(super) fn readable(path: &std::path::Path) -> bool {
    path.is_file() && std::fs::File::open(path).is_ok()
}

/// Built-in quota patterns plus `quota_patterns = [...]` from `<data dir>/config.toml`.
pub(super) fn load_classifier(store: &Store) -> Result<QuotaClassifier> {
    let path = store.cao_config_path();
    let Some(text) = fsutil::read_optional(&path)? else {
        return Ok(QuotaClassifier::builtin());
    };
    let doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML; fix or remove it", path.display()))?;
    let mut extra = Vec::new();
    if let Some(item) = doc.get("quota_patterns") {
        let arr = item.as_array().with_context(|| {
            format!(
                "`quota_patterns` in {} must be a list of strings, e.g. quota_patterns = [\"plan limit\"]",
                path.display()
            )
        })?;
        for v in arr.iter() {
            let s = v.as_str().with_context(|| {
                format!(
                    "`quota_patterns` in {} must hold only strings; found {}",
                    path.display(),
                    v.to_string().trim()
                )
            })?;
            extra.push(s.to_string());
        }
    }
    QuotaClassifier::new(&extra).with_context(|| {
        format!(
            "invalid quota pattern in {}; fix the regular expression or remove it",
            path.display()
        )
    })
}

/// The codex arguments for the next account after a usage limit: make the session visible to
/// that account and resume it when the model had already answered something (otherwise running
/// the same command again is equivalent and does not repeat the prompt in the history).
pub(super) fn continue_session(
    store: &Store,
    session: &Session,
    account: &str,
    original: &[String],
) -> Vec<String> {
    if let Err(e) = share_session(session, &store.account_dir(account)) {
        say(&format!(
            "could not copy session {} to account {account} ({e}); starting over there",
            session.id
        ));
        return original.to_vec();
    }
    if !session.has_model_output {
        return original.to_vec();
    }
    match continue_args(original, &session.id) {
        Some(args) => {
            say(&format!(
                "continuing the same conversation (session {}) on account {account}",
                session.id
            ));
            args
        }
        None => original.to_vec(),
    }
}

/// Codex needs the account's `config.toml` (file credential store, ChatGPT login); recreate it
/// if someone deleted it.
pub(super) fn ensure_account_config(store: &Store, name: &str) -> Result<()> {
    let path = store.account_config_path(name);
    if !path.exists() {
        fsutil::ensure_private_dir(&store.account_dir(name))?;
        fsutil::write_atomic(
            &path,
            crate::store::DEFAULT_ACCOUNT_CONFIG.as_bytes(),
            fsutil::SECRET_FILE_MODE,
        )?;
    }
    Ok(())
}

/// Write what this attempt taught us to account_status.json (the TypeScript tool's fields).
pub(super) fn record_status(
    store: &Store,
    name: &str,
    attempt: Attempt,
    hit: Option<&QuotaHit>,
    attempt_at: i64,
) -> Result<()> {
    let now = now_ms();
    // Did the backend serve this account? Codex recorded a model answer in a session during
    // the attempt. A local command (`--version`, `login status`, `--help`) exits 0 without
    // asking the backend anything, and must not clear what the backend said (a cooldown).
    let served = || {
        crate::codex::session::latest_session(&store.account_dir(name), attempt_at)
            .is_some_and(|s| s.has_model_output)
    };
    let cooling = store
        .load_statuses()?
        .statuses
        .get(name)
        .is_some_and(|s| s.active_cooldown(now).is_some());
    let evidence = attempt == Attempt::Success && (!cooling || served());
    store.update_account_status(name, |s| {
        s.apply(&StatusEvent::Attempted, attempt_at);
        match attempt {
            Attempt::Success if evidence => s.apply(&StatusEvent::Succeeded, now),
            // Codex succeeded without the backend (see above): the cooldown stands.
            Attempt::Success => {}
            Attempt::Failed { code } => s.apply(
                &StatusEvent::Failed {
                    error: format!("exit_code_{code}"),
                    cooling_until_ms: None,
                },
                now,
            ),
            // Not the account's fault: leave its record alone.
            Attempt::Interrupted { .. } => {}
            Attempt::Quota { reset_at_ms, .. } => {
                let seen = hit.map(|h| h.seen_at_ms).unwrap_or(now);
                let cooling_until_ms = cooldown_until(reset_at_ms, seen);
                s.apply(&StatusEvent::QuotaHit { cooling_until_ms }, seen);
            }
        }
    })?;
    Ok(())
}
