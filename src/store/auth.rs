//! Reading and writing an account's `auth.json`.

pub use super::auth_file::{AuthFile, TokenSet};

use super::{Store, StoreError, fsutil};

/// What was found at `<account>/auth.json`.
#[derive(Debug)]
pub enum AuthState {
    Missing,
    /// The file exists but does not parse, or cannot be read by this user (the reason); it is
    /// never rewritten blind.
    Unreadable(String),
    Present(AuthFile),
}

impl Store {
    /// Load an account's auth.json.
    pub fn load_auth(&self, name: &str) -> Result<AuthState, StoreError> {
        let path = self.auth_path(name);
        let text = match fsutil::read_optional(&path) {
            Ok(text) => text,
            // Root-owned after `sudo codex login`, say: this account is unusable, the others
            // are not, so it is reported like a corrupt file instead of failing the caller.
            Err(StoreError::Io { source, .. }) => {
                return Ok(AuthState::Unreadable(format!("cannot be read: {source}")));
            }
            Err(e) => return Err(e),
        };
        match text {
            None => Ok(AuthState::Missing),
            Some(text) => Ok(match AuthFile::parse(&text) {
                Ok(f) => AuthState::Present(f),
                Err(e) => AuthState::Unreadable(e),
            }),
        }
    }

    /// Write an account's auth.json atomically with mode 0600. Callers hold
    /// [`Store::lock_auth`] for that account.
    pub fn save_auth(&self, name: &str, auth: &AuthFile) -> Result<(), StoreError> {
        fsutil::ensure_private_dir(&self.account_dir(name))?;
        fsutil::write_atomic(
            &self.auth_path(name),
            auth.to_json_pretty().as_bytes(),
            fsutil::SECRET_FILE_MODE,
        )
    }
}
