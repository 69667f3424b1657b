//! Live usage: what upstream says about an account's rate-limit windows on every answer.
//!
//! Names and shapes follow the Codex CLI source (codex-rs `codex-api/src/rate_limits.rs`):
//! - headers per limit family `x-<family>-{primary,secondary}-{used-percent,window-minutes,
//!   reset-at}` where `<family>` is `codex` for the account's main limit and e.g.
//!   `codex-bengalfox` for a model-specific one (the family id is the prefix lowercased with
//!   `-` turned into `_`: `codex_bengalfox`); `x-<family>-limit-name` names it;
//!   `reset-at` is unix seconds. Older backends sent `reset-after-seconds` instead; both work.
//! - credits: `x-codex-credits-{has-credits,unlimited,balance}` (`true`/`false`/`1`/`0`).
//! - an SSE (or WebSocket) event `{"type":"codex.rate_limits","plan_type":..,
//!   "rate_limits":{"allowed":..,"limit_reached":..,"primary":{"used_percent":..,
//!   "window_minutes":..,"reset_at":..,"reset_after_seconds":..},"secondary":..},
//!   "credits":{"has_credits":..,"unlimited":..,"balance":..},"metered_limit_name":..}`.
//!
//! Windows are kept as a generic list (family + slot name), because the number and length of
//! windows has changed before (the 5-hour window became optional; weekly-only plans exist).

use serde::{Deserialize, Serialize};

/// The family that carries the account's main limit.
pub const MAIN_FAMILY: &str = "codex";

/// The SSE/WebSocket event type that carries rate limits.
pub const RATE_LIMIT_EVENT: &str = "codex.rate_limits";

/// One rate-limit window as upstream reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageWindow {
    /// Limit family id: `codex` (the account limit) or a model-specific one.
    pub family: String,
    /// Slot within the family: `primary` or `secondary`.
    pub slot: String,
    /// Human name upstream gave the family (`x-<family>-limit-name`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Percent of the window used, 0..=100.
    pub used_percent: f64,
    /// Window length in minutes (300 = 5 hours, 10080 = a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_minutes: Option<i64>,
    /// When the window resets, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at_ms: Option<i64>,
}

/// Credits attached to the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credits {
    pub has_credits: bool,
    pub unlimited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
}

/// Where a snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    Headers,
    Event,
    /// The usage endpoint (`GET /backend-api/wham/usage`), polled or asked by `status --refresh`.
    Endpoint,
}

/// Everything known about an account's usage at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageSnapshot {
    #[serde(default)]
    pub windows: Vec<UsageWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<Credits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_type: Option<String>,
    /// `rate_limits.limit_reached` of the last event, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_reached: Option<bool>,
    /// When this was observed, ms since the epoch.
    pub seen_at_ms: i64,
    pub source: UsageSource,
    /// A small rolling series per window, for forecasts ([`super::forecast`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<super::usage_history::UsageSeries>,
}

/// The window that decides whether an account may take new sessions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fullness<'a> {
    pub used_percent: f64,
    pub window: &'a UsageWindow,
}

impl UsageWindow {
    /// Used percent as of `now_ms`: a window whose reset time has passed counts as empty.
    pub fn used_at(&self, now_ms: i64) -> f64 {
        match self.resets_at_ms {
            Some(r) if r <= now_ms => 0.0,
            _ => self.used_percent,
        }
    }

    /// Seconds until the reset, never negative; None when upstream gave no reset time.
    pub fn reset_in_secs(&self, now_ms: i64) -> Option<i64> {
        self.resets_at_ms
            .map(|r| r.saturating_sub(now_ms).max(0).saturating_add(999) / 1000)
    }

    /// A short name for display: `5h`, `weekly`, `spark 5h`, else the slot.
    pub fn display_name(&self) -> String {
        let span = match self.window_minutes {
            Some(m) if m > 0 => window_span(m),
            _ => self.slot.clone(),
        };
        if self.family == MAIN_FAMILY {
            span
        } else {
            let fam = self.label.clone().unwrap_or_else(|| {
                self.family
                    .strip_prefix("codex_")
                    .unwrap_or(&self.family)
                    .to_string()
            });
            format!("{fam} {span}")
        }
    }
}

/// `300` -> `5h`, `10080` -> `weekly`, `1440` -> `1d`, `45` -> `45m`: the week by its name,
/// any other length as [`crate::duration::span`] words it.
pub fn window_span(minutes: i64) -> String {
    match minutes {
        10080 => "weekly".to_string(),
        m => crate::duration::span(m.saturating_mul(60_000)),
    }
}

impl UsageSnapshot {
    /// The windows that gate routing: those of the main family, or all of them when upstream
    /// sent no main family.
    pub fn routing_windows(&self) -> impl Iterator<Item = &UsageWindow> {
        let has_main = self.windows.iter().any(|w| w.family == MAIN_FAMILY);
        self.windows
            .iter()
            .filter(move |w| !has_main || w.family == MAIN_FAMILY)
    }

    /// The fullest routing window at `now_ms` (ties: the one that resets last).
    pub fn fullness(&self, now_ms: i64) -> Option<Fullness<'_>> {
        let mut best: Option<Fullness<'_>> = None;
        for w in self.routing_windows() {
            let used = w.used_at(now_ms);
            let better = match &best {
                None => true,
                Some(b) => {
                    used > b.used_percent
                        || (used == b.used_percent
                            && w.resets_at_ms.unwrap_or(i64::MAX)
                                > b.window.resets_at_ms.unwrap_or(i64::MAX))
                }
            };
            if better {
                best = Some(Fullness {
                    used_percent: used,
                    window: w,
                });
            }
        }
        best
    }

    /// The earliest future reset among the routing windows.
    pub fn next_reset_ms(&self, now_ms: i64) -> Option<i64> {
        self.routing_windows()
            .filter_map(|w| w.resets_at_ms)
            .filter(|&r| r > now_ms)
            .min()
    }

    /// When the account can be used again if a routing window is at 100 % now: the latest
    /// reset among the full windows (all of them must reset). None when nothing is full.
    pub fn spent_until_ms(&self, now_ms: i64) -> Option<i64> {
        self.routing_windows()
            .filter(|w| w.used_at(now_ms) >= 100.0)
            .map(|w| w.resets_at_ms.unwrap_or(i64::MAX))
            .max()
    }

    /// Fold a newer observation into this one: families present in `newer` replace ours,
    /// other families are kept (a model-specific limit is only reported on its own model's
    /// answers). Credits, plan and flags are taken from `newer` when it has them.
    pub fn merge(&mut self, newer: UsageSnapshot) {
        let fams: Vec<&str> = newer.windows.iter().map(|w| w.family.as_str()).collect();
        let mut kept: Vec<UsageWindow> = self
            .windows
            .drain(..)
            .filter(|w| !fams.contains(&w.family.as_str()))
            .collect();
        kept.extend(newer.windows);
        kept.sort_by(|a, b| {
            (a.family != MAIN_FAMILY, &a.family, &a.slot).cmp(&(
                b.family != MAIN_FAMILY,
                &b.family,
                &b.slot,
            ))
        });
        self.windows = kept;
        if newer.credits.is_some() {
            self.credits = newer.credits;
        }
        if newer.plan_type.is_some() {
            self.plan_type = newer.plan_type;
        }
        if newer.limit_reached.is_some() {
            self.limit_reached = newer.limit_reached;
        }
        self.seen_at_ms = self.seen_at_ms.max(newer.seen_at_ms);
        self.source = newer.source;
        self.record_history();
    }

    /// Add what the windows say now to the history.
    fn record_history(&mut self) {
        let points = self
            .windows
            .iter()
            .map(|w| (w.family.as_str(), w.slot.as_str(), w.used_percent));
        super::usage_history::record(&mut self.history, points, self.seen_at_ms);
    }

    /// Start the history of a first observation.
    fn with_history(mut self) -> Self {
        if self.history.is_empty() {
            self.record_history();
        }
        self
    }
}

/// Fold `newer` into what is known (one model, three sources: headers, stream events and the
/// usage endpoint): the newest observation wins, an older one arriving late is dropped.
/// Returns whether anything changed.
pub fn newest_wins(known: &mut Option<UsageSnapshot>, newer: UsageSnapshot) -> bool {
    match known {
        Some(old) if old.seen_at_ms <= newer.seen_at_ms => {
            old.merge(newer);
            true
        }
        Some(_) => false,
        None => {
            *known = Some(newer.with_history());
            true
        }
    }
}

/// Parse rate-limit headers (names compared case-insensitively). Returns None when the answer
/// carried no rate-limit information at all (most non-model endpoints).
pub fn from_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    now_ms: i64,
) -> Option<UsageSnapshot> {
    // Only `x-` headers matter; skip the rest before allocating anything.
    let pairs: Vec<(String, &str)> = headers
        .into_iter()
        .filter(|(k, _)| k.len() > 2 && k.as_bytes()[..2].eq_ignore_ascii_case(b"x-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    };

    // Every family that reports a used percent for any slot, in first-seen order.
    let mut prefixes: Vec<String> = Vec::new();
    for (k, _) in &pairs {
        for suffix in ["-primary-used-percent", "-secondary-used-percent"] {
            if let Some(p) = k.strip_suffix(suffix)
                && let Some(p) = p.strip_prefix("x-")
                && !p.is_empty()
                && !prefixes.iter().any(|q| q == p)
            {
                prefixes.push(p.to_string());
            }
        }
    }

    let mut windows = Vec::new();
    for prefix in &prefixes {
        let family = normalize_family(prefix);
        let label = get(&format!("x-{prefix}-limit-name")).map(str::to_string);
        for slot in ["primary", "secondary"] {
            let base = format!("x-{prefix}-{slot}");
            let Some(used) = get(&format!("{base}-used-percent")).and_then(parse_f64) else {
                continue;
            };
            let minutes = get(&format!("{base}-window-minutes")).and_then(parse_i64);
            let reset = get(&format!("{base}-reset-at"))
                .and_then(parse_i64)
                .map(secs_to_ms)
                .or_else(|| {
                    get(&format!("{base}-reset-after-seconds"))
                        .and_then(parse_f64)
                        .map(|s| after_secs(now_ms, s))
                });
            if let Some(w) = window(&family, slot, label.clone(), used, minutes, reset) {
                windows.push(w);
            }
        }
    }

    let credits = match (
        get("x-codex-credits-has-credits").and_then(parse_bool),
        get("x-codex-credits-unlimited").and_then(parse_bool),
    ) {
        (Some(has_credits), Some(unlimited)) => Some(Credits {
            has_credits,
            unlimited,
            balance: get("x-codex-credits-balance").map(str::to_string),
        }),
        _ => None,
    };
    let plan_type = get("x-codex-plan-type").map(str::to_string);

    if windows.is_empty() && credits.is_none() {
        return None;
    }
    Some(UsageSnapshot {
        windows,
        credits,
        plan_type,
        limit_reached: None,
        seen_at_ms: now_ms,
        source: UsageSource::Headers,
        history: Vec::new(),
    })
}

/// Build a window, dropping the empty placeholder upstream sends (0 %, no length, no reset).
pub(super) fn window(
    family: &str,
    slot: &str,
    label: Option<String>,
    used: f64,
    minutes: Option<i64>,
    resets_at_ms: Option<i64>,
) -> Option<UsageWindow> {
    if !used.is_finite() {
        return None;
    }
    let minutes = minutes.filter(|m| *m > 0);
    if used == 0.0 && minutes.is_none() && resets_at_ms.is_none() {
        return None;
    }
    Some(UsageWindow {
        family: family.to_string(),
        slot: slot.to_string(),
        label: label.filter(|l| !l.trim().is_empty()),
        used_percent: used.clamp(0.0, 100.0),
        window_minutes: minutes,
        resets_at_ms,
    })
}

pub(super) fn normalize_family(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

fn parse_f64(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_i64(s: &str) -> Option<i64> {
    s.parse::<i64>()
        .ok()
        .or_else(|| parse_f64(s).map(|f| f as i64))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" => Some(true),
        "0" => Some(false),
        s if s.eq_ignore_ascii_case("true") => Some(true),
        s if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Unix seconds to ms, saturating; values that already look like ms are kept.
/// `now_ms` plus a (possibly absurd) number of seconds from upstream, saturating instead of
/// overflowing; negative and NaN count as zero.
pub(super) fn after_secs(now_ms: i64, secs: f64) -> i64 {
    // `as` saturates a float at i64's bounds (and maps NaN to 0).
    now_ms.saturating_add((secs.max(0.0) * 1000.0) as i64)
}

pub(super) fn secs_to_ms(s: i64) -> i64 {
    if s > 100_000_000_000 {
        s
    } else {
        s.saturating_mul(1000)
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
