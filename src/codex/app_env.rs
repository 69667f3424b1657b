//! `CODEX_CA_CERTIFICATE` for a Codex that the shim does not start (the desktop app, an IDE
//! extension): `cao gateway enable` exports it to GUI apps where the platform has a place for it,
//! and `cao gateway disable` puts back what was there.
//!
//! - macOS: `launchctl setenv` (what the TypeScript tool's app-env did for `OPENAI_BASE_URL`):
//!   apps opened from then on get it, until the next reboot.
//! - Linux with systemd: `systemctl --user set-environment` (services and apps the user manager
//!   starts from then on) and `~/.config/environment.d/60-cao-codex-ca.conf` (every later login).
//!
//! What was there before is recorded in `<data dir>/app-env.json`; what to remember and restore
//! is [`crate::policy::app_env`]'s decision. Nothing here is fatal: a tool that fails is a
//! warning, and the route through config.toml and the shim works regardless.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::CODEX_CA_ENV;
use crate::policy::app_env::{self, Restore};
use crate::store::{StoreError, fsutil};

/// The record of what `enable` exported, in the data dir.
pub const RECORD_FILE: &str = "app-env.json";
/// The `environment.d` drop-in cao writes.
pub const ENVIRONMENT_D_FILE: &str = "60-cao-codex-ca.conf";
/// First line of that drop-in: cao removes only a file that starts with it.
const MARKER: &str =
    "# cao-app-env: written by `cao gateway enable`; `cao gateway disable` removes it.";
const RECORD_VERSION: u32 = 1;

/// How this machine gives GUI apps an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    Launchctl {
        program: PathBuf,
    },
    Systemd {
        systemctl: PathBuf,
        /// `~/.config/environment.d` (or under `$XDG_CONFIG_HOME`).
        environment_d: PathBuf,
    },
}

impl Mechanism {
    /// This machine's: `launchctl` on macOS; elsewhere the systemd user manager when
    /// `systemctl` is on `PATH`; `None` otherwise.
    pub fn detect(home: &Path) -> Option<Self> {
        if cfg!(target_os = "macos") {
            return Some(Self::Launchctl {
                program: PathBuf::from("launchctl"),
            });
        }
        let path_var = std::env::var_os("PATH")?;
        let systemctl = std::env::split_paths(&path_var)
            .filter(|d| d.is_absolute())
            .map(|d| d.join("systemctl"))
            .find(|p| p.is_file())?;
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".config"));
        Some(Self::Systemd {
            systemctl,
            environment_d: config.join("environment.d"),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Launchctl { .. } => "launchctl",
            Self::Systemd { .. } => "systemd",
        }
    }
}

/// What `enable` exported and what it replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppEnvRecord {
    pub version: u32,
    /// `launchctl` or `systemd`.
    pub mechanism: String,
    pub name: String,
    pub value: String,
    /// The session's value before cao set it (`None`: unset).
    pub previous: Option<String>,
    /// Whether cao set the session's value (`false`: the tool was not reachable).
    pub session_set: bool,
    /// The `environment.d` drop-in cao wrote.
    pub environment_d: Option<PathBuf>,
}

/// What happened, for the command to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// What was set or put back (one line each).
    pub done: Vec<String>,
    pub warnings: Vec<String>,
}

impl Outcome {
    /// True when some GUI-app environment now carries the variable.
    pub fn exported(&self) -> bool {
        !self.done.is_empty()
    }
}

fn record_path(root: &Path) -> PathBuf {
    root.join(RECORD_FILE)
}

/// The record, if `enable` exported anything (an unreadable one counts as none: it is
/// backed up and replaced on the next export).
pub fn load_record(root: &Path) -> Option<AppEnvRecord> {
    let text = fsutil::read_optional(&record_path(root)).ok()??;
    serde_json::from_str(&text).ok()
}

/// Run `program args`; its stdout, or why it failed.
fn run(program: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run {}: {e}", program.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(format!(
            "`{} {}` failed: {}",
            program.display(),
            args.join(" "),
            if err.is_empty() {
                out.status.to_string()
            } else {
                err
            }
        ))
    }
}

/// The session's current value of the variable: `Ok(None)` unset, `Err` unreachable.
fn session_value(mechanism: &Mechanism) -> Result<Option<String>, String> {
    match mechanism {
        Mechanism::Launchctl { program } => {
            let out = run(program, &["getenv", CODEX_CA_ENV])?;
            let v = out.trim_end_matches(['\n', '\r']);
            Ok((!v.is_empty()).then(|| v.to_string()))
        }
        Mechanism::Systemd { systemctl, .. } => {
            let out = run(systemctl, &["--user", "show-environment"])?;
            Ok(app_env::value_in_show_environment(&out, CODEX_CA_ENV))
        }
    }
}

fn set_session(mechanism: &Mechanism, value: &str) -> Result<(), String> {
    match mechanism {
        Mechanism::Launchctl { program } => run(program, &["setenv", CODEX_CA_ENV, value]),
        Mechanism::Systemd { systemctl, .. } => run(
            systemctl,
            &[
                "--user",
                "set-environment",
                &format!("{CODEX_CA_ENV}={value}"),
            ],
        ),
    }
    .map(drop)
}

fn unset_session(mechanism: &Mechanism) -> Result<(), String> {
    match mechanism {
        Mechanism::Launchctl { program } => run(program, &["unsetenv", CODEX_CA_ENV]),
        Mechanism::Systemd { systemctl, .. } => {
            run(systemctl, &["--user", "unset-environment", CODEX_CA_ENV])
        }
    }
    .map(drop)
}

/// Export `CODEX_CA_CERTIFICATE=value` to GUI apps and record what it replaced.
pub fn export(root: &Path, mechanism: &Mechanism, value: &str) -> Result<Outcome, StoreError> {
    let mut outcome = Outcome::default();
    let recorded = load_record(root);
    let current = session_value(mechanism);
    let mut session_set = false;
    let mut previous = None;
    match &current {
        Ok(now) => {
            previous = app_env::previous_to_keep(
                now.as_deref(),
                recorded
                    .as_ref()
                    .filter(|r| r.session_set)
                    .map(|r| (r.value.as_str(), r.previous.as_deref())),
            );
            match set_session(mechanism, value) {
                Ok(()) => {
                    session_set = true;
                    outcome.done.push(match mechanism {
                        Mechanism::Launchctl { .. } => format!(
                            "{CODEX_CA_ENV} exported to apps opened from now on with `launchctl setenv` (until a reboot)"
                        ),
                        Mechanism::Systemd { .. } => format!(
                            "{CODEX_CA_ENV} set in the running systemd user manager (apps and services it starts from now on)"
                        ),
                    });
                }
                Err(e) => outcome.warnings.push(format!(
                    "could not export {CODEX_CA_ENV} to GUI apps: {e}"
                )),
            }
        }
        Err(e) => outcome.warnings.push(format!(
            "could not reach the session's environment for GUI apps ({e}); {CODEX_CA_ENV} not set there"
        )),
    }
    let mut environment_d = None;
    if let Mechanism::Systemd {
        environment_d: dir, ..
    } = mechanism
    {
        match write_drop_in(dir, value) {
            Ok(path) => {
                outcome.done.push(format!(
                    "{CODEX_CA_ENV} in {} (every later login)",
                    path.display()
                ));
                environment_d = Some(path);
            }
            Err(w) => outcome.warnings.push(w),
        }
    }
    if session_set || environment_d.is_some() {
        let record = AppEnvRecord {
            version: RECORD_VERSION,
            mechanism: mechanism.name().to_string(),
            name: CODEX_CA_ENV.to_string(),
            value: value.to_string(),
            previous,
            session_set,
            environment_d,
        };
        let mut text = serde_json::to_string_pretty(&record).unwrap_or_default();
        text.push('\n');
        fsutil::write_atomic(
            &record_path(root),
            text.as_bytes(),
            fsutil::SECRET_FILE_MODE,
        )?;
    }
    Ok(outcome)
}

/// Write the `environment.d` drop-in; a warning when it cannot be (or must not be) written.
fn write_drop_in(dir: &Path, value: &str) -> Result<PathBuf, String> {
    let path = dir.join(ENVIRONMENT_D_FILE);
    if !app_env::fits_environment_d(value) {
        return Err(format!(
            "{value} holds characters environment.d would change; {} not written",
            path.display()
        ));
    }
    if let Ok(Some(existing)) = fsutil::read_optional(&path)
        && !existing.starts_with(MARKER)
    {
        return Err(format!(
            "{} exists and is not cao's; left it alone",
            path.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    fsutil::write_atomic(
        &path,
        format!("{MARKER}\n{CODEX_CA_ENV}={value}\n").as_bytes(),
        0o644,
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

/// Put back what [`export`] replaced (when a record says it exported anything) and forget it.
pub fn restore(root: &Path, mechanism: Option<&Mechanism>) -> Result<Outcome, StoreError> {
    let mut outcome = Outcome::default();
    let Some(record) = load_record(root) else {
        return Ok(outcome);
    };
    if record.session_set {
        match mechanism.filter(|m| m.name() == record.mechanism) {
            None => outcome.warnings.push(format!(
                "{CODEX_CA_ENV} was exported with {} but it is not available now; remove it from the GUI apps' environment yourself",
                record.mechanism
            )),
            Some(m) => restore_session(m, &record, &mut outcome),
        }
    }
    if let Some(path) = &record.environment_d {
        match fsutil::read_optional(path) {
            Ok(Some(text)) if text.starts_with(MARKER) => match std::fs::remove_file(path) {
                Ok(()) => outcome.done.push(format!("removed {}", path.display())),
                Err(e) => outcome
                    .warnings
                    .push(format!("could not remove {}: {e}", path.display())),
            },
            Ok(Some(_)) => outcome.warnings.push(format!(
                "{} is no longer cao's; left it alone",
                path.display()
            )),
            _ => {}
        }
    }
    let path = record_path(root);
    std::fs::remove_file(&path).map_err(|source| StoreError::io("remove", &path, source))?;
    Ok(outcome)
}

fn restore_session(mechanism: &Mechanism, record: &AppEnvRecord, outcome: &mut Outcome) {
    let current = match session_value(mechanism) {
        Ok(v) => v,
        Err(e) => {
            outcome.warnings.push(format!(
                "could not reach the session's environment ({e}); {CODEX_CA_ENV} may still be set there"
            ));
            return;
        }
    };
    let result = match app_env::restore(
        current.as_deref(),
        &record.value,
        record.previous.as_deref(),
    ) {
        Restore::Set(previous) => set_session(mechanism, &previous)
            .map(|()| format!("{CODEX_CA_ENV} for GUI apps is {previous} again")),
        Restore::Unset => {
            unset_session(mechanism).map(|()| format!("{CODEX_CA_ENV} for GUI apps unset again"))
        }
        Restore::Leave => {
            if current.as_deref() != Some(record.value.as_str()) {
                outcome.warnings.push(format!(
                    "{CODEX_CA_ENV} for GUI apps was changed since `cao gateway enable`; left as it is"
                ));
            }
            return;
        }
    };
    match result {
        Ok(line) => outcome.done.push(line),
        Err(e) => outcome.warnings.push(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in `launchctl` keeping its environment in a file next to it and logging calls.
    fn fake_launchctl(dir: &Path) -> PathBuf {
        let program = dir.join("launchctl");
        let state = dir.join("state");
        let log = dir.join("log");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{log}'\ncase \"$1\" in\n\
                 getenv) [ -f '{state}' ] && cat '{state}'; exit 0;;\n\
                 setenv) printf '%s\\n' \"$3\" > '{state}';;\n\
                 unsetenv) rm -f '{state}';;\nesac\n",
                log = log.display(),
                state = state.display()
            ),
        )
        .unwrap();
        fsutil::set_mode(&program, 0o755).unwrap();
        program
    }

    #[test]
    fn launchctl_export_and_restore_put_back_the_earlier_value() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        let m = Mechanism::Launchctl {
            program: fake_launchctl(dir.path()),
        };
        std::fs::write(dir.path().join("state"), "/corp.pem\n").unwrap();
        let out = export(&root, &m, "/d/bundle.pem").unwrap();
        assert!(out.exported() && out.warnings.is_empty(), "{out:?}");
        // Twice: the earlier value stays /corp.pem, not cao's own.
        export(&root, &m, "/d/bundle.pem").unwrap();
        let state = || std::fs::read_to_string(dir.path().join("state")).ok();
        assert_eq!(state().as_deref(), Some("/d/bundle.pem\n"));
        let record = load_record(&root).unwrap();
        assert_eq!(record.previous.as_deref(), Some("/corp.pem"));
        assert_eq!(fsutil::mode_of(&root.join(RECORD_FILE)), Some(0o600));
        let out = restore(&root, Some(&m)).unwrap();
        assert!(out.warnings.is_empty(), "{out:?}");
        assert_eq!(state().as_deref(), Some("/corp.pem\n"));
        assert!(load_record(&root).is_none());
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(
            log.contains("setenv CODEX_CA_CERTIFICATE /d/bundle.pem\n"),
            "{log}"
        );
        assert!(
            log.ends_with("setenv CODEX_CA_CERTIFICATE /corp.pem\n"),
            "{log}"
        );
        // Nothing recorded: nothing to do.
        assert_eq!(restore(&root, Some(&m)).unwrap(), Outcome::default());
    }

    #[test]
    fn launchctl_restore_unsets_and_leaves_a_value_changed_since() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let m = Mechanism::Launchctl {
            program: fake_launchctl(dir.path()),
        };
        export(&root, &m, "/d/bundle.pem").unwrap();
        restore(&root, Some(&m)).unwrap();
        assert!(!dir.path().join("state").exists(), "unset again");
        export(&root, &m, "/d/bundle.pem").unwrap();
        std::fs::write(dir.path().join("state"), "/mine.pem\n").unwrap();
        let out = restore(&root, Some(&m)).unwrap();
        assert_eq!(out.warnings.len(), 1, "{out:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("state")).unwrap(),
            "/mine.pem\n"
        );
    }

    #[test]
    fn a_failing_tool_is_a_warning_and_nothing_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mechanism::Launchctl {
            program: dir.path().join("missing"),
        };
        let out = export(dir.path(), &m, "/d/bundle.pem").unwrap();
        assert!(!out.exported());
        assert_eq!(out.warnings.len(), 1, "{out:?}");
        assert!(load_record(dir.path()).is_none());
    }
}
