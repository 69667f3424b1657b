//! Where an account stands, in one vocabulary: the page, `GET /status`, `cao gateway status`
//! and `cao status --watch` all speak these words (one spelling each, kebab-case).

use serde::{Deserialize, Serialize};

/// An account's state as the gateway sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Takes new sessions.
    #[default]
    Ready,
    /// Its main window is at least `switch_at` full: keeps its sessions, takes no new ones.
    Full,
    /// Cooling down after a usage limit or failures, until a known time.
    Cooling,
    /// Its main window is at 100 %.
    Spent,
    /// No usable login (its refresh token was rejected, or it has no tokens): `cao add NAME`.
    NeedsLogin,
    /// Its auth.json cannot be read (permissions): the gateway runs without it.
    Unreadable,
}

impl State {
    /// `ready`, `full`, `cooling`, `spent`, `needs-login`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Full => "full",
            State::Cooling => "cooling",
            State::Spent => "spent",
            State::NeedsLogin => "needs-login",
            State::Unreadable => "unreadable",
        }
    }

    /// Whether the gateway may send requests to it (the router still prefers accounts below
    /// `--switch-at` for new sessions): ready, full or spent, not cooling or without a login.
    pub fn takes_requests(self) -> bool {
        matches!(self, State::Ready | State::Full | State::Spent)
    }

    /// Why an account is in this state, in words.
    pub fn reason(self) -> &'static str {
        match self {
            State::Ready => "takes new sessions",
            State::Full => {
                "its main window is at or above --switch-at: keeps its sessions, takes no new ones"
            }
            State::Cooling => "cooling down after a usage limit or failures",
            State::Spent => "its main window is used up until it resets",
            State::NeedsLogin => "no usable login: run `cao add <name>`",
            State::Unreadable => "its auth.json cannot be read",
        }
    }
}

/// What decides an account's [`State`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Facts {
    /// Its auth.json exists but cannot be read (permissions).
    pub unreadable: bool,
    /// No tokens, or a refresh failed for good.
    pub needs_login: bool,
    /// End of its cooldown (ms), if any.
    pub cooldown_until_ms: Option<i64>,
    /// Its main window's used percent now ([`super::usage::UsageSnapshot::fullness`]).
    pub used_percent: Option<f64>,
}

/// The one rule for an account's state at `now_ms`, checked in this order: unreadable, needs a
/// login, cooling (a cooldown ending at or before now is over: [`super::route::is_cooling`]),
/// spent (100 %), full (at least `switch_at`), else ready.
pub fn assess(f: &Facts, switch_at: f64, now_ms: i64) -> State {
    if f.unreadable {
        State::Unreadable
    } else if f.needs_login {
        State::NeedsLogin
    } else if super::route::is_cooling(f.cooldown_until_ms, now_ms) {
        State::Cooling
    } else if f.used_percent.is_some_and(|p| p >= 100.0) {
        State::Spent
    } else if f.used_percent.is_some_and(|p| p >= switch_at) {
        State::Full
    } else {
        State::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_one_order_of_rules() {
        let now = 1_000;
        let f = |needs_login, cooldown_until_ms, used_percent| Facts {
            unreadable: false,
            needs_login,
            cooldown_until_ms,
            used_percent,
        };
        let at = |facts: Facts| assess(&facts, 98.0, now);
        assert_eq!(at(f(false, None, None)), State::Ready);
        assert_eq!(at(f(false, None, Some(97.9))), State::Ready);
        assert_eq!(at(f(false, None, Some(98.0))), State::Full);
        assert_eq!(at(f(false, None, Some(100.0))), State::Spent);
        assert_eq!(at(f(false, Some(now + 1), Some(100.0))), State::Cooling);
        assert_eq!(
            at(f(false, Some(now), Some(50.0))),
            State::Ready,
            "a cooldown ending now is over"
        );
        assert_eq!(at(f(false, Some(now - 5), None)), State::Ready);
        assert_eq!(at(f(true, Some(now + 1), None)), State::NeedsLogin);
        let unreadable = Facts {
            unreadable: true,
            ..f(true, None, None)
        };
        assert_eq!(at(unreadable), State::Unreadable);
        for s in [State::Ready, State::Full, State::Spent] {
            assert!(s.takes_requests(), "{s:?}");
        }
        for s in [State::Cooling, State::NeedsLogin, State::Unreadable] {
            assert!(!s.takes_requests(), "{s:?}");
        }
    }

    #[test]
    fn one_spelling_per_state_on_the_wire() {
        for s in [
            State::Ready,
            State::Full,
            State::Cooling,
            State::Spent,
            State::NeedsLogin,
            State::Unreadable,
        ] {
            let wire = serde_json::to_value(s).unwrap_or_default();
            assert_eq!(wire, s.as_str());
            assert_eq!(serde_json::from_value::<State>(wire).ok(), Some(s));
        }
    }
}
