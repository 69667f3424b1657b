//! Rotated tokens whose save failed: saved again in the background, and at shutdown written to
//! a rescue file so the login is never lost silently.

use std::path::PathBuf;
use std::sync::Arc;

use crate::gateway::tokens::broker::TokenBroker;
use crate::store::AuthState;
use crate::store::auth_file::TokenSet;
use crate::store::custody::fingerprint;

/// Rotated tokens that could not be saved to auth.json, written to rescue files instead. Every
/// holder of a broker that ends (the gateway, `cao run`'s token endpoint, `cao status
/// --refresh`) fails with this, so the person learns where the login went.
#[derive(Debug, thiserror::Error)]
#[error(
    "refreshed tokens could not be saved to auth.json; they are in {} (0600). Copy that file over the account's auth.json before anything refreshes it, or the login is lost",
    list(.0)
)]
pub struct Rescued(pub Vec<PathBuf>);

fn list(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl TokenBroker {
    /// The end of a broker's life: wait for refreshes in flight and their saves, save again what
    /// failed to save, and write what still cannot be saved to rescue files (the error names
    /// them).
    pub async fn finish(self: &Arc<Self>) -> Result<(), Rescued> {
        self.wait_idle().await;
        let b = self.clone();
        let files = match tokio::task::spawn_blocking(move || {
            b.retry_unsaved();
            b.write_rescue()
        })
        .await
        {
            Ok(files) => files,
            // The blocking pool is gone: do it here rather than lose the tokens.
            Err(_) => {
                self.retry_unsaved();
                self.write_rescue()
            }
        };
        if files.is_empty() {
            Ok(())
        } else {
            Err(Rescued(files))
        }
    }

    /// Accounts holding rotated tokens that are not saved yet.
    pub fn unsaved_accounts(&self) -> Vec<String> {
        let m = match self.records.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.iter()
            .filter(|(_, r)| r.unsaved.lock().is_ok_and(|u| u.is_some()))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Try again to save rotated tokens whose save failed (blocking; background and shutdown).
    pub fn retry_unsaved(&self) {
        for account in self.unsaved_accounts() {
            let rec = self.record(&account);
            let Some(file) = rec.unsaved.lock().ok().and_then(|u| u.clone()) else {
                continue;
            };
            let Ok(lease) = self.custody.lease(&account) else {
                continue;
            };
            let disk_rt = match self.custody.read(&lease, &account) {
                Ok((AuthState::Present(f), _)) => f.tokens().and_then(|t| t.refresh_token),
                _ => None,
            };
            let result = self.custody.prepare(&lease, &account).and_then(|slot| {
                self.custody
                    .publish(&lease, &account, slot, disk_rt.as_deref(), &file)
            });
            if result.is_ok() {
                if let Ok(mut u) = rec.unsaved.lock() {
                    *u = None;
                }
                tracing::info!(account, "saved the refreshed tokens");
            }
        }
    }

    /// Write every login that could not be saved to a rescue file (0600): in the account dir,
    /// else the data dir, else the home dir, else the temp dir. Returns the files written.
    pub fn write_rescue(&self) -> Vec<PathBuf> {
        let mut written = Vec::new();
        let now = crate::store::now_ms();
        for account in self.unsaved_accounts() {
            let Some(file) = self
                .record(&account)
                .unsaved
                .lock()
                .ok()
                .and_then(|u| u.clone())
            else {
                continue;
            };
            let name = format!("{account}-auth.json.rescue-{now}");
            let mut dirs = vec![
                self.store.account_dir(&account),
                self.store.root().to_path_buf(),
            ];
            dirs.extend(crate::store::home_dir("").ok());
            dirs.push(std::env::temp_dir());
            for dir in dirs {
                let path = dir.join(&name);
                if crate::store::fsutil::write_atomic(
                    &path,
                    file.to_json_pretty().as_bytes(),
                    crate::store::fsutil::SECRET_FILE_MODE,
                )
                .is_ok()
                {
                    written.push(path);
                    break;
                }
            }
        }
        written
    }

    /// Whether `tokens` (just read from a changed auth.json) are a new login rather than a
    /// descendant of a rejected one or a token already spent.
    pub fn is_new_login(&self, account: &str, tokens: &TokenSet) -> bool {
        let Some(rt) = &tokens.refresh_token else {
            return false;
        };
        let fp = fingerprint(rt);
        let ledger = self.ledger(account);
        !ledger.knows(&fp) && !ledger.descends_from_rejected(&fp)
    }
}
