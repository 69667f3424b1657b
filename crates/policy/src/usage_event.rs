//! The `codex.rate_limits` event of an SSE stream or a WebSocket frame: the usage the backend
//! reports along with a turn, in the same window shapes as the usage endpoint.

use serde_json::Value;

use super::usage::{MAIN_FAMILY, RATE_LIMIT_EVENT, UsageSnapshot, UsageSource, normalize_family};
use super::usage_endpoint::{additional_windows, credits_of, limit_windows};

/// Parse one SSE `data:` payload. None unless it is a `codex.rate_limits` event with content.
pub fn from_event(data: &str, now_ms: i64) -> Option<UsageSnapshot> {
    // Cheap pre-check: most events are text deltas; only parse the ones that can match.
    if !data.contains(RATE_LIMIT_EVENT) {
        return None;
    }
    let v: Value = serde_json::from_str(data).ok()?;
    if v.get("type")?.as_str()? != RATE_LIMIT_EVENT {
        return None;
    }
    let family = ["metered_limit_name", "limit_name"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(normalize_family)
        .unwrap_or_else(|| MAIN_FAMILY.to_string());
    let limits = v.get("rate_limits");
    let mut windows = limit_windows(&family, None, limits, now_ms);
    if let Some(Value::Array(extra)) = v.get("additional_rate_limits") {
        windows.extend(additional_windows(extra, now_ms));
    }
    let credits = v.get("credits").and_then(credits_of);
    let limit_reached = limits
        .and_then(|l| l.get("limit_reached"))
        .and_then(Value::as_bool);
    if windows.is_empty() && credits.is_none() && limit_reached.is_none() {
        return None;
    }
    Some(UsageSnapshot {
        windows,
        credits,
        plan_type: v
            .get("plan_type")
            .and_then(Value::as_str)
            .map(str::to_string),
        limit_reached,
        seen_at_ms: now_ms,
        source: UsageSource::Event,
        history: Vec::new(),
    })
}
