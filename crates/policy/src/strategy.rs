//! The `--strategy` and `--switch-at` settings: their names, defaults and validation. Pure.
//! How a strategy picks is part of the one routing decision, [`super::route::choose`].

use serde::{Deserialize, Serialize};

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
