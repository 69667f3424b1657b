//! Carry a Codex conversation from one account's `CODEX_HOME` to the next.
//!
//! Codex 0.169 records each session as `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`
//! and `codex resume <id>` / `codex exec resume <id>` look the id up there. Verified with the
//! real binary: in another CODEX_HOME the resume fails with "no rollout found for thread id";
//! with the rollout file copied to the same relative path it resumes, history included. Only
//! the rollout is copied: auth, config and Codex's own databases stay per account.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::policy::codex_args::{rollout_line_is_model_output, session_id_from_rollout_name};
use crate::store::{StoreError, fsutil};

/// A session Codex recorded during one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// The rollout file in the account that recorded it.
    pub rollout: PathBuf,
    /// Its path relative to that CODEX_HOME (`sessions/2026/11/24/rollout-...jsonl`).
    pub relative: PathBuf,
    /// Whether the model answered anything in it (else re-running the command is equivalent).
    pub has_model_output: bool,
}

fn modified_ms(p: &Path) -> Option<i64> {
    let t = std::fs::metadata(p).ok()?.modified().ok()?;
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// The newest session written in `home` at or after `since_ms` (an attempt's start), if any.
pub fn latest_session(home: &Path, since_ms: i64) -> Option<Session> {
    let root = home.join("sessions");
    let mut best: Option<(i64, PathBuf)> = None;
    let mut stack = vec![(root.clone(), 0u8)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() && depth < 4 {
                stack.push((p, depth + 1));
            } else if ft.is_file()
                && e.file_name()
                    .to_str()
                    .and_then(session_id_from_rollout_name)
                    .is_some()
            {
                // File times have coarse resolution on some systems: allow 2 s of slack.
                if let Some(m) = modified_ms(&p).filter(|&m| m >= since_ms - 2_000)
                    && best.as_ref().is_none_or(|(bm, _)| m > *bm)
                {
                    best = Some((m, p));
                }
            }
        }
    }
    let (_, rollout) = best?;
    let name = rollout.file_name()?.to_str()?;
    let id = session_id_from_rollout_name(name)?.to_string();
    let relative = rollout.strip_prefix(home).ok()?.to_path_buf();
    let text = std::fs::read_to_string(&rollout).ok()?;
    let has_model_output = text.lines().any(rollout_line_is_model_output);
    Some(Session {
        id,
        rollout,
        relative,
        has_model_output,
    })
}

/// Make `session` visible to `to_home` (the next account): copy its rollout to the same
/// relative path, unless a copy there is already newer (that account continued it before).
/// The copy is atomic and private (0600): a rollout holds the whole conversation.
pub fn share_session(session: &Session, to_home: &Path) -> Result<PathBuf, StoreError> {
    let target = to_home.join(&session.relative);
    if target == session.rollout {
        return Ok(target);
    }
    if let (Some(src), Some(dst)) = (modified_ms(&session.rollout), modified_ms(&target))
        && dst >= src
    {
        return Ok(target);
    }
    let bytes =
        std::fs::read(&session.rollout).map_err(|e| StoreError::io("read", &session.rollout, e))?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::io("create the directory", parent, e))?;
    }
    fsutil::write_atomic(&target, &bytes, fsutil::SECRET_FILE_MODE)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a20f6c-5deb-7bf0-b88f-0458697f3e9a";

    fn write_rollout(home: &Path, id: &str, lines: &str) -> PathBuf {
        let dir = home.join("sessions/2026/11/24");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("rollout-2026-11-24T21-18-09-{id}.jsonl"));
        std::fs::write(&p, lines).unwrap();
        p
    }

    #[test]
    fn finds_the_newest_session_and_copies_it_to_the_next_home() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        assert_eq!(latest_session(&a, 0), None);
        write_rollout(
            &a,
            ID,
            "{\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\"}}\n",
        );
        let s = latest_session(&a, crate::clock::now_ms() - 60_000).unwrap();
        assert_eq!(s.id, ID);
        assert!(s.has_model_output);
        assert_eq!(
            s.relative,
            PathBuf::from(format!(
                "sessions/2026/11/24/rollout-2026-11-24T21-18-09-{ID}.jsonl"
            ))
        );
        let copied = share_session(&s, &b).unwrap();
        assert_eq!(
            std::fs::read(&copied).unwrap(),
            std::fs::read(&s.rollout).unwrap()
        );
        assert_eq!(fsutil::mode_of(&copied), Some(0o600));
        // Old sessions (before the attempt) are not picked up.
        assert_eq!(latest_session(&a, crate::clock::now_ms() + 60_000), None);
    }

    #[test]
    fn a_session_without_model_output_is_marked() {
        let t = tempfile::tempdir().unwrap();
        write_rollout(
            t.path(),
            ID,
            "{\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"user\"}}\n",
        );
        assert!(!latest_session(t.path(), 0).unwrap().has_model_output);
    }
}
