//! The data dir: where accounts, their status and the gateway settings live.
//!
//! The layout is the TypeScript CAO v1.4.2's, so its users switch with no migration:
//!
//! ```text
//! <data dir>/registry.json        default account + account order
//! <data dir>/account_status.json  per-account attempts, cooldowns, failures, usage
//! <data dir>/gateway.json         saved `cao gateway start` options
//! <data dir>/gateway.runtime.json where the running gateway listens (pid, URLs), while it runs
//! <data dir>/config.toml          cao's own settings (quota_patterns, ...)
//! <data dir>/<name>/auth.json     Codex's own auth file for that account
//! <data dir>/<name>/config.toml   Codex config for that account
//! ```
//!
//! Every write goes through [`fsutil::write_atomic`] under [`fsutil::FileLock`].

pub(crate) mod auth;
pub mod auth_file;
pub mod custody;
pub mod fsutil;
pub(crate) mod gateway;
pub(crate) mod inspect;
pub(crate) mod registry;
pub(crate) mod runtime;
pub(crate) mod shared_login;
pub(crate) mod status;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use auth::{AuthFile, AuthState, TokenSet};
pub use fsutil::FileLock;
pub use gateway::SavedGateway;
pub use registry::Registry;
pub use runtime::GatewayRuntime;
pub use status::{AccountStatus, StatusFile};

/// File names inside the data dir.
pub(crate) const REGISTRY_FILE: &str = "registry.json";
pub(crate) const STATUS_FILE: &str = "account_status.json";
pub(crate) const GATEWAY_FILE: &str = "gateway.json";
pub(crate) const CAO_CONFIG_FILE: &str = "config.toml";
pub(crate) const AUTH_FILE: &str = "auth.json";
pub(crate) const ACCOUNT_CONFIG_FILE: &str = "config.toml";
/// Lock guarding registry.json, account_status.json and gateway.json.
pub(crate) const STATE_LOCK_FILE: &str = ".cao.lock";
/// Lock guarding one account's auth.json (inside the account dir).
pub(crate) const AUTH_LOCK_FILE: &str = ".auth.lock";

/// What an account's `config.toml` holds when cao creates it.
pub(crate) const DEFAULT_ACCOUNT_CONFIG: &str = "# Codex config for this account\ncli_auth_credentials_store = \"file\"\nforced_login_method = \"chatgpt\"\n";

/// Errors from the data dir. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON ({detail}); fix or remove it", path.display())]
    Parse { path: PathBuf, detail: String },
    #[error("{key} in {} is not valid: {detail}; fix or remove it", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        detail: String,
    },
    #[error(
        "invalid account name {name:?}: use 1-64 letters, digits, '-' or '_', not starting with '-' (for example \"work-2\")"
    )]
    InvalidName { name: String },
    #[error(
        "account name {name:?} differs from the existing account {existing:?} only in letter case; on macOS and Windows they would be one directory, so pick another name (or use {existing:?})"
    )]
    CaseTwin { name: String, existing: String },
    #[error("account {name:?} does not exist; run `cao list` to see the accounts")]
    UnknownAccount { name: String },
    #[error("account {name:?} has no auth.json; log in with `cao add {name}`")]
    NotLoggedIn { name: String },
    /// `HOME` is needed to find a default path and is not set (a service, `env -i`, ...).
    #[error("HOME is not set; {advice}")]
    NoHome { advice: &'static str },
    #[error("the data dir {} is not a directory; pass --data-dir <dir> (or set CAO_DATA_DIR) to a directory", path.display())]
    DataDirNotADirectory { path: PathBuf },
    #[error(
        "cannot expand {value:?}: only a leading `~/` (your home) is understood; write the full path"
    )]
    UnexpandableTilde { value: String },
    /// The shared state of several gateways (`--state`) could not be used for token custody:
    /// nothing was spent.
    #[error("shared token custody: {0}")]
    Shared(String),
}

impl StoreError {
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The clock, for the rooms that still reach it through the store (it lives in
/// [`crate::clock`]).
pub use crate::clock::now_ms;

/// Handle on one data dir. Cheap to create; holds no open files.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    notices: Mutex<Vec<String>>,
}

impl Store {
    /// Resolve the data dir: `--data-dir`, else `CAO_DATA_DIR`, else
    /// `~/.codex-account-orchestrator`. A leading `~/` in either is the home directory (a
    /// shell does not expand it in `CAO_DATA_DIR=~/x` or `--data-dir=~/x`). Does not create
    /// it, but refuses a path that exists and is not a directory.
    pub fn resolve(flag: Option<&Path>) -> Result<Self, StoreError> {
        const ADVICE: &str = "pass --data-dir <dir> or set CAO_DATA_DIR";
        let root = match flag {
            Some(p) if !p.as_os_str().is_empty() => expand_tilde(p, ADVICE)?,
            _ => match std::env::var_os("CAO_DATA_DIR").filter(|v| !v.is_empty()) {
                Some(v) => expand_tilde(Path::new(&v), ADVICE)?,
                None => home_dir(ADVICE)?.join(".codex-account-orchestrator"),
            },
        };
        if std::fs::metadata(&root).is_ok_and(|m| !m.is_dir()) {
            return Err(StoreError::DataDirNotADirectory { path: root });
        }
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map_err(|source| StoreError::io("read the current directory for", &root, source))?
                .join(root)
        };
        Ok(Self::at(root))
    }

    /// A store rooted at exactly `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            notices: Mutex::new(Vec::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Refuse a name that is not `^[A-Za-z0-9_-]{1,64}$` (so nothing lands outside the data dir).
    pub fn check_name<'n>(&self, name: &'n str) -> Result<&'n str, StoreError> {
        if crate::policy::names::is_valid(name) {
            Ok(name)
        } else {
            Err(StoreError::InvalidName {
                name: name.to_string(),
            })
        }
    }

    /// Check a name for a new account: valid, no leading `-`, and no existing account whose
    /// name differs only in letter case.
    pub fn check_new_name<'n>(&self, name: &'n str) -> Result<&'n str, StoreError> {
        if !crate::policy::names::is_valid_new(name) {
            return Err(StoreError::InvalidName {
                name: name.to_string(),
            });
        }
        let mut existing = self.load_registry()?.accounts;
        existing.extend(self.scan_account_dirs()?);
        match crate::policy::names::case_twin(&existing, name) {
            Some(twin) => Err(StoreError::CaseTwin {
                name: name.to_string(),
                existing: twin.to_string(),
            }),
            None => Ok(name),
        }
    }

    /// Create the data dir (0700) if needed.
    pub fn ensure_root(&self) -> Result<(), StoreError> {
        fsutil::ensure_private_dir(&self.root)
    }

    pub fn registry_path(&self) -> PathBuf {
        self.root.join(REGISTRY_FILE)
    }
    pub fn status_path(&self) -> PathBuf {
        self.root.join(STATUS_FILE)
    }
    pub fn gateway_path(&self) -> PathBuf {
        self.root.join(GATEWAY_FILE)
    }
    pub fn cao_config_path(&self) -> PathBuf {
        self.root.join(CAO_CONFIG_FILE)
    }
    /// `<data dir>/<name>`. The name must already be valid (see [`crate::policy::names`]).
    pub fn account_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub fn auth_path(&self, name: &str) -> PathBuf {
        self.account_dir(name).join(AUTH_FILE)
    }
    pub fn account_config_path(&self, name: &str) -> PathBuf {
        self.account_dir(name).join(ACCOUNT_CONFIG_FILE)
    }

    /// Take the data-dir state lock (creating the data dir if needed). Hold it across every
    /// read-modify-write of registry.json, account_status.json or gateway.json.
    pub fn lock_state(&self) -> Result<FileLock, StoreError> {
        self.ensure_root()?;
        FileLock::acquire(&self.root.join(STATE_LOCK_FILE))
    }

    /// Take the state lock only if it is free right now (`Ok(None)` otherwise). For
    /// best-effort repairs that must never wait or deadlock.
    pub fn try_lock_state(&self) -> Result<Option<FileLock>, StoreError> {
        self.ensure_root()?;
        FileLock::try_acquire(&self.root.join(STATE_LOCK_FILE))
    }

    /// Take one account's auth lock. Hold it across reading, refreshing and writing auth.json.
    pub fn lock_auth(&self, name: &str) -> Result<FileLock, StoreError> {
        let dir = self.account_dir(name);
        fsutil::ensure_private_dir(&dir)?;
        FileLock::acquire(&dir.join(AUTH_LOCK_FILE))
    }

    /// Record a warning for the user (a corrupt file backed up, a registry rebuilt, ...).
    /// The command layer prints these on stderr; the gateway logs them.
    pub fn notice(&self, message: impl Into<String>) {
        if let Ok(mut n) = self.notices.lock() {
            n.push(message.into());
        }
    }

    /// Drain the warnings recorded so far.
    pub fn take_notices(&self) -> Vec<String> {
        self.notices
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    /// Parse a JSON state file. A missing file is `Ok(None)`. A file that does not parse is
    /// copied to `<file>.corrupt-<ms>` (never overwritten blind), a notice is recorded, and
    /// `Ok(None)` is returned so the caller carries on with an empty/rebuilt value.
    pub fn read_json_or_back_up<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, StoreError> {
        let Some(raw) = fsutil::read_optional(path)? else {
            return Ok(None);
        };
        match serde_json::from_str::<T>(&raw) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let backup = fsutil::back_up_corrupt(path, &raw, now_ms())?;
                self.notice(format!(
                    "{} was not valid JSON ({e}); it was backed up to {}",
                    path.display(),
                    backup.display()
                ));
                Ok(None)
            }
        }
    }

    /// Serialize `value` as pretty JSON (trailing newline, like the TypeScript tool) and write it
    /// atomically with mode 0600. Callers hold the relevant lock.
    pub fn write_json<T: serde::Serialize>(
        &self,
        path: &Path,
        value: &T,
    ) -> Result<(), StoreError> {
        let mut text = serde_json::to_string_pretty(value).map_err(|e| StoreError::Parse {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        text.push('\n');
        fsutil::write_atomic(path, text.as_bytes(), fsutil::SECRET_FILE_MODE)
    }
}

/// The user's home directory (`HOME`). Without it there is no sensible default (falling back
/// to `/` once wrote `/.codex/config.toml`), so the caller's `advice` says what to pass instead.
pub(crate) fn home_dir(advice: &'static str) -> Result<PathBuf, StoreError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or(StoreError::NoHome { advice })
}

/// `~` or `~/rest` becomes the home directory (`advice` if HOME is unset); `~user/...` is
/// refused (cao does not look users up); anything else is returned as is.
pub(crate) fn expand_tilde(path: &Path, advice: &'static str) -> Result<PathBuf, StoreError> {
    let text = path.to_string_lossy();
    if !text.starts_with('~') {
        return Ok(path.to_path_buf());
    }
    if text == "~" {
        return home_dir(advice);
    }
    match text.strip_prefix("~/") {
        Some(rest) => Ok(home_dir(advice)?.join(rest)),
        None => Err(StoreError::UnexpandableTilde {
            value: text.into_owned(),
        }),
    }
}
