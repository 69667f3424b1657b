//! Usage history and forecasts. Pure.
//!
//! Every usage snapshot keeps a small rolling series per window ([`UsageSeries`], kept by
//! [`super::usage_history`]). From the series: the pace of the last hour, when each window runs
//! out at that pace ([`window_forecast`]), and when the pool as a whole does ([`pool_forecast`]).

use serde::{Deserialize, Serialize};

use super::usage::{UsageSnapshot, UsageWindow};
use super::usage_history::{MIN_SPACING_MS, Sample, UsageSeries};

/// How far back the pace is measured ("the last hour's pace").
pub const PACE_LOOKBACK_MS: i64 = 3_600_000;

/// Percent points per hour over the samples of the last `lookback_ms` (needs two points at least
/// a minute apart). `None`: not enough history to say.
pub fn pace_per_hour(samples: &[Sample], now_ms: i64, lookback_ms: i64) -> Option<f64> {
    let recent: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_ms >= now_ms - lookback_ms && s.at_ms <= now_ms)
        .collect();
    let (first, last) = (recent.first()?, recent.last()?);
    let span = last.at_ms - first.at_ms;
    if span < MIN_SPACING_MS {
        return None;
    }
    let rate = (last.used_percent - first.used_percent) / (span as f64 / 3_600_000.0);
    Some(rate.max(0.0))
}

/// When one window runs out at the current pace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WindowForecast {
    pub family: String,
    pub slot: String,
    pub used_percent: f64,
    /// Percent points per hour over the last hour; None without enough history.
    pub pace_per_hour: Option<f64>,
    /// When it reaches 100 % at that pace, if before its reset.
    pub runs_out_at_ms: Option<i64>,
    pub resets_at_ms: Option<i64>,
}

/// The forecast of `window` from `history` at `now_ms`.
pub fn window_forecast(w: &UsageWindow, history: &[UsageSeries], now_ms: i64) -> WindowForecast {
    let used = w.used_at(now_ms);
    let pace = history
        .iter()
        .find(|s| s.family == w.family && s.slot == w.slot)
        .and_then(|s| pace_per_hour(&s.samples, now_ms, PACE_LOOKBACK_MS));
    let runs_out = pace
        .and_then(|p| runs_out_at(used, p, now_ms))
        .filter(|t| w.resets_at_ms.is_none_or(|r| *t < r));
    WindowForecast {
        family: w.family.clone(),
        slot: w.slot.clone(),
        used_percent: used,
        pace_per_hour: pace,
        runs_out_at_ms: runs_out,
        resets_at_ms: w.resets_at_ms,
    }
}

/// `now + (100 - used) / pace` hours; None when nothing is being used.
fn runs_out_at(used: f64, pace_per_hour: f64, now_ms: i64) -> Option<i64> {
    if pace_per_hour <= 0.0 {
        return None;
    }
    let hours = (100.0 - used).max(0.0) / pace_per_hour;
    Some(now_ms.saturating_add((hours * 3_600_000.0).min(1e15) as i64))
}

/// Forecasts of every window of one account.
pub fn account_forecast(u: &UsageSnapshot, now_ms: i64) -> Vec<WindowForecast> {
    u.windows
        .iter()
        .map(|w| window_forecast(w, &u.history, now_ms))
        .collect()
}

/// The pool as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PoolForecast {
    /// Accounts with a known short window.
    pub accounts: usize,
    /// Room left in the short (usually 5-hour) windows, in percent points summed over accounts.
    pub room_percent: f64,
    /// Percent points per hour used over the last hour, summed over accounts.
    pub pace_per_hour: f64,
    /// Time left at that pace (ms); None when nothing was used in the last hour.
    pub left_ms: Option<i64>,
    /// Mean used percent of the weekly windows, when any is known.
    pub weekly_used_percent: Option<f64>,
}

/// The short window of an account: the main family's shortest one (or any family's without a
/// main family), the one the "time left" is measured in.
fn short_window(u: &UsageSnapshot) -> Option<&UsageWindow> {
    u.routing_windows()
        .min_by_key(|w| w.window_minutes.unwrap_or(i64::MAX))
}

fn weekly_window(u: &UsageSnapshot) -> Option<&UsageWindow> {
    let short = short_window(u)?.window_minutes;
    u.routing_windows()
        .filter(|w| w.window_minutes.is_some() && w.window_minutes > short)
        .max_by_key(|w| w.window_minutes)
}

/// When the pool runs out: the room left in every usable account's short window over the
/// pool's pace of the last hour (traffic moves between accounts, so the paces add up). Resets
/// are not counted as new room, so the time is a lower bound. `accounts` are the usable ones.
pub fn pool_forecast(accounts: &[&UsageSnapshot], now_ms: i64) -> Option<PoolForecast> {
    let mut n = 0;
    let (mut room, mut pace) = (0.0, 0.0);
    let mut weekly = Vec::new();
    for u in accounts {
        if let Some(w) = short_window(u) {
            n += 1;
            let f = window_forecast(w, &u.history, now_ms);
            room += (100.0 - f.used_percent).max(0.0);
            pace += f.pace_per_hour.unwrap_or(0.0);
        }
        if let Some(w) = weekly_window(u) {
            weekly.push(w.used_at(now_ms));
        }
    }
    if n == 0 {
        return None;
    }
    let left_ms = (pace > 0.0).then(|| ((room / pace) * 3_600_000.0).min(1e15) as i64);
    let weekly_used_percent =
        (!weekly.is_empty()).then(|| weekly.iter().sum::<f64>() / weekly.len() as f64);
    Some(PoolForecast {
        accounts: n,
        room_percent: room,
        pace_per_hour: pace,
        left_ms,
        weekly_used_percent,
    })
}

#[cfg(test)]
#[path = "forecast_tests.rs"]
mod tests;
