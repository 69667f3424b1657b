//! The usage endpoint, both ways. Pure.
//!
//! `GET {chatgpt_base_url}/wham/usage` (`/api/codex/usage` without `/backend-api`) answers
//! (codex-rs `codex-backend-openapi-models`, `RateLimitStatusPayload`):
//!
//! ```json
//! {"plan_type": "plus",
//!  "rate_limit": {"allowed": true, "limit_reached": false,
//!    "primary_window": {"used_percent": 42, "limit_window_seconds": 18000,
//!                       "reset_after_seconds": 120, "reset_at": 1800000000},
//!    "secondary_window": {...}},
//!  "credits": {"has_credits": true, "unlimited": false, "balance": "9.99"},
//!  "additional_rate_limits": [{"limit_name": "..", "metered_feature": "codex_x",
//!                              "rate_limit": {...}}]}
//! ```
//!
//! [`from_endpoint`] reads it into the same [`UsageSnapshot`] as the `x-codex-*` headers and the
//! `codex.rate_limits` events (one model, three sources; [`super::usage::newest_wins`]).
//! [`endpoint_body`] writes a snapshot back in that shape for Codex, which decodes the four window
//! fields as 32-bit integers (a float or a missing field fails its whole `/status` call).

use serde_json::{Map, Value, json};

use super::usage::{
    Credits, MAIN_FAMILY, UsageSnapshot, UsageSource, UsageWindow, after_secs, normalize_family,
    secs_to_ms, window,
};

/// Why a usage answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the usage answer is not JSON ({0})")]
    NotJson(String),
    #[error("the usage answer is not a JSON object")]
    NotObject,
}

/// Family id given to `code_review_rate_limit`.
pub const CODE_REVIEW_FAMILY: &str = "code_review";

/// Read a usage endpoint answer observed at `now_ms`.
pub fn from_endpoint(body: &[u8], now_ms: i64) -> Result<UsageSnapshot, EndpointError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| EndpointError::NotJson(e.to_string()))?;
    let Value::Object(o) = &v else {
        return Err(EndpointError::NotObject);
    };
    let limits = o.get("rate_limit");
    let mut windows = limit_windows(MAIN_FAMILY, None, limits, now_ms);
    windows.extend(limit_windows(
        CODE_REVIEW_FAMILY,
        Some("code review".to_string()),
        o.get("code_review_rate_limit"),
        now_ms,
    ));
    if let Some(Value::Array(extra)) = o.get("additional_rate_limits") {
        windows.extend(additional_windows(extra, now_ms));
    }
    Ok(UsageSnapshot {
        windows,
        credits: o.get("credits").and_then(credits_of),
        plan_type: o
            .get("plan_type")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        limit_reached: limits
            .and_then(|l| l.get("limit_reached"))
            .and_then(Value::as_bool),
        seen_at_ms: now_ms,
        source: UsageSource::Endpoint,
        history: Vec::new(),
    })
}

/// The windows of one rate-limit object: `primary`/`secondary` (events) or
/// `primary_window`/`secondary_window` (the endpoint), with `window_minutes` or
/// `limit_window_seconds`, and `reset_at` (unix seconds) or `reset_after_seconds`.
pub(super) fn limit_windows(
    family: &str,
    label: Option<String>,
    limits: Option<&Value>,
    now_ms: i64,
) -> Vec<UsageWindow> {
    let Some(limits) = limits.filter(|l| l.is_object()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for slot in ["primary", "secondary"] {
        let Some(w) = limits
            .get(slot)
            .or_else(|| limits.get(format!("{slot}_window")))
        else {
            continue;
        };
        let Some(used) = w.get("used_percent").and_then(Value::as_f64) else {
            continue;
        };
        let minutes = w.get("window_minutes").and_then(Value::as_i64).or_else(|| {
            w.get("limit_window_seconds")
                .and_then(Value::as_i64)
                .map(|s| s / 60)
        });
        let reset = w
            .get("reset_at")
            .or_else(|| w.get("resets_at"))
            .and_then(Value::as_f64)
            .filter(|s| *s > 0.0)
            .map(|s| secs_to_ms(s as i64))
            .or_else(|| {
                w.get("reset_after_seconds")
                    .and_then(Value::as_f64)
                    .map(|s| after_secs(now_ms, s))
            });
        out.extend(window(family, slot, label.clone(), used, minutes, reset));
    }
    out
}

/// The windows of `additional_rate_limits` (model-specific limits): the family is the
/// `metered_feature` (what the headers call `x-codex-<feature>-...`), the label the `limit_name`.
pub(super) fn additional_windows(extra: &[Value], now_ms: i64) -> Vec<UsageWindow> {
    let mut out = Vec::new();
    for item in extra {
        let Some(fam) = [
            "metered_feature",
            "metered_limit_name",
            "limit_id",
            "limit_name",
        ]
        .iter()
        .find_map(|k| item.get(*k).and_then(Value::as_str))
        .map(normalize_family)
        .filter(|f| !f.is_empty()) else {
            continue;
        };
        let label = item
            .get("limit_name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let inner = item
            .get("rate_limits")
            .or_else(|| item.get("rate_limit"))
            .or(Some(item));
        out.extend(limit_windows(&fam, label, inner, now_ms));
    }
    out
}

/// `{"has_credits", "unlimited", "balance"}` (balance a string or a number).
pub(super) fn credits_of(c: &Value) -> Option<Credits> {
    Some(Credits {
        has_credits: c.get("has_credits")?.as_bool()?,
        unlimited: c.get("unlimited")?.as_bool()?,
        balance: match c.get("balance") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
    })
}

/// Seconds as the 32-bit integer Codex decodes.
fn int32(v: i64) -> i64 {
    v.clamp(0, i64::from(i32::MAX))
}

/// Default window length by slot, when upstream never said (5 hours, a week).
fn default_window_seconds(slot: &str) -> i64 {
    if slot == "secondary" { 604_800 } else { 18_000 }
}

/// One window in the endpoint's shape, all integers.
fn window_json(w: &UsageWindow, now_ms: i64) -> Value {
    let len = w
        .window_minutes
        .map(|m| m.saturating_mul(60))
        .unwrap_or_else(|| default_window_seconds(&w.slot));
    let now_s = now_ms.div_euclid(1000);
    // A reset that has passed means a fresh window that has not started yet.
    let reset_at = match w.resets_at_ms {
        Some(r) if r > now_ms => r.div_euclid(1000),
        _ => now_s.saturating_add(len),
    };
    json!({
        "used_percent": w.used_at(now_ms).round().clamp(0.0, 100.0) as i64,
        "limit_window_seconds": int32(len),
        "reset_after_seconds": int32(reset_at - now_s),
        "reset_at": int32(reset_at),
    })
}

/// `{"allowed", "limit_reached", "primary_window", "secondary_window"}` of one family.
fn limit_json<'a>(windows: impl Iterator<Item = &'a UsageWindow>, now_ms: i64) -> Value {
    let mut primary = Value::Null;
    let mut secondary = Value::Null;
    let mut reached = false;
    for w in windows {
        reached |= w.used_at(now_ms) >= 100.0;
        match w.slot.as_str() {
            "primary" => primary = window_json(w, now_ms),
            "secondary" => secondary = window_json(w, now_ms),
            _ => {}
        }
    }
    json!({
        "allowed": !reached,
        "limit_reached": reached,
        "primary_window": primary,
        "secondary_window": secondary,
    })
}

/// A usage endpoint answer describing `u` at `now_ms` (no snapshot: no windows, allowed).
pub fn endpoint_body(u: Option<&UsageSnapshot>, now_ms: i64) -> Value {
    let empty: [UsageWindow; 0] = [];
    let windows: &[UsageWindow] = u.map_or(&empty[..], |u| &u.windows);
    let mut families: Vec<&str> = Vec::new();
    for w in windows {
        if w.family != MAIN_FAMILY && !families.contains(&w.family.as_str()) {
            families.push(&w.family);
        }
    }
    let additional: Vec<Value> = families
        .iter()
        .filter(|f| **f != CODE_REVIEW_FAMILY)
        .map(|fam| {
            let ws = || windows.iter().filter(move |w| w.family == *fam);
            let label = ws()
                .find_map(|w| w.label.clone())
                .unwrap_or(fam.to_string());
            json!({
                "limit_name": label,
                "metered_feature": fam,
                "rate_limit": limit_json(ws(), now_ms),
            })
        })
        .collect();
    let mut body = Map::new();
    body.insert(
        "plan_type".into(),
        json!(u.and_then(|u| u.plan_type.clone()).unwrap_or("plus".into())),
    );
    body.insert(
        "rate_limit".into(),
        limit_json(windows.iter().filter(|w| w.family == MAIN_FAMILY), now_ms),
    );
    if families.contains(&CODE_REVIEW_FAMILY) {
        body.insert(
            "code_review_rate_limit".into(),
            limit_json(
                windows.iter().filter(|w| w.family == CODE_REVIEW_FAMILY),
                now_ms,
            ),
        );
    }
    body.insert(
        "credits".into(),
        u.and_then(|u| u.credits.as_ref())
            .map_or(Value::Null, |c| {
                json!({"has_credits": c.has_credits, "unlimited": c.unlimited, "balance": c.balance})
            }),
    );
    body.insert("additional_rate_limits".into(), Value::Array(additional));
    Value::Object(body)
}

/// The answer when no account can serve: `u` (the account that can serve again first) with
/// its main limit reached until `until_ms` (its cooldown or its spent window's reset).
pub fn spent_body(u: Option<&UsageSnapshot>, until_ms: Option<i64>, now_ms: i64) -> Value {
    let mut body = endpoint_body(u, now_ms);
    let Some(limit) = body.get_mut("rate_limit").and_then(Value::as_object_mut) else {
        return body;
    };
    limit.insert("allowed".into(), json!(false));
    limit.insert("limit_reached".into(), json!(true));
    let already_full = ["primary_window", "secondary_window"].iter().any(|k| {
        limit
            .get(*k)
            .and_then(|w| w.get("used_percent"))
            .and_then(Value::as_i64)
            == Some(100)
    });
    if !already_full {
        let w = UsageWindow {
            family: MAIN_FAMILY.into(),
            slot: "primary".into(),
            label: None,
            used_percent: 100.0,
            window_minutes: u
                .and_then(|u| u.windows.iter().find(|w| w.family == MAIN_FAMILY))
                .and_then(|w| w.window_minutes),
            resets_at_ms: until_ms.filter(|u| *u > now_ms && *u < i64::MAX),
        };
        limit.insert("primary_window".into(), window_json(&w, now_ms));
    }
    body
}

/// One account as the pooled usage answer sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolMember<'a> {
    pub name: &'a str,
    /// Logged in and not needing a new login.
    pub logged_in: bool,
    pub cooldown_until_ms: Option<i64>,
    pub usage: Option<&'a UsageSnapshot>,
}

impl PoolMember<'_> {
    /// When it can serve again, if not now: its cooldown or its full window's reset.
    fn blocked_until(&self, now_ms: i64) -> Option<i64> {
        let cooling = self.cooldown_until_ms.filter(|&c| c > now_ms);
        let spent = self.usage.and_then(|u| u.spent_until_ms(now_ms));
        match (cooling, spent) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The account whose usage [`pool_body`] shows: `next` while it can serve, else the first
/// that can; None when none can.
pub fn serving<'m, 'a>(
    members: &'m [PoolMember<'a>],
    next: Option<&str>,
    now_ms: i64,
) -> Option<&'m PoolMember<'a>> {
    let open = |m: &&PoolMember<'_>| m.logged_in && m.blocked_until(now_ms).is_none();
    members
        .iter()
        .filter(open)
        .find(|m| Some(m.name) == next)
        .or_else(|| members.iter().find(open))
}

/// The usage answer for the pool (what Codex's `/status` and composer see through the gateway):
/// the usage of `next`, the account the next turn would be routed to, while it can serve; else
/// of any account that can; and when none can, limit reached until the earliest one is back.
pub fn pool_body(members: &[PoolMember<'_>], next: Option<&str>, now_ms: i64) -> Value {
    if let Some(m) = serving(members, next, now_ms) {
        return endpoint_body(m.usage, now_ms);
    }
    let first_back = members
        .iter()
        .filter(|m| m.logged_in)
        .filter_map(|m| m.blocked_until(now_ms).map(|t| (m, t)))
        .min_by_key(|(_, t)| *t);
    match first_back {
        Some((m, t)) => spent_body(m.usage, Some(t), now_ms),
        None => spent_body(None, None, now_ms),
    }
}

#[cfg(test)]
#[path = "usage_endpoint_tests.rs"]
mod tests;
