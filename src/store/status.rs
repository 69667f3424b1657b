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

/// `lastError` after a usage-limit hit: the TypeScript tool's spelling, written by `cao run`
/// and the gateway alike.
pub const USAGE_LIMIT_ERROR: &str = "usage_limit_reached";

/// cao-only key remembering which auth.json (its mtime, ms) a `needsLogin` verdict was about:
/// when auth.json changes (a new login), the verdict no longer applies.
pub const NEEDS_LOGIN_MTIME_KEY: &str = "needsLoginAuthMtimeMs";

/// Something that happened to an account, as account_status.json records it. What each one
/// does to the record is [`AccountStatus::apply`], for `cao run` and the gateway alike.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusEvent {
    /// An attempt started on the account.
    Attempted,
    /// The account served the request (or Codex ran to the end on it).
    Succeeded,
    /// The account hit its usage limit; it cools until `cooling_until_ms`.
    QuotaHit { cooling_until_ms: i64 },
    /// Any other failure, with what went wrong and, if it rests, until when.
    Failed {
        error: String,
        cooling_until_ms: Option<i64>,
    },
    /// A token refresh failed for good: it needs `codex login`; about the auth.json whose
    /// mtime (ms) is given.
    LoginBroken { auth_mtime_ms: i64 },
    /// A new login was picked up.
    LoginRestored,
}

impl AccountStatus {
    /// The cooldown end, if it is still in the future at `now_ms`.
    pub fn active_cooldown(&self, now_ms: i64) -> Option<i64> {
        self.cooldown_until_ms
            .filter(|_| crate::policy::route::is_cooling(self.cooldown_until_ms, now_ms))
    }

    /// Record `event`, which happened at `now_ms`.
    ///
    /// - an attempt stamps `lastAttemptAtMs` and drops a cooldown that has ended;
    /// - a success stamps `lastSuccessAtMs`, resets the failure count, clears cooldown and error;
    /// - a usage-limit hit stamps `lastQuotaAtMs`, sets the cooldown and writes
    ///   [`USAGE_LIMIT_ERROR`]; it is routine (the cooldown says it), not a failure;
    /// - another failure counts a failure (unless it is a usage limit without a reset time),
    ///   writes its error, and sets a cooldown if it has one (else keeps the current one);
    /// - a broken login sets `needsLogin` (with the auth.json it was about), a new login
    ///   clears it.
    pub fn apply(&mut self, event: &StatusEvent, now_ms: i64) {
        match event {
            StatusEvent::Attempted => {
                self.last_attempt_at_ms = Some(now_ms);
                self.cooldown_until_ms = self.active_cooldown(now_ms);
            }
            StatusEvent::Succeeded => {
                self.last_success_at_ms = Some(now_ms);
                self.consecutive_failures = Some(0);
                self.cooldown_until_ms = None;
                self.last_error = None;
            }
            StatusEvent::QuotaHit { cooling_until_ms } => {
                self.last_quota_at_ms = Some(now_ms);
                self.cooldown_until_ms = Some(*cooling_until_ms);
                self.last_error = Some(USAGE_LIMIT_ERROR.to_string());
            }
            StatusEvent::Failed {
                error,
                cooling_until_ms,
            } => {
                if cooling_until_ms.is_some() {
                    self.cooldown_until_ms = *cooling_until_ms;
                }
                if !crate::policy::health::is_usage_limit_error(error) {
                    self.count_failure();
                }
                self.last_error = Some(error.clone());
            }
            StatusEvent::LoginBroken { auth_mtime_ms } => {
                self.needs_login = Some(true);
                self.extra
                    .insert(NEEDS_LOGIN_MTIME_KEY.into(), (*auth_mtime_ms).into());
            }
            StatusEvent::LoginRestored => {
                self.needs_login = None;
                self.extra.remove(NEEDS_LOGIN_MTIME_KEY);
            }
        }
    }

    fn count_failure(&mut self) {
        self.consecutive_failures = Some(self.consecutive_failures.unwrap_or(0).saturating_add(1));
    }
}

/// Events waiting to be written, in order, for one account. Pushing an attempt or a success
/// right after attempts and successes only moves the time of the earlier one (they commute,
/// and the later time wins), so a busy account's queue stays short between two writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingEvents(Vec<(StatusEvent, i64)>);

impl PendingEvents {
    pub fn push(&mut self, event: StatusEvent, now_ms: i64) {
        let coalesces = matches!(event, StatusEvent::Attempted | StatusEvent::Succeeded);
        if coalesces {
            let tail =
                self.0.iter_mut().rev().take_while(|(e, _)| {
                    matches!(e, StatusEvent::Attempted | StatusEvent::Succeeded)
                });
            for (e, at) in tail {
                if *e == event {
                    *at = (*at).max(now_ms);
                    return;
                }
            }
        }
        self.0.push((event, now_ms));
    }

    /// Apply every event, in order.
    pub fn apply_to(&self, status: &mut AccountStatus) {
        for (event, at) in &self.0 {
            status.apply(event, *at);
        }
    }

    /// Put `earlier` (events taken before these, whose write failed) back in front.
    pub fn prepend(&mut self, earlier: PendingEvents) {
        let later = std::mem::replace(&mut self.0, earlier.0);
        for (e, at) in later {
            self.push(e, at);
        }
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
    fn one_rule_per_event_for_run_and_the_gateway() {
        let mut s = AccountStatus::default();
        s.apply(&StatusEvent::Attempted, 100);
        s.apply(
            &StatusEvent::QuotaHit {
                cooling_until_ms: 5_000,
            },
            100,
        );
        assert_eq!(s.last_attempt_at_ms, Some(100));
        assert_eq!(s.last_quota_at_ms, Some(100));
        assert_eq!(s.cooldown_until_ms, Some(5_000));
        assert_eq!(s.last_error.as_deref(), Some("usage_limit_reached"));
        assert_eq!(
            s.consecutive_failures, None,
            "a usage limit is routine, not a failure"
        );
        // A failure without a rest keeps the cooldown and counts.
        let failed = |cooling_until_ms| StatusEvent::Failed {
            error: "rate limited".into(),
            cooling_until_ms,
        };
        s.apply(&failed(None), 200);
        assert_eq!(s.cooldown_until_ms, Some(5_000));
        assert_eq!(s.consecutive_failures, Some(1));
        assert_eq!(s.last_error.as_deref(), Some("rate limited"));
        // An attempt after the cooldown ended drops it; one before keeps it.
        s.apply(&StatusEvent::Attempted, 4_000);
        assert_eq!(s.cooldown_until_ms, Some(5_000));
        s.apply(&StatusEvent::Attempted, 5_000);
        assert_eq!(s.cooldown_until_ms, None, "a cooldown ending now is over");
        s.apply(&failed(Some(9_000)), 6_000);
        assert_eq!(s.cooldown_until_ms, Some(9_000));
        s.apply(&StatusEvent::Succeeded, 7_000);
        assert_eq!(
            (
                s.consecutive_failures,
                s.cooldown_until_ms,
                s.last_error.as_deref()
            ),
            (Some(0), None, None)
        );
        assert_eq!(s.last_success_at_ms, Some(7_000));
        s.apply(&StatusEvent::LoginBroken { auth_mtime_ms: 42 }, 8_000);
        assert_eq!(s.needs_login, Some(true));
        assert_eq!(s.extra[NEEDS_LOGIN_MTIME_KEY], 42);
        s.apply(&StatusEvent::LoginRestored, 9_000);
        assert_eq!(s.needs_login, None);
        assert!(!s.extra.contains_key(NEEDS_LOGIN_MTIME_KEY));
    }

    #[test]
    fn pending_successes_coalesce_and_replay_like_the_full_sequence() {
        let mut p = PendingEvents::default();
        let mut full = Vec::new();
        for t in 1..=1000 {
            for e in [StatusEvent::Attempted, StatusEvent::Succeeded] {
                p.push(e.clone(), t);
                full.push((e, t));
            }
        }
        let quota = StatusEvent::QuotaHit {
            cooling_until_ms: 9_999,
        };
        p.push(StatusEvent::Attempted, 1001);
        p.push(quota.clone(), 1001);
        full.extend([(StatusEvent::Attempted, 1001), (quota, 1001)]);
        p.push(StatusEvent::Attempted, 1002);
        full.push((StatusEvent::Attempted, 1002));
        // Attempted, Succeeded (each moved to its latest time), QuotaHit, Attempted.
        assert_eq!(p.0.len(), 4, "{p:?}");
        let (mut a, mut b) = (AccountStatus::default(), AccountStatus::default());
        p.apply_to(&mut a);
        for (e, t) in &full {
            b.apply(e, *t);
        }
        assert_eq!(a, b);
        // A failed write puts the taken events back in front of newer ones.
        let mut newer = PendingEvents::default();
        newer.push(StatusEvent::Succeeded, 2000);
        newer.prepend(p.clone());
        assert_eq!(newer.0.len(), 5);
        assert_eq!(newer.0[4], (StatusEvent::Succeeded, 2000));
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
