//! Which account a NEW session gets, and why.
//!
//! Sessions that already have an account (affinity) are not decided here: they stay where they
//! are until that account is actually spent (cooling), so upstream prompt caches survive. This
//! module only orders the accounts for a session without one, skipping accounts that are
//! cooling, need a login, were already tried for this request, or whose main usage window is at
//! least `switch_at` percent full. When every usable account is above the threshold, the one
//! with the most headroom is used anyway: a nearly full account beats failing the request.

use serde::Serialize;

pub use crate::cli::Strategy;

use super::usage::UsageSnapshot;

/// The default for `--switch-at`.
pub const DEFAULT_SWITCH_AT: f64 = 98.0;

/// One account as the strategy sees it, given in rotation order (default account first, then
/// registry order).
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub cooldown_until_ms: Option<i64>,
    pub needs_login: bool,
    pub usage: Option<&'a UsageSnapshot>,
}

/// Why an account was passed over.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "reason"
)]
pub enum SkipReason {
    /// Already tried for this request.
    Tried,
    /// Cooling down after a usage limit or failure, until this time (ms).
    Cooling { until_ms: i64 },
    /// Its refresh token is dead; it needs `codex login`.
    NeedsLogin,
    /// Its main window is at least `switch_at` full.
    AboveSwitchAt { used_percent: f64, window: String },
}

/// An account that was passed over and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub account: String,
    #[serde(flatten)]
    pub why: SkipReason,
}

/// The decision with its explanation, suitable for a debug log line and the live view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The account to use; None when no account is usable at all.
    pub account: Option<String>,
    pub strategy: Strategy,
    /// Why this account, in words.
    pub reason: String,
    pub skipped: Vec<Skipped>,
}

impl Decision {
    /// One line for logs: `fill-first -> work: first usable in rotation order (skipped: a cooling)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} -> {}: {}",
            strategy_name(self.strategy),
            self.account.as_deref().unwrap_or("(none)"),
            self.reason
        );
        if !self.skipped.is_empty() {
            let parts: Vec<String> = self
                .skipped
                .iter()
                .map(|k| format!("{} {}", k.account, skip_words(&k.why)))
                .collect();
            s.push_str(&format!(" (skipped: {})", parts.join(", ")));
        }
        s
    }
}

/// `fill-first`, `round-robin`, ... as on the command line.
pub fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::FillFirst => "fill-first",
        Strategy::RoundRobin => "round-robin",
        Strategy::LeastUsed => "least-used",
        Strategy::SoonestReset => "soonest-reset",
    }
}

fn skip_words(r: &SkipReason) -> String {
    match r {
        SkipReason::Tried => "already tried".into(),
        SkipReason::Cooling { until_ms } => format!("cooling until {until_ms}"),
        SkipReason::NeedsLogin => "needs login".into(),
        SkipReason::AboveSwitchAt {
            used_percent,
            window,
        } => format!("{window} at {used_percent:.0}%"),
    }
}

/// The inputs besides the candidates.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    pub strategy: Strategy,
    /// Percent (0..=100) at which an account stops receiving new sessions.
    pub switch_at: f64,
    /// The account the previous new session got (round-robin continues after it).
    pub last_assigned: Option<&'a str>,
    /// Accounts already tried for this request.
    pub tried: &'a [&'a str],
    pub now_ms: i64,
}

/// Pick the account for a new session.
pub fn choose(candidates: &[Candidate<'_>], p: &Params<'_>) -> Decision {
    let mut skipped = Vec::new();
    // (rotation index, candidate, used %)
    let mut eligible: Vec<(usize, &Candidate<'_>, f64)> = Vec::new();
    let mut full: Vec<(usize, &Candidate<'_>, f64)> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let skip = |why| Skipped {
            account: c.name.to_string(),
            why,
        };
        if p.tried.contains(&c.name) {
            skipped.push(skip(SkipReason::Tried));
            continue;
        }
        if let Some(until) = c.cooldown_until_ms.filter(|&u| u > p.now_ms) {
            skipped.push(skip(SkipReason::Cooling { until_ms: until }));
            continue;
        }
        if c.needs_login {
            skipped.push(skip(SkipReason::NeedsLogin));
            continue;
        }
        let fullness = c.usage.and_then(|u| u.fullness(p.now_ms));
        let used = fullness.map_or(0.0, |f| f.used_percent);
        match fullness {
            Some(f) if f.used_percent >= p.switch_at => {
                skipped.push(skip(SkipReason::AboveSwitchAt {
                    used_percent: f.used_percent,
                    window: f.window.display_name(),
                }));
                full.push((i, c, used));
            }
            _ => eligible.push((i, c, used)),
        }
    }

    if eligible.is_empty() {
        // Everyone usable is above the threshold: take the one with the most headroom
        // (ties: rotation order) rather than fail a request upstream would still serve.
        let best = full
            .iter()
            .fold(None::<&(usize, &Candidate<'_>, f64)>, |b, x| match b {
                Some(b) if b.2 <= x.2 => Some(b),
                _ => Some(x),
            });
        return match best {
            Some((_, c, used)) => {
                skipped.retain(|s| s.account != c.name);
                Decision {
                    account: Some(c.name.to_string()),
                    strategy: p.strategy,
                    reason: format!(
                        "every usable account is at or above {:.0}%; {} has the most headroom ({used:.0}%)",
                        p.switch_at, c.name
                    ),
                    skipped,
                }
            }
            None => Decision {
                account: None,
                strategy: p.strategy,
                reason: "no account is usable".into(),
                skipped,
            },
        };
    }

    let (pick, reason) = match p.strategy {
        Strategy::FillFirst => (eligible[0], "first usable in rotation order".to_string()),
        Strategy::RoundRobin => {
            let last_idx = p
                .last_assigned
                .and_then(|l| candidates.iter().position(|c| c.name == l));
            let pick = match last_idx {
                Some(li) => eligible
                    .iter()
                    .find(|e| e.0 > li)
                    .copied()
                    .unwrap_or(eligible[0]),
                None => eligible[0],
            };
            let reason = match p.last_assigned {
                Some(l) => format!("next after {l}"),
                None => "first in rotation".to_string(),
            };
            (pick, reason)
        }
        Strategy::LeastUsed => {
            let pick = eligible
                .iter()
                .copied()
                .fold(eligible[0], |b, x| if x.2 < b.2 { x } else { b });
            let reason = match pick.1.usage.and_then(|u| u.fullness(p.now_ms)) {
                Some(f) => format!(
                    "least used ({} at {:.0}%)",
                    f.window.display_name(),
                    f.used_percent
                ),
                None => "least used (no usage reported yet)".to_string(),
            };
            (pick, reason)
        }
        Strategy::SoonestReset => {
            let reset = |e: &(usize, &Candidate<'_>, f64)| {
                e.1.usage
                    .and_then(|u| u.next_reset_ms(p.now_ms))
                    .unwrap_or(i64::MAX)
            };
            let pick = eligible.iter().copied().fold(eligible[0], |b, x| {
                if reset(&x) < reset(&b) { x } else { b }
            });
            let reason = match reset(&pick) {
                i64::MAX => "no reset time known; first in rotation".to_string(),
                r => format!(
                    "its window resets soonest (in {}s), so its remaining quota would be lost first",
                    ((r - p.now_ms) + 999) / 1000
                ),
            };
            (pick, reason)
        }
    };
    Decision {
        account: Some(pick.1.name.to_string()),
        strategy: p.strategy,
        reason,
        skipped,
    }
}

/// Validate a `--switch-at` value: a percent in 1..=100.
pub fn check_switch_at(v: f64) -> Result<f64, String> {
    if v.is_finite() && (1.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "--switch-at {v} is not a percent between 1 and 100 (default {DEFAULT_SWITCH_AT})"
        ))
    }
}

#[cfg(test)]
#[path = "strategy_tests.rs"]
mod tests;
