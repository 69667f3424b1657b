//! Which account serves a request: the gateway's ONE routing decision. Pure.
//!
//! [`choose`] takes everything that matters in a [`RouteInput`] (per account: cooldown, login
//! state, usage, already tried; overall: the session's pinned account, `--strategy`,
//! `--switch-at`, the last assignment, the time) and returns a [`Decision`] (the account, why,
//! and who was passed over and why). The gateway only builds the input and applies the result;
//! the HTTP and WebSocket transports call the same function.
//!
//! The rules, in order:
//! 1. A session (same `session-id` / `thread-id` / `x-session-id`) stays on its pinned account
//!    while that account is usable (not tried for this request, not cooling, logged in), even
//!    above `--switch-at`: the upstream prompt cache lives there. Upstream says when it is
//!    really spent (a 429), and then the request moves.
//! 2. Otherwise skip accounts already tried, cooling, needing a login, or whose main window is
//!    at least `switch_at` full, and let the strategy ([`super::strategy`]) pick among the rest.
//! 3. When every usable account is above the threshold, take the one with the most headroom
//!    (ties: rotation order): a nearly full account beats failing a request upstream may serve.
//! 4. Nothing usable: no account, plus the cooling account that resets first (for the
//!    upstream-shaped "all spent" answer).
//!
//! A cooldown ending at or before `now_ms` is over (one rule for a reset time already in the
//! past, see [`is_cooling`]).

use std::borrow::Cow;

use serde::Serialize;

use super::strategy::{Strategy, strategy_name};
use super::usage::UsageSnapshot;

/// A pinned account cooling for less than this is a brief failover (a rate limit, a transient
/// auth failure: [`super::upstream::AUTH_FAILURE_COOLDOWN_MS`] is one minute): the session keeps
/// its pin and returns to its account (and its prompt cache) once the cooldown ends. A longer
/// cooldown means the account is spent for a while (a usage limit resets in hours), so the
/// session moves to the account that served it. Five minutes sits well between the two.
pub const BRIEF_COOLDOWN_MS: i64 = 5 * 60 * 1000;

/// One account as routing sees it, given in rotation order (default first, then registry
/// order).
#[derive(Debug, Clone, Copy, Default)]
pub struct Candidate<'a> {
    pub name: &'a str,
    /// End of the account's cooldown (ms since epoch), if any; at or before now means over.
    pub cooldown_until_ms: Option<i64>,
    /// Login broken or missing: never usable until fixed.
    pub needs_login: bool,
    /// The last usage upstream reported, if any.
    pub usage: Option<&'a UsageSnapshot>,
    /// Already tried for this request.
    pub tried: bool,
}

/// Whether a cooldown ending at `until_ms` still holds at `now_ms`. A reset time already in
/// the past (or exactly now) is over: the account is usable again.
pub fn is_cooling(until_ms: Option<i64>, now_ms: i64) -> bool {
    until_ms.is_some_and(|u| u > now_ms)
}

impl Candidate<'_> {
    /// Usable for this request at `now_ms`, whatever its usage says.
    fn open(&self, now_ms: i64) -> bool {
        !self.tried && !self.needs_login && !is_cooling(self.cooldown_until_ms, now_ms)
    }
}

/// Everything [`choose`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    /// Accounts in rotation order.
    pub candidates: &'a [Candidate<'a>],
    /// The account this request's session is pinned to, if any.
    pub affinity: Option<&'a str>,
    pub strategy: Strategy,
    /// Percent (0..=100) at which an account stops receiving new sessions.
    pub switch_at: f64,
    /// The account the previous new session got (round-robin continues after it).
    pub last_assigned: Option<&'a str>,
    pub now_ms: i64,
}

/// Why an account was passed over.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub account: String,
    #[serde(flatten)]
    pub why: SkipReason,
}

/// Which rule produced the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Basis {
    /// The session stayed on its pinned account (rule 1).
    Affinity,
    /// The strategy picked among the accounts below the threshold (rule 2).
    #[default]
    Strategy,
    /// Every usable account was above the threshold; the one with the most headroom (rule 3).
    MostHeadroom,
    /// Nothing usable (rule 4).
    NoneUsable,
}

/// The decision with its explanation, for a debug log line and the live view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The account to use; None when no account is usable at all.
    pub account: Option<String>,
    pub strategy: Strategy,
    /// Why this account, in words.
    pub reason: Cow<'static, str>,
    pub skipped: Vec<Skipped>,
    /// Which rule decided (not part of the live view's JSON).
    #[serde(skip)]
    pub basis: Basis,
    /// With no account: the cooling account that resets first and when (ms), if any account
    /// is cooling at all (needs-login accounts do not count).
    #[serde(skip)]
    pub soonest_reset: Option<(String, i64)>,
}

impl Decision {
    /// A new session was assigned (so round-robin moves on and the live view shows it):
    /// anything but a session staying on its account.
    pub fn is_new_assignment(&self) -> bool {
        self.account.is_some() && self.basis != Basis::Affinity
    }

    /// One line for logs and the live view: `fill-first -> work: first usable in rotation order
    /// (skipped: a cooling until 2026-11-24 21:30 UTC (in 42m))`. `when` words a moment (policy
    /// formats no time: `cao::render::time` does, for people).
    pub fn summary(&self, when: &dyn Fn(i64) -> String) -> String {
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
                .map(|k| format!("{} {}", k.account, skip_words(&k.why, when)))
                .collect();
            s.push_str(&format!(" (skipped: {})", parts.join(", ")));
        }
        s
    }
}

fn skip_words(r: &SkipReason, when: &dyn Fn(i64) -> String) -> String {
    match r {
        SkipReason::Tried => "already tried".into(),
        SkipReason::Cooling { until_ms } => format!("cooling until {}", when(*until_ms)),
        SkipReason::NeedsLogin => "needs login".into(),
        SkipReason::AboveSwitchAt {
            used_percent,
            window,
        } => format!("{window} at {used_percent:.0}%"),
    }
}

/// An account below the threshold, as the strategy sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Eligible<'a> {
    /// Position in rotation order.
    pub index: usize,
    pub candidate: &'a Candidate<'a>,
    /// Main-window used percent now (0 when unknown).
    pub used: f64,
}

/// Choose the account for the next attempt of a request. The only routing decision.
pub fn choose(input: &RouteInput<'_>) -> Decision {
    let now = input.now_ms;
    let decided = |account: &str, basis, reason: Cow<'static, str>, skipped| Decision {
        account: Some(account.to_string()),
        strategy: input.strategy,
        reason,
        skipped,
        basis,
        soonest_reset: None,
    };
    // Rule 1: the session stays where it is while that account is usable.
    if let Some(pinned) = input.affinity
        && let Some(c) = input
            .candidates
            .iter()
            .find(|c| c.name == pinned && c.open(now))
    {
        return decided(
            c.name,
            Basis::Affinity,
            "the session stays on its account".into(),
            Vec::new(),
        );
    }

    let mut skipped = Vec::new();
    let mut eligible: Vec<Eligible<'_>> = Vec::new();
    let mut full: Vec<Eligible<'_>> = Vec::new();
    for (index, c) in input.candidates.iter().enumerate() {
        let skip = |why| Skipped {
            account: c.name.to_string(),
            why,
        };
        if c.tried {
            skipped.push(skip(SkipReason::Tried));
            continue;
        }
        if let Some(until_ms) = c
            .cooldown_until_ms
            .filter(|_| is_cooling(c.cooldown_until_ms, now))
        {
            skipped.push(skip(SkipReason::Cooling { until_ms }));
            continue;
        }
        if c.needs_login {
            skipped.push(skip(SkipReason::NeedsLogin));
            continue;
        }
        let fullness = c.usage.and_then(|u| u.fullness(now));
        let e = Eligible {
            index,
            candidate: c,
            used: fullness.map_or(0.0, |f| f.used_percent),
        };
        match fullness {
            Some(f) if f.used_percent >= input.switch_at => {
                skipped.push(skip(SkipReason::AboveSwitchAt {
                    used_percent: f.used_percent,
                    window: f.window.display_name(),
                }));
                full.push(e);
            }
            _ => eligible.push(e),
        }
    }

    // Rule 2: the strategy picks among the accounts below the threshold.
    if let Some((pick, reason)) = pick(input, &eligible) {
        return decided(pick.candidate.name, Basis::Strategy, reason, skipped);
    }

    // Rule 3: everyone usable is above the threshold: the most headroom (ties: rotation order).
    let best = full.iter().fold(None::<&Eligible<'_>>, |b, x| match b {
        Some(b) if b.used <= x.used => Some(b),
        _ => Some(x),
    });
    if let Some(best) = best {
        let name = best.candidate.name;
        skipped.retain(|s| s.account != name);
        let reason = format!(
            "every usable account is at or above {:.0}%; {name} has the most headroom ({:.0}%)",
            input.switch_at, best.used
        );
        return decided(name, Basis::MostHeadroom, reason.into(), skipped);
    }

    // Rule 4: nothing usable.
    Decision {
        account: None,
        strategy: input.strategy,
        reason: "no account is usable".into(),
        skipped,
        basis: Basis::NoneUsable,
        soonest_reset: soonest_reset(input.candidates, now),
    }
}

/// The cooling (not needs-login) account whose cooldown ends first, tried or not.
fn soonest_reset(candidates: &[Candidate<'_>], now_ms: i64) -> Option<(String, i64)> {
    candidates
        .iter()
        .filter(|c| !c.needs_login)
        .filter_map(|c| {
            c.cooldown_until_ms
                .filter(|_| is_cooling(c.cooldown_until_ms, now_ms))
                .map(|u| (c.name, u))
        })
        .fold(None::<(&str, i64)>, |best, c| match best {
            Some(b) if b.1 <= c.1 => Some(b),
            _ => Some(c),
        })
        .map(|(n, u)| (n.to_string(), u))
}

/// The keep-or-move rule for a session that was just served by another account than the one
/// it is pinned to: keep the pin when the pinned account is only briefly unusable (cooling for
/// less than [`BRIEF_COOLDOWN_MS`] from `now_ms`, logged in), move it otherwise (the pinned
/// account is gone, needs a login, or is spent for a while). `pinned` is None when the pinned
/// account is no longer in the pool.
pub fn keeps_pin(pinned: Option<&Candidate<'_>>, now_ms: i64) -> bool {
    pinned.is_some_and(|c| {
        !c.needs_login
            && c.cooldown_until_ms
                .is_none_or(|u| u < now_ms.saturating_add(BRIEF_COOLDOWN_MS))
    })
}

/// Whether a request asks about the client's own login rather than for work to be done: Codex's
/// start-up workspace check (`GET .../accounts/check`, both path styles). Codex looks for its own
/// `tokens.account_id` in the answer and refuses to start when it is missing, so this call must
/// carry the client's own credentials, not those of the account serving model calls.
pub fn is_client_identity_call(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("GET") && path.trim_end_matches('/').ends_with("/accounts/check")
}

/// The headers a session key is read from, first present first.
pub const SESSION_KEY_HEADERS: [&str; 3] = ["session-id", "thread-id", "x-session-id"];

/// The session key of a request: the first present of `session-id`, `thread-id`,
/// `x-session-id` (values as given by `get`).
pub fn session_key<'h>(get: impl Fn(&str) -> Option<&'h str>) -> Option<&'h str> {
    SESSION_KEY_HEADERS
        .into_iter()
        .find_map(|h| get(h).map(str::trim).filter(|v| !v.is_empty()))
}

/// The strategy's pick among `eligible` and why, in words. `choose` has already set aside
/// sessions staying on their account, and accounts that are tried, cooling, need a login or are
/// above `--switch-at`; what is left is in rotation order (default account first, then
/// registry order), which also breaks every tie.
fn pick<'a>(
    input: &RouteInput<'_>,
    eligible: &[Eligible<'a>],
) -> Option<(Eligible<'a>, Cow<'static, str>)> {
    let first = *eligible.first()?;
    let now = input.now_ms;
    Some(match input.strategy {
        Strategy::FillFirst => (first, "first usable in rotation order".into()),
        Strategy::RoundRobin => {
            let last_idx = input
                .last_assigned
                .and_then(|l| input.candidates.iter().position(|c| c.name == l));
            let pick = last_idx
                .and_then(|li| eligible.iter().find(|e| e.index > li).copied())
                .unwrap_or(first);
            let reason = match input.last_assigned {
                Some(l) => format!("next after {l}").into(),
                None => "first in rotation".into(),
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
                )
                .into(),
                None => "least used (no usage reported yet)".into(),
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
                i64::MAX => "no reset time known; first in rotation".into(),
                r => format!(
                    "its window resets soonest (in {}s), so its remaining quota would be lost first",
                    ((r - now) + 999) / 1000
                )
                .into(),
            };
            (pick, reason)
        }
    })
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
