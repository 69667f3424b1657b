//! How `--strategy` picks among the accounts that may take a new session. Pure.
//!
//! Only [`super::route::choose`] calls [`pick`]: it has already set aside sessions staying on
//! their account, and accounts that are tried, cooling, need a login or are above
//! `--switch-at`. What is left is ordered by rotation (default account first, then registry
//! order), which also breaks every tie.

use serde::{Deserialize, Serialize};

use super::route::{Eligible, RouteInput};

/// The default for `--switch-at`: an account at 98 % of its main window stops taking new
/// sessions (the sessions already on it stay), leaving a little room for their next turns.
pub const DEFAULT_SWITCH_AT: f64 = 98.0;

/// Routing strategies for new sessions. Spelled in kebab-case everywhere: on the command line,
/// in `gateway.json` and on `GET /status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The first usable account in rotation order (default account first).
    #[default]
    FillFirst,
    /// The next usable account after the one assigned last.
    RoundRobin,
    /// The account whose main window is the least used.
    LeastUsed,
    /// The account whose main window resets soonest.
    SoonestReset,
}

impl Strategy {
    /// Every strategy, in the order help texts list them.
    pub const ALL: [Strategy; 4] = [
        Strategy::FillFirst,
        Strategy::RoundRobin,
        Strategy::LeastUsed,
        Strategy::SoonestReset,
    ];

    /// The one spelling: `fill-first`, `round-robin`, `least-used`, `soonest-reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::FillFirst => "fill-first",
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastUsed => "least-used",
            Strategy::SoonestReset => "soonest-reset",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Strategy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a strategy; use fill-first, round-robin, least-used or soonest-reset")]
pub struct UnknownStrategy(pub String);

impl std::str::FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownStrategy(s.to_string()))
    }
}

/// `fill-first`, `round-robin`, ... as on the command line.
pub fn strategy_name(s: Strategy) -> &'static str {
    s.as_str()
}

/// The strategy's pick among `eligible` (rotation order, non-empty or None) and why, in words.
pub(super) fn pick<'a>(
    input: &RouteInput<'_>,
    eligible: &[Eligible<'a>],
) -> Option<(Eligible<'a>, String)> {
    let first = *eligible.first()?;
    let now = input.now_ms;
    Some(match input.strategy {
        Strategy::FillFirst => (first, "first usable in rotation order".to_string()),
        Strategy::RoundRobin => {
            let last_idx = input
                .last_assigned
                .and_then(|l| input.candidates.iter().position(|c| c.name == l));
            let pick = last_idx
                .and_then(|li| eligible.iter().find(|e| e.index > li).copied())
                .unwrap_or(first);
            let reason = match input.last_assigned {
                Some(l) => format!("next after {l}"),
                None => "first in rotation".to_string(),
            };
            (pick, reason)
        }
        Strategy::LeastUsed => {
            // Strictly less: ties stay with the earlier account in rotation order.
            let pick = eligible
                .iter()
                .copied()
                .fold(first, |b, x| if x.used < b.used { x } else { b });
            let reason = match pick.candidate.usage.and_then(|u| u.fullness(now)) {
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
            let reset = |e: &Eligible<'_>| {
                e.candidate
                    .usage
                    .and_then(|u| u.next_reset_ms(now))
                    .unwrap_or(i64::MAX)
            };
            let pick = eligible
                .iter()
                .copied()
                .fold(first, |b, x| if reset(&x) < reset(&b) { x } else { b });
            let reason = match reset(&pick) {
                i64::MAX => "no reset time known; first in rotation".to_string(),
                r => format!(
                    "its window resets soonest (in {}s), so its remaining quota would be lost first",
                    ((r - now) + 999) / 1000
                ),
            };
            (pick, reason)
        }
    })
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
mod tests {
    use super::*;

    #[test]
    fn switch_at_must_be_a_percent() {
        assert_eq!(check_switch_at(98.0), Ok(98.0));
        assert_eq!(check_switch_at(100.0), Ok(100.0));
        assert!(check_switch_at(0.0).is_err());
        assert!(check_switch_at(101.0).is_err());
        assert!(check_switch_at(f64::NAN).is_err());
    }
}
