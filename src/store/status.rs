//! `account_status.json`: what cao has learned about each account (attempts, quota hits,
//! cooldowns, failures), in the TypeScript tool's camelCase shape.
//!
//! Fields cao adds (usage snapshots, login state) are optional and unknown fields are kept on
//! rewrite, so the TypeScript tool and cao can share one file.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Store, StoreError};

/// One account's status. All times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatus {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_ts"
    )]
    pub last_attempt_at_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_ts"
    )]
    pub last_success_at_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_ts"
    )]
    pub last_quota_at_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_ts"
    )]
    pub cooldown_until_ms: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_count"
    )]
    pub consecutive_failures: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_text"
    )]
    pub last_error: Option<String>,
    /// Set when a token refresh failed for good (invalid_grant, refresh_token_reused, ...):
    /// the account needs `codex login` again. cao-only field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_login: Option<bool>,
    /// The last rate-limit usage upstream reported for this account (cao-only field, so
    /// `cao status` can show it without a running gateway). Junk here is dropped, not fatal.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_usage"
    )]
    pub usage: Option<crate::policy::usage::UsageSnapshot>,
    /// Fields cao does not know (written by a newer cao or another tool), kept on rewrite.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The whole file: `{"statuses": {"<name>": {...}}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusFile {
    #[serde(default, deserialize_with = "lenient_statuses")]
    pub statuses: BTreeMap<String, AccountStatus>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl AccountStatus {
    /// The cooldown end, if it is still in the future at `now_ms`.
    pub fn active_cooldown(&self, now_ms: i64) -> Option<i64> {
        self.cooldown_until_ms.filter(|&until| until > now_ms)
    }
}

fn lenient_ts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| v.as_f64())
        .filter(|f| f.is_finite() && *f > 0.0 && *f < 9.0e15)
        .map(|f| f.floor() as i64))
}

fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| v.as_f64())
        .filter(|f| f.is_finite() && *f >= 0.0)
        .map(|f| f.floor().min(u32::MAX as f64) as u32))
}

fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| v.as_str().map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty()))
}

fn lenient_usage<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::policy::usage::UsageSnapshot>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

fn lenient_statuses<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, AccountStatus>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    let mut out = BTreeMap::new();
    if let Some(serde_json::Value::Object(map)) = v {
        for (name, value) in map {
            let name = name.trim().to_string();
            if name.is_empty() {
                continue;
            }
            let status = serde_json::from_value::<AccountStatus>(value).unwrap_or_default();
            out.insert(name, status);
        }
    }
    Ok(out)
}

impl Store {
    /// Load account_status.json. Missing: empty. Unparsable: backed up and treated as empty.
    pub fn load_statuses(&self) -> Result<StatusFile, StoreError> {
        let (file, corrupt) = self.load_statuses_checked()?;
        if corrupt {
            self.persist_reset_statuses();
        }
        Ok(file)
    }

    /// Like [`Store::load_statuses`] without writing anything; also says whether the file was
    /// corrupt (and has been backed up), so the caller replaces it.
    fn load_statuses_checked(&self) -> Result<(StatusFile, bool), StoreError> {
        let path = self.status_path();
        match self.read_json_or_back_up::<StatusFile>(&path)? {
            Some(file) => Ok((file, false)),
            None => Ok((StatusFile::default(), path.exists())),
        }
    }

    /// Replace a corrupt (already backed up) status file by an empty one, so the backup and
    /// the warning happen once. Only when the state lock is free right now: a caller holding it
    /// is inside `update_statuses`, which writes the file itself.
    fn persist_reset_statuses(&self) {
        let Ok(Some(_lock)) = self.try_lock_state() else {
            return;
        };
        let path = self.status_path();
        let still_corrupt = super::fsutil::read_optional(&path)
            .ok()
            .flatten()
            .is_some_and(|text| serde_json::from_str::<StatusFile>(&text).is_err());
        if still_corrupt {
            let _ = self.write_json(&path, &StatusFile::default());
        }
    }

    /// Read-modify-write account_status.json under the state lock.
    pub fn update_statuses<R>(
        &self,
        f: impl FnOnce(&mut StatusFile) -> R,
    ) -> Result<R, StoreError> {
        let _lock = self.lock_state()?;
        let (mut file, corrupt) = self.load_statuses_checked()?;
        let before = file.clone();
        let out = f(&mut file);
        if corrupt || file != before || !self.status_path().is_file() {
            self.write_json(&self.status_path(), &file)?;
        }
        Ok(out)
    }

    /// Update one account's status under the state lock and return the new value.
    pub fn update_account_status(
        &self,
        name: &str,
        f: impl FnOnce(&mut AccountStatus),
    ) -> Result<AccountStatus, StoreError> {
        self.update_statuses(|file| {
            let entry = file.statuses.entry(name.to_string()).or_default();
            f(entry);
            entry.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_typescript_shape_and_drops_junk_values() {
        let f: StatusFile = serde_json::from_str(
            r#"{"statuses":{"a":{"lastAttemptAtMs":1700000000000.7,"cooldownUntilMs":-5,
            "consecutiveFailures":2,"lastError":"  boom ","futureField":{"x":1}},
            " ":{},"b":"garbage"}}"#,
        )
        .unwrap_or_default();
        let a = &f.statuses["a"];
        assert_eq!(a.last_attempt_at_ms, Some(1_700_000_000_000));
        assert_eq!(a.cooldown_until_ms, None);
        assert_eq!(a.consecutive_failures, Some(2));
        assert_eq!(a.last_error.as_deref(), Some("boom"));
        assert!(a.extra.contains_key("futureField"));
        assert_eq!(f.statuses["b"], AccountStatus::default());
        assert_eq!(f.statuses.len(), 2);
    }

    #[test]
    fn writes_camel_case_and_keeps_unknown_fields() {
        let mut s = AccountStatus {
            cooldown_until_ms: Some(5),
            ..Default::default()
        };
        s.extra.insert("keep".into(), serde_json::json!(true));
        let v = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(v, serde_json::json!({"cooldownUntilMs": 5, "keep": true}));
    }

    #[test]
    fn usage_snapshot_round_trips_and_junk_usage_keeps_the_rest() {
        let f: StatusFile = serde_json::from_str(
            r#"{"statuses":{"a":{"cooldownUntilMs":5,"usage":{"windows":[{"family":"codex",
            "slot":"primary","usedPercent":42.0,"windowMinutes":300}],"seenAtMs":7,
            "source":"headers"},"other":1},"b":{"lastError":"x","usage":"junk"}}}"#,
        )
        .unwrap_or_default();
        let a = &f.statuses["a"];
        let u = a.usage.as_ref().map(|u| u.windows[0].used_percent);
        assert_eq!(u, Some(42.0));
        assert!(a.extra.contains_key("other") && !a.extra.contains_key("usage"));
        let back = serde_json::to_value(a).unwrap_or_default();
        assert_eq!(back["usage"]["windows"][0]["windowMinutes"], 300);
        assert_eq!(f.statuses["b"].last_error.as_deref(), Some("x"));
        assert_eq!(f.statuses["b"].usage, None);
    }

    #[test]
    fn active_cooldown_only_in_future() {
        let s = AccountStatus {
            cooldown_until_ms: Some(100),
            ..Default::default()
        };
        assert_eq!(s.active_cooldown(99), Some(100));
        assert_eq!(s.active_cooldown(100), None);
    }
}
