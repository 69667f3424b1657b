//! What the gateway remembers about its routing, for round-robin and the live view: the last
//! new-session assignment, the last decision, and the recent switches. The decision itself is
//! [`crate::policy::route::choose`]; this only records its results.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::policy::route::{Basis, Decision};
use crate::policy::upstream::{Outcome, classify};
use crate::wire::SwitchRecord;

/// Switches remembered for the live view.
const RECENT_SWITCHES: usize = 50;

#[derive(Debug, Default)]
struct Inner {
    switches: VecDeque<SwitchRecord>,
    last_decision: Option<Decision>,
    last_assigned: Option<String>,
}

/// Routing memory, shared by the request handlers.
#[derive(Debug, Default)]
pub struct RouteMemory {
    inner: Mutex<Inner>,
}

impl RouteMemory {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
        self.inner.lock().ok().map(|mut i| f(&mut i))
    }

    /// The account the previous new session got (round-robin continues after it).
    pub fn last_assigned(&self) -> Option<String> {
        self.with(|i| i.last_assigned.clone()).flatten()
    }

    /// Remember a decision about a request without a usable pinned account (a session staying
    /// on its account changes nothing here): the live view shows it, and when it assigned an
    /// account, round-robin continues after that one.
    pub fn record(&self, d: Decision) {
        if d.basis == Basis::Affinity {
            return;
        }
        self.with(|i| {
            if d.account.is_some() && i.last_assigned != d.account {
                i.last_assigned.clone_from(&d.account);
            }
            i.last_decision = Some(d);
        });
    }

    /// A request moved from `from` to `to`.
    pub fn record_switch(&self, from: &str, to: &str, reason: &str, now_ms: i64) {
        self.with(|i| {
            if i.switches.len() >= RECENT_SWITCHES {
                i.switches.pop_front();
            }
            i.switches.push_back(SwitchRecord {
                at_ms: now_ms,
                from: from.to_string(),
                to: to.to_string(),
                reason: reason.to_string(),
            });
        });
    }

    pub fn recent_switches(&self) -> Vec<SwitchRecord> {
        self.with(|i| i.switches.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn last_decision(&self) -> Option<Decision> {
        self.with(|i| i.last_decision.clone()).flatten()
    }
}

/// Why a request left its first account, in words for the live view, from the last failed
/// answer (status and body) if there was one.
pub fn switch_reason(failed: Option<(u16, &[u8])>, now_ms: i64) -> String {
    match failed {
        None => "upstream unreachable or account unusable".to_string(),
        Some((status, body)) => match classify(status, Some(body), now_ms) {
            Outcome::UsageLimit { .. } => "usage limit reached".to_string(),
            Outcome::RateLimited => "rate limited".to_string(),
            Outcome::AuthFailed => format!("credentials refused ({status})"),
            Outcome::ServerError => format!("upstream error {status}"),
            Outcome::Pass => format!("upstream answered {status}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::strategy::Strategy;

    fn decision(account: Option<&str>, basis: Basis) -> Decision {
        Decision {
            account: account.map(str::to_string),
            strategy: Strategy::RoundRobin,
            reason: "".into(),
            skipped: Vec::new(),
            basis,
            soonest_reset: None,
        }
    }

    #[test]
    fn sessions_staying_put_change_nothing_and_only_assignments_move_round_robin() {
        let m = RouteMemory::default();
        m.record(decision(Some("a"), Basis::Strategy));
        m.record(decision(Some("b"), Basis::Affinity));
        assert_eq!(m.last_assigned().as_deref(), Some("a"));
        assert_eq!(
            m.last_decision().and_then(|d| d.account).as_deref(),
            Some("a")
        );
        // Nothing usable: shown, but round-robin keeps its place.
        m.record(decision(None, Basis::NoneUsable));
        assert_eq!(m.last_assigned().as_deref(), Some("a"));
        assert_eq!(m.last_decision().map(|d| d.basis), Some(Basis::NoneUsable));
        m.record(decision(Some("c"), Basis::MostHeadroom));
        assert_eq!(m.last_assigned().as_deref(), Some("c"));
    }

    #[test]
    fn recent_switches_keep_the_last_fifty() {
        let m = RouteMemory::default();
        for i in 0..60 {
            m.record_switch("a", "b", "usage limit reached", i);
        }
        let s = m.recent_switches();
        assert_eq!(s.len(), RECENT_SWITCHES);
        assert_eq!(s[0].at_ms, 10);
    }
}
