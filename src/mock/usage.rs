//! The mock's usage endpoint: `GET …/wham/usage` (and `/api/codex/usage`) per account, in the
//! backend's shape (integers, as Codex decodes them): 0 % used unless `usage` in the account's
//! faults sets the numbers (independent of `quota`, so a test says what the endpoint reports) or
//! makes the endpoint fail (`status`: 401, 403, 5xx; `deactivated`: 402 `deactivated_workspace`).

use http::StatusCode;
use serde_json::{Value, json};

use super::scenario::AccountFaults;

/// Whether `path` is the usage endpoint (both path styles).
pub(super) fn is_usage_path(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    p.ends_with("/wham/usage") || p.ends_with("/api/codex/usage")
}

/// The usage answer for `account` with `faults` at `now_s` (unix seconds).
pub(super) fn answer(
    faults: &AccountFaults,
    account: Option<&str>,
    now_s: i64,
) -> (StatusCode, Value) {
    let u = faults.usage.clone().unwrap_or_default();
    if u.deactivated {
        return (
            StatusCode::PAYMENT_REQUIRED,
            json!({"detail": {"code": "deactivated_workspace"}}),
        );
    }
    if let Some(status) = u.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            json!({"error": {"message": "mock upstream: injected usage error", "code": status.as_u16()}}),
        );
    }
    let primary_used = u.primary_used_percent.unwrap_or(0);
    let primary_reset = u.primary_reset_in_seconds.unwrap_or(18_000);
    let secondary_reset = u.secondary_reset_in_seconds.unwrap_or(604_800);
    let window = |used: i64, len: i64, reset_in: i64| {
        json!({"used_percent": used, "limit_window_seconds": len,
               "reset_after_seconds": reset_in, "reset_at": now_s + reset_in})
    };
    let reached = primary_used >= 100 || u.secondary_used_percent.unwrap_or(0) >= 100;
    (
        StatusCode::OK,
        json!({
            "plan_type": u.plan_type.unwrap_or_else(|| "plus".to_string()),
            "account_id": account,
            "rate_limit": {
                "allowed": !reached,
                "limit_reached": reached,
                "primary_window": window(primary_used, 18_000, primary_reset),
                "secondary_window": window(u.secondary_used_percent.unwrap_or(0), 604_800, secondary_reset),
            },
            "credits": {"has_credits": false, "unlimited": false, "balance": "0"},
            "additional_rate_limits": [],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::scenario::UsageFault;

    #[test]
    fn usage_follows_the_account_faults() {
        let f = AccountFaults::default();
        let (s, v) = answer(&f, Some("a"), 1000);
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["rate_limit"]["primary_window"]["used_percent"], 0);
        assert_eq!(v["rate_limit"]["primary_window"]["reset_at"], 19_000);
        let spent = AccountFaults {
            usage: Some(UsageFault {
                primary_used_percent: Some(100),
                primary_reset_in_seconds: Some(600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (_, v) = answer(&spent, Some("a"), 1000);
        assert_eq!(v["rate_limit"]["primary_window"]["used_percent"], 100);
        assert_eq!(
            v["rate_limit"]["primary_window"]["reset_after_seconds"],
            600
        );
        assert_eq!(v["rate_limit"]["limit_reached"], true);
        let gone = AccountFaults {
            usage: Some(UsageFault {
                deactivated: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(answer(&gone, None, 0).0, StatusCode::PAYMENT_REQUIRED);
        assert!(is_usage_path("/backend-api/wham/usage"));
        assert!(is_usage_path("/api/codex/usage"));
        assert!(!is_usage_path("/backend-api/wham/usage/thread_usage/query"));
    }
}
