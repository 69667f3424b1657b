//! A read-only view of every registered account, loaded once: what `cao status`, `cao list`,
//! doctor and the gateway's status show.
//!
//! Speed matters here (`cao status --json` runs in scripts and prompts): one read of
//! registry.json and account_status.json, then one open + fstat + read per auth.json, and no
//! locks (nothing is written, and every file is replaced atomically, so a read never sees a torn
//! file).

use std::io::Read;
use std::path::PathBuf;

use super::shared_login::{self, Login as HeldLogin};
use super::{AccountStatus, Store, StoreError};
use crate::policy::health::{self, HealthInput, Login, SharedWith};
use crate::store::auth_file::{AuthFile, Claims};

/// What one account's auth.json holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthView {
    Missing,
    /// Present but not valid JSON (the parse error, never the content).
    Unreadable(String),
    /// Present but cannot be read by this user (e.g. root-owned after `sudo codex login`):
    /// the I/O error. Treated like a corrupt file: shown, never fatal for the other accounts.
    NoAccess(String),
    /// Valid JSON without an access token but with an API key.
    ApiKeyOnly,
    /// Valid JSON without an access token.
    NoTokens,
    /// A ChatGPT login.
    LoggedIn,
}

/// One account as status and doctor see it.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub name: String,
    pub is_default: bool,
    pub account_dir: PathBuf,
    pub auth_path: PathBuf,
    pub auth: AuthView,
    /// Claims of the tokens (empty unless logged in).
    pub claims: Claims,
    /// `last_refresh` of auth.json, milliseconds since the epoch.
    pub last_refresh_ms: Option<i64>,
    /// The account's entry in account_status.json (default when absent).
    pub status: AccountStatus,
    /// Unix mode of auth.json, when it exists.
    pub auth_mode: Option<u32>,
    /// auth.json holds a refresh token (an expired access token is renewed on use).
    pub has_refresh_token: bool,
    /// The login's fingerprint (for finding one login in two places; no token inside).
    pub held: Option<HeldLogin>,
    /// Other places holding this login (filled by [`Store::inspect`]).
    pub shared_with: Vec<SharedWith>,
}

impl AccountView {
    pub fn logged_in(&self) -> bool {
        self.auth == AuthView::LoggedIn
    }

    /// Where the account stands, in the one vocabulary every view uses (`ready`, `full`,
    /// `cooling`, `spent`, `needs-login`, `unreadable`): [`crate::policy::account::assess`] of
    /// what the files know, the last seen usage included.
    pub fn state(&self, switch_at: f64, now_ms: i64) -> crate::policy::account::State {
        let facts = crate::policy::account::Facts {
            unreadable: matches!(self.auth, AuthView::NoAccess(_)),
            needs_login: !self.logged_in() || self.status.needs_login == Some(true),
            cooldown_until_ms: self.status.cooldown_until_ms,
            used_percent: self
                .status
                .usage
                .as_ref()
                .and_then(|u| u.fullness(now_ms))
                .map(|f| f.used_percent),
        };
        crate::policy::account::assess(&facts, switch_at, now_ms)
    }

    /// Access-token expiry in milliseconds since the epoch.
    pub fn token_expires_at_ms(&self) -> Option<i64> {
        self.claims.exp.map(|s| s.saturating_mul(1000))
    }

    /// The input health evaluation needs. `auth_path` must outlive the result; pass
    /// `self.auth_path.to_string_lossy()`.
    pub fn health_input<'a>(&'a self, auth_path: &'a str) -> HealthInput<'a> {
        HealthInput {
            name: &self.name,
            login: match &self.auth {
                AuthView::LoggedIn => Login::LoggedIn,
                AuthView::Missing => Login::Missing,
                AuthView::Unreadable(e) => Login::Unreadable(e.clone()),
                AuthView::NoAccess(e) => Login::NoAccess(e.clone()),
                AuthView::ApiKeyOnly => Login::ApiKeyOnly,
                AuthView::NoTokens => Login::NoTokens,
            },
            token_expires_at_ms: self.token_expires_at_ms(),
            has_refresh_token: self.has_refresh_token,
            cooldown_until_ms: self.status.cooldown_until_ms,
            last_attempt_at_ms: self.status.last_attempt_at_ms,
            last_quota_at_ms: self.status.last_quota_at_ms,
            consecutive_failures: self.status.consecutive_failures,
            last_error: self.status.last_error.as_deref(),
            needs_login: self.status.needs_login == Some(true),
            loose_auth_mode: self.auth_mode.filter(|m| health::mode_is_loose(*m)),
            auth_path,
            usage: self.status.usage.as_ref(),
            shared_with: &self.shared_with,
        }
    }
}

/// Every registered account, in registry order.
#[derive(Debug, Clone)]
pub struct Overview {
    pub data_dir: PathBuf,
    pub default_account: Option<String>,
    pub accounts: Vec<AccountView>,
}

impl Overview {
    /// Evaluate health for every account at `now_ms`.
    pub fn health(&self, options: &health::HealthOptions, now_ms: i64) -> health::HealthSummary {
        let paths: Vec<String> = self
            .accounts
            .iter()
            .map(|a| a.auth_path.to_string_lossy().into_owned())
            .collect();
        let inputs: Vec<HealthInput<'_>> = self
            .accounts
            .iter()
            .zip(&paths)
            .map(|(a, p)| a.health_input(p))
            .collect();
        health::summarize(&inputs, options, now_ms)
    }

    pub fn get(&self, name: &str) -> Option<&AccountView> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

impl Store {
    /// Load the registry, the status file and every account's auth.json into one view.
    pub fn inspect(&self) -> Result<Overview, StoreError> {
        let registry = self.load_registry()?;
        let mut statuses = if registry.accounts.is_empty() {
            Default::default()
        } else {
            self.load_statuses()?.statuses
        };
        let jobs: Vec<(&str, bool, AccountStatus)> = registry
            .accounts
            .iter()
            .map(|name| {
                (
                    name.as_str(),
                    registry.default_account.as_deref() == Some(name),
                    statuses.remove(name).unwrap_or_default(),
                )
            })
            .collect();
        let mut accounts = self.inspect_all(jobs)?;
        mark_shared(&mut accounts);
        Ok(Overview {
            data_dir: self.root().to_path_buf(),
            default_account: registry.default_account,
            accounts,
        })
    }

    /// Inspect many accounts; large sets are read on several threads (each account costs a
    /// file open, read and two JWT decodes, ~10 us; threads cost ~30 us to start).
    fn inspect_all(
        &self,
        jobs: Vec<(&str, bool, AccountStatus)>,
    ) -> Result<Vec<AccountView>, StoreError> {
        const PER_THREAD_MIN: usize = 64;
        let threads = if jobs.len() >= 2 * PER_THREAD_MIN {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(jobs.len() / PER_THREAD_MIN)
                .min(8)
        } else {
            1
        };
        if threads <= 1 {
            return jobs
                .into_iter()
                .map(|(name, is_default, status)| self.inspect_account(name, is_default, status))
                .collect();
        }
        let chunk = jobs.len().div_ceil(threads);
        let mut jobs = jobs;
        let mut chunks = Vec::with_capacity(threads);
        while !jobs.is_empty() {
            let rest = jobs.split_off(chunk.min(jobs.len()));
            chunks.push(std::mem::replace(&mut jobs, rest));
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .into_iter()
                            .map(|(name, is_default, status)| {
                                self.inspect_account(name, is_default, status)
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            let mut out = Vec::new();
            for handle in handles {
                match handle.join() {
                    Ok(part) => out.extend(part?),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Ok(out)
        })
    }

    /// Load one account's auth.json into a view (given its status entry).
    pub fn inspect_account(
        &self,
        name: &str,
        is_default: bool,
        status: AccountStatus,
    ) -> Result<AccountView, StoreError> {
        let account_dir = self.account_dir(name);
        let auth_path = self.auth_path(name);
        let (text, auth_mode) = match read_with_mode(&auth_path) {
            Ok(read) => read,
            Err(StoreError::Io { source, .. }) => {
                let view = AccountView {
                    name: name.to_string(),
                    is_default,
                    account_dir,
                    auth_path,
                    auth: AuthView::NoAccess(source.to_string()),
                    claims: Claims::default(),
                    last_refresh_ms: None,
                    status,
                    auth_mode: None,
                    has_refresh_token: false,
                    held: None,
                    shared_with: Vec::new(),
                };
                return Ok(view);
            }
            Err(e) => return Err(e),
        };
        let mut has_refresh_token = false;
        let mut held = None;
        let (auth, claims, last_refresh_ms) = match text {
            None => (AuthView::Missing, Claims::default(), None),
            Some(text) => match AuthFile::parse(&text) {
                Err(e) => (AuthView::Unreadable(e), Claims::default(), None),
                Ok(file) => match file.tokens() {
                    Some(t) => {
                        has_refresh_token = t.refresh_token.is_some_and(|r| !r.is_empty());
                        held = HeldLogin::of(&auth_path, &file);
                        (AuthView::LoggedIn, file.claims(), file.last_refresh_ms())
                    }
                    None if file.api_key().is_some() => {
                        (AuthView::ApiKeyOnly, Claims::default(), None)
                    }
                    None => (AuthView::NoTokens, Claims::default(), None),
                },
            },
        };
        Ok(AccountView {
            name: name.to_string(),
            is_default,
            account_dir,
            auth_path,
            auth,
            claims,
            last_refresh_ms,
            status,
            auth_mode,
            has_refresh_token,
            held,
            shared_with: Vec::new(),
        })
    }
}

/// Note on each account every other place holding its login: another account, or Codex's own
/// auth.json (read only when some account is logged in).
fn mark_shared(accounts: &mut [AccountView]) {
    let mut logins: Vec<HeldLogin> = accounts.iter().filter_map(|a| a.held.clone()).collect();
    if logins.is_empty() {
        return;
    }
    logins.extend(shared_login::codex_home_login());
    for s in shared_login::shared(&logins) {
        for (this, other) in [(&s.a, &s.b), (&s.b, &s.a)] {
            if let Some(v) = accounts.iter_mut().find(|v| v.auth_path == this.place) {
                v.shared_with.push(SharedWith {
                    place: other.place.to_string_lossy().into_owned(),
                    linked: s.linked,
                });
            }
        }
    }
}

/// Read a file and its permission bits with one open (fstat on the handle, no second lookup).
fn read_with_mode(path: &std::path::Path) -> Result<(Option<String>, Option<u32>), StoreError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, None)),
        Err(source) => return Err(StoreError::io("open", path, source)),
    };
    let meta = file
        .metadata()
        .map_err(|source| StoreError::io("read metadata of", path, source))?;
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o777)
    };
    #[cfg(not(unix))]
    let mode = None;
    // Read into a buffer sized from the fstat above (`read_to_end` on a File would stat and
    // seek again); loop in case the file grew meanwhile.
    let mut bytes = vec![0u8; usize::try_from(meta.len()).unwrap_or(0) + 1];
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            bytes.resize(bytes.len() * 2, 0);
        }
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(StoreError::io("read", path, source)),
        }
    }
    bytes.truncate(filled);
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok((Some(text), mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(auth: &[(&str, &str)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::at(dir.path());
        let names: Vec<&str> = auth.iter().map(|(n, _)| *n).collect();
        for (name, text) in auth {
            std::fs::create_dir_all(store.account_dir(name)).unwrap_or_default();
            if !text.is_empty() {
                std::fs::write(store.auth_path(name), text).unwrap_or_default();
            }
        }
        let reg = serde_json::json!({"default_account": names.get(1), "accounts": names});
        std::fs::write(store.registry_path(), reg.to_string()).unwrap_or_default();
        (dir, store)
    }

    #[test]
    fn classifies_every_kind_of_auth_json() {
        let jwt = crate::store::auth_file::make_unsigned_jwt(&serde_json::json!({
            "exp": 2_000_000_000,
            "https://api.openai.com/auth": {"chatgpt_account_id": "acc-1"}
        }));
        let ok = format!(
            r#"{{"tokens":{{"access_token":"{jwt}"}},"last_refresh":"2026-01-01T00:00:00Z"}}"#
        );
        let (_dir, store) = store_with(&[
            ("ok", &ok),
            ("missing", ""),
            ("broken", "{nope"),
            ("apikey", r#"{"OPENAI_API_KEY":"sk-test","tokens":null}"#),
            ("empty", r#"{"tokens":{"access_token":""}}"#),
        ]);
        let o = store.inspect().unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<&AuthView> = o.accounts.iter().map(|a| &a.auth).collect();
        assert_eq!(kinds[0], &AuthView::LoggedIn);
        assert_eq!(kinds[1], &AuthView::Missing);
        assert!(matches!(kinds[2], AuthView::Unreadable(_)));
        assert_eq!(kinds[3], &AuthView::ApiKeyOnly);
        assert_eq!(kinds[4], &AuthView::NoTokens);
        let okv = &o.accounts[0];
        assert_eq!(okv.token_expires_at_ms(), Some(2_000_000_000_000));
        assert_eq!(okv.claims.chatgpt_account_id.as_deref(), Some("acc-1"));
        assert_eq!(okv.last_refresh_ms, Some(1_767_225_600_000));
        assert!(o.accounts[1].is_default);
        assert_eq!(o.accounts[1].auth_mode, None);
        assert!(okv.auth_mode.is_some());
        // Only a ChatGPT login counts as logged in.
        assert_eq!(o.accounts.iter().filter(|a| a.logged_in()).count(), 1);
    }

    #[test]
    fn empty_registry_reads_nothing_else() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::at(dir.path().join("absent"));
        let o = store.inspect().unwrap_or_else(|e| panic!("{e}"));
        assert!(o.accounts.is_empty());
        assert!(
            !dir.path().join("absent").exists(),
            "a read creates nothing"
        );
    }
}
