//! JSON records for `cao status --json` and `cao status --report json`: the TypeScript tool's
//! field names and order, plus `email`, `planType` and `needsLogin`, plus whatever
//! [`super::extra::json_fields`] adds (usage).

use serde::Serialize;

use super::{RenderOpts, extra, time};
use crate::store::inspect::{AccountView, Overview};

/// One account in `status --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRecord<'a> {
    pub name: &'a str,
    pub is_default: bool,
    pub logged_in: bool,
    pub account_id: Option<&'a str>,
    pub organization_id: Option<&'a str>,
    pub token_expires_at_ms: Option<i64>,
    pub token_expires_at_iso: Option<String>,
    pub token_expires_in_ms: Option<i64>,
    pub last_refresh_at_ms: Option<i64>,
    pub last_refresh_at_iso: Option<String>,
    pub last_attempt_at_ms: Option<i64>,
    pub last_attempt_at_iso: Option<String>,
    pub last_success_at_ms: Option<i64>,
    pub last_success_at_iso: Option<String>,
    pub last_quota_at_ms: Option<i64>,
    pub last_quota_at_iso: Option<String>,
    pub cooldown_until_ms: Option<i64>,
    pub cooldown_until_iso: Option<String>,
    pub cooldown_remaining_ms: i64,
    pub consecutive_failures: u32,
    pub last_error: Option<&'a str>,
    pub account_dir: String,
    pub auth_file_path: String,
    pub email: Option<&'a str>,
    pub plan_type: Option<&'a str>,
    pub needs_login: bool,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl<'a> StatusRecord<'a> {
    pub fn new(v: &'a AccountView, r: &RenderOpts) -> Self {
        let now = r.now_ms;
        let s = &v.status;
        let exp = v.token_expires_at_ms();
        let iso = |t: Option<i64>| t.map(time::iso);
        Self {
            name: &v.name,
            is_default: v.is_default,
            logged_in: v.logged_in(),
            account_id: v.claims.chatgpt_account_id.as_deref(),
            organization_id: v.claims.organization_id.as_deref(),
            token_expires_at_ms: exp,
            token_expires_at_iso: iso(exp),
            token_expires_in_ms: exp.map(|e| (e - now).max(0)),
            last_refresh_at_ms: v.last_refresh_ms,
            last_refresh_at_iso: iso(v.last_refresh_ms),
            last_attempt_at_ms: s.last_attempt_at_ms,
            last_attempt_at_iso: iso(s.last_attempt_at_ms),
            last_success_at_ms: s.last_success_at_ms,
            last_success_at_iso: iso(s.last_success_at_ms),
            last_quota_at_ms: s.last_quota_at_ms,
            last_quota_at_iso: iso(s.last_quota_at_ms),
            cooldown_until_ms: s.cooldown_until_ms,
            cooldown_until_iso: iso(s.cooldown_until_ms),
            cooldown_remaining_ms: s.active_cooldown(now).map_or(0, |u| u - now),
            consecutive_failures: s.consecutive_failures.unwrap_or(0),
            last_error: s.last_error.as_deref(),
            account_dir: v.account_dir.to_string_lossy().into_owned(),
            auth_file_path: v.auth_path.to_string_lossy().into_owned(),
            email: v.claims.email.as_deref(),
            plan_type: v.claims.plan_type.as_deref(),
            needs_login: s.needs_login == Some(true),
            extra: extra::json_fields(v, r),
        }
    }
}

/// All records, in registry order.
pub fn records<'a>(o: &'a Overview, r: &RenderOpts) -> Vec<StatusRecord<'a>> {
    o.accounts.iter().map(|v| StatusRecord::new(v, r)).collect()
}

/// `cao status --json`: a pretty JSON array and a trailing newline.
pub fn status_json(o: &Overview, r: &RenderOpts) -> String {
    to_pretty(&records(o, r))
}

/// Fields of a record that identify a person or a machine: left out of the shareable report
/// unless `--private`.
const PRIVATE_FIELDS: [&str; 5] = [
    "email",
    "accountId",
    "organizationId",
    "accountDir",
    "authFilePath",
];

/// `cao status --report json`: `{"generatedAt": ..., "accounts": [...]}`, without emails,
/// account ids and paths unless `private`.
pub fn report_json(o: &Overview, r: &RenderOpts, private: bool) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Report<'a> {
        generated_at: String,
        accounts: Vec<StatusRecord<'a>>,
    }
    let report = Report {
        generated_at: time::iso(r.now_ms),
        accounts: records(o, r),
    };
    if private {
        return to_pretty(&report);
    }
    let mut value = serde_json::to_value(&report).unwrap_or_default();
    if let Some(accounts) = value["accounts"].as_array_mut() {
        for record in accounts.iter_mut().filter_map(|a| a.as_object_mut()) {
            for field in PRIVATE_FIELDS {
                record.remove(field);
            }
        }
    }
    to_pretty(&value)
}

/// Pretty JSON with a trailing newline (serializing these types cannot fail; `null` if it did).
pub fn to_pretty<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string());
    s.push('\n');
    s
}
