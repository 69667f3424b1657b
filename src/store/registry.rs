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

/// The raw on-disk shape, tolerant of stray entries (a hand-edited file with a number or a bad
/// name in `accounts` loses only that entry), but not of a different shape: the top level must
/// be an object whose `accounts` is a list and whose `default_account` is a string or null.
#[derive(Debug, Deserialize)]
struct RawRegistry {
    #[serde(default)]
    default_account: serde_json::Value,
    accounts: Vec<serde_json::Value>,
}

/// Why registry.json text is not a registry.
#[derive(Debug)]
enum Unusable {
    /// Not JSON at all.
    NotJson(serde_json::Error),
    /// Valid JSON of another shape (`[]`, `{"accounts": "a"}`, `{}`, ...).
    WrongShape,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::NotJson(e) => write!(f, "was not valid JSON ({e})"),
            Unusable::WrongShape => f.write_str(
                "is valid JSON but not a registry (expected {\"default_account\": ..., \"accounts\": [...]})",
            ),
        }
    }
}

/// Parse registry.json text, refusing JSON of the wrong shape.
fn parse_raw(text: &str) -> Result<RawRegistry, Unusable> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(Unusable::NotJson)?;
    let default_ok = value
        .get("default_account")
        .is_none_or(|d| d.is_null() || d.is_string());
    if !default_ok {
        return Err(Unusable::WrongShape);
    }
    serde_json::from_value(value).map_err(|_| Unusable::WrongShape)
}

/// The default account named in an unusable registry.json, if it can still be read: the
/// `default_account` string of valid JSON, else the first `"default_account": "<name>"` in the
/// text (a file cut off mid-write still names it near the top).
fn recover_default(text: &str) -> Option<String> {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        return value
            .get("default_account")
            .and_then(|d| d.as_str())
            .map(|d| d.trim().to_string());
    }
    let rest = &text[text.find("\"default_account\"")? + "\"default_account\"".len()..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].trim().to_string())
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
    pub fn from_json(text: &str) -> Result<Self, String> {
        parse_raw(text)
            .map(Registry::from)
            .map_err(|e| e.to_string())
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
        let accounts = raw
            .accounts
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let default_account = raw.default_account.as_str().map(str::to_string);
        Registry {
            default_account,
            accounts,
        }
        .normalized()
    }
}

impl Store {
    /// Load registry.json. Missing: rebuilt from the account dirs that hold an auth.json (none on
    /// a fresh data dir). Unparsable or of the wrong shape: backed up to `.corrupt-<ms>` and
    /// rebuilt from the account dirs holding an auth.json or config.toml, keeping the old
    /// default when it can be read. The user is told either way.
    pub fn load_registry(&self) -> Result<Registry, StoreError> {
        let (registry, rebuilt) = self.load_registry_checked()?;
        if rebuilt {
            self.persist_rebuilt_registry(&registry);
        } else if !self.registry_path().exists() {
            self.report_unregistered_dirs()?;
        }
        Ok(registry)
    }

    /// Like [`Store::load_registry`] without writing anything; also says whether the registry
    /// was rebuilt (so the caller writes it back).
    fn load_registry_checked(&self) -> Result<(Registry, bool), StoreError> {
        let path = self.registry_path();
        let Some(text) = fsutil::read_optional(&path)? else {
            let logged_in: Vec<String> = self
                .scan_account_dirs()?
                .into_iter()
                .filter(|n| self.auth_path(n).is_file())
                .collect();
            if logged_in.is_empty() {
                return Ok((Registry::default(), false));
            }
            let mut reg = Registry::default();
            for name in &logged_in {
                reg.add(name);
            }
            self.notice(format!(
                "{} was missing; rebuilt it from the account directories with a login: {} (default: {}; change it with `cao use <name>`)",
                path.display(),
                logged_in.join(", "),
                reg.default_account.as_deref().unwrap_or("none"),
            ));
            return Ok((reg, true));
        };
        let why = match parse_raw(&text) {
            Ok(raw) => return Ok((raw.into(), false)),
            Err(why) => why,
        };
        let backup = fsutil::back_up_corrupt(&path, &text, super::now_ms())?;
        let mut rebuilt = self.rebuild_registry()?;
        let found = if rebuilt.accounts.is_empty() {
            "none found".to_string()
        } else {
            rebuilt.accounts.join(", ")
        };
        let default = match recover_default(&text) {
            Some(old) if rebuilt.contains(&old) => {
                rebuilt.default_account = Some(old.clone());
                format!("kept the default account {old}")
            }
            _ => match &rebuilt.default_account {
                Some(first) => format!(
                    "the old default account could not be recovered, so {first} is the default now (change it with `cao use <name>`)"
                ),
                None => "no default account".to_string(),
            },
        };
        self.notice(format!(
            "{} {why}; it was backed up to {} and rebuilt from the account directories: {found}; {default}",
            path.display(),
            backup.display(),
        ));
        Ok((rebuilt, true))
    }

    /// Write a registry rebuilt by a read-only caller back to disk, so the backup and the
    /// warning happen once, not on every `cao status`. Only when the state lock is free right
    /// now (a caller that holds it is inside `update_registry`, which writes it itself), and
    /// only if the file is still the one that was rebuilt (missing or unusable).
    fn persist_rebuilt_registry(&self, registry: &Registry) {
        let Ok(Some(_lock)) = self.try_lock_state() else {
            return;
        };
        let path = self.registry_path();
        let still_unusable = match fsutil::read_optional(&path) {
            Ok(None) => true,
            Ok(Some(text)) => parse_raw(&text).is_err(),
            Err(_) => false,
        };
        if still_unusable {
            let _ = self.save_registry(registry);
        }
    }

    /// With no registry.json, account dirs that hold only a config.toml (created, never logged
    /// in) are not rebuilt into one: say they exist, so nothing is hidden.
    fn report_unregistered_dirs(&self) -> Result<(), StoreError> {
        let orphans = self.scan_account_dirs()?;
        if !orphans.is_empty() {
            self.notice(format!(
                "{} is missing and these account directories are not registered: {}; register them with `cao add <name>`",
                self.registry_path().display(),
                orphans.join(", ")
            ));
        }
        Ok(())
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
        Registry::from_json(json).unwrap_or_default()
    }

    #[test]
    fn wrong_shapes_are_not_registries() {
        for text in [
            "[]",
            "{}",
            "7",
            "null",
            r#"{"accounts": "work"}"#,
            r#"{"accounts": {"work": true}}"#,
            r#"{"default_account": 3, "accounts": []}"#,
        ] {
            assert!(Registry::from_json(text).is_err(), "{text}");
        }
        assert!(Registry::from_json(r#"{"accounts": []}"#).is_ok());
    }

    #[test]
    fn the_default_is_recovered_from_broken_files() {
        assert_eq!(
            recover_default(r#"{"default_account": "work", "accounts": ["wo"#).as_deref(),
            Some("work")
        );
        assert_eq!(
            recover_default(r#"{"default_account": "home", "accounts": "x"}"#).as_deref(),
            Some("home")
        );
        assert_eq!(recover_default(r#"{"default_account": null"#), None);
        assert_eq!(recover_default("garbage"), None);
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
