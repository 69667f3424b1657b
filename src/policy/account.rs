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
}

#[cfg(test)]
mod tests {
    use super::*;

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
