//! `registry.json`: the account list and the default account.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, fsutil};
use crate::policy::names;

/// `{"default_account": "<name>"|null, "accounts": ["<name>", ...]}`, exactly as the TypeScript
/// tool writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    #[serde(default)]
    pub default_account: Option<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// The raw on-disk shape, tolerant of anything JSON can hold, so a hand-edited file with a stray
/// number or a bad name loses only that entry.
#[derive(Debug, Deserialize)]
struct RawRegistry {
    #[serde(default)]
    default_account: serde_json::Value,
    #[serde(default)]
    accounts: serde_json::Value,
}

impl Registry {
    /// Normalize like the TypeScript tool: trimmed, valid, de-duplicated names; a default that is
    /// not in the list falls back to the first account.
    pub fn normalized(self) -> Self {
        let mut accounts: Vec<String> = Vec::with_capacity(self.accounts.len());
        for name in self.accounts {
            let name = name.trim();
            if names::is_valid(name) && !accounts.iter().any(|a| a == name) {
                accounts.push(name.to_string());
            }
        }
        let default_account = self
            .default_account
            .map(|d| d.trim().to_string())
            .filter(|d| accounts.contains(d))
            .or_else(|| accounts.first().cloned());
        Self {
            default_account,
            accounts,
        }
    }

    /// Parse registry.json text the way [`Store::load_registry`] reads it (tolerant raw shape,
    /// then normalized). Exposed for the fuzz targets; the store reads files through
    /// `load_registry`.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<RawRegistry>(text).map(Registry::from)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.accounts.iter().any(|a| a == name)
    }

    /// Add `name` at the end (no-op if present); the first account becomes the default.
    pub fn add(&mut self, name: &str) -> bool {
        if self.contains(name) {
            return false;
        }
        self.accounts.push(name.to_string());
        if self.default_account.is_none() {
            self.default_account = Some(name.to_string());
        }
        true
    }

    /// Remove `name`; if it was the default, the next remaining account becomes the default.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.accounts.len();
        self.accounts.retain(|a| a != name);
        if self.default_account.as_deref() == Some(name) {
            self.default_account = self.accounts.first().cloned();
        }
        before != self.accounts.len()
    }
}

impl From<RawRegistry> for Registry {
    fn from(raw: RawRegistry) -> Self {
        let accounts = match raw.accounts {
            serde_json::Value::Array(items) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let default_account = raw.default_account.as_str().map(str::to_string);
        Registry {
            default_account,
            accounts,
        }
        .normalized()
    }
}

impl Store {
    /// Load registry.json. Missing: empty. Unparsable: backed up to `.corrupt-<ms>` and rebuilt
    /// from the account dirs holding an auth.json or config.toml (the user is told).
    pub fn load_registry(&self) -> Result<Registry, StoreError> {
        let (registry, rebuilt) = self.load_registry_checked()?;
        if rebuilt {
            self.persist_rebuilt_registry();
        }
        Ok(registry)
    }

    /// Like [`Store::load_registry`] without writing anything; also says whether the registry
    /// was rebuilt from a corrupt file (so the caller writes it back).
    fn load_registry_checked(&self) -> Result<(Registry, bool), StoreError> {
        let path = self.registry_path();
        if !path.exists() {
            return Ok((Registry::default(), false));
        }
        match self.read_json_or_back_up::<RawRegistry>(&path)? {
            Some(raw) => Ok((raw.into(), false)),
            None => {
                let rebuilt = self.rebuild_registry()?;
                self.notice(format!(
                    "rebuilt {} from the account directories: {}",
                    path.display(),
                    if rebuilt.accounts.is_empty() {
                        "none found".to_string()
                    } else {
                        rebuilt.accounts.join(", ")
                    }
                ));
                Ok((rebuilt, true))
            }
        }
    }

    /// Write a registry rebuilt by a read-only caller back to disk, so the backup and the
    /// warning happen once, not on every `cao status`. Only when the state lock is free right
    /// now: a caller that holds it is inside `update_registry`, which writes it itself.
    fn persist_rebuilt_registry(&self) {
        let Ok(Some(_lock)) = self.try_lock_state() else {
            return;
        };
        let path = self.registry_path();
        let still_corrupt = fsutil::read_optional(&path)
            .ok()
            .flatten()
            .is_some_and(|text| serde_json::from_str::<RawRegistry>(&text).is_err());
        if still_corrupt && let Ok(registry) = self.rebuild_registry() {
            let _ = self.save_registry(&registry);
        }
    }

    /// Every valid-named subdirectory of the data dir holding auth.json or config.toml, sorted.
    pub fn scan_account_dirs(&self) -> Result<Vec<String>, StoreError> {
        let entries = match std::fs::read_dir(self.root()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StoreError::io("list", self.root(), source)),
        };
        let mut found: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| names::is_valid(n))
            .filter(|n| self.auth_path(n).is_file() || self.account_config_path(n).is_file())
            .collect();
        found.sort();
        Ok(found)
    }

    fn rebuild_registry(&self) -> Result<Registry, StoreError> {
        let mut reg = Registry::default();
        for name in self.scan_account_dirs()? {
            reg.add(&name);
        }
        Ok(reg)
    }

    /// Write registry.json atomically. Callers hold [`Store::lock_state`].
    pub fn save_registry(&self, registry: &Registry) -> Result<(), StoreError> {
        self.write_json(&self.registry_path(), registry)
    }

    /// Read-modify-write registry.json under the state lock. The file is only written when the
    /// closure changed something (or the file was missing/corrupt and is being rebuilt).
    pub fn update_registry<R>(
        &self,
        f: impl FnOnce(&mut Registry) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _lock = self.lock_state()?;
        let (before, rebuilt) = self.load_registry_checked()?;
        let mut reg = before.clone();
        let out = f(&mut reg)?;
        if rebuilt || reg != before || !self.registry_path().is_file() {
            self.save_registry(&reg)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Registry {
        serde_json::from_str::<RawRegistry>(json)
            .map(Registry::from)
            .unwrap_or_default()
    }

    #[test]
    fn normalizes_like_the_typescript_tool() {
        let r = raw(r#"{"default_account":" b ","accounts":[" a","b","a","bad name",7,"c"]}"#);
        assert_eq!(r.accounts, vec!["a", "b", "c"]);
        assert_eq!(r.default_account.as_deref(), Some("b"));
    }

    #[test]
    fn default_not_in_list_falls_back_to_first() {
        let r = raw(r#"{"default_account":"zzz","accounts":["a","b"]}"#);
        assert_eq!(r.default_account.as_deref(), Some("a"));
        let r = raw(r#"{"default_account":null,"accounts":[]}"#);
        assert_eq!(r.default_account, None);
    }

    #[test]
    fn add_and_remove_keep_default_sensible() {
        let mut r = Registry::default();
        assert!(r.add("a"));
        assert!(r.add("b"));
        assert!(!r.add("a"));
        assert_eq!(r.default_account.as_deref(), Some("a"));
        assert!(r.remove("a"));
        assert_eq!(r.default_account.as_deref(), Some("b"));
        assert!(r.remove("b"));
        assert_eq!(r.default_account, None);
    }
}
