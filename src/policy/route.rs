//! Which account serves a request. Pure.
//!
//! A session (same `session-id` / `thread-id` / `x-session-id`) stays on its account while that
//! account is usable, so the upstream prompt cache keeps working. New sessions go to the first
//! usable account in rotation order (default first, then registry order): "fill first".
//! Usage-aware strategies (issue 6) plug in by re-ordering [`RouteInput::candidates`] or by
//! setting [`Candidate::avoid_new_sessions`] before calling [`choose`].

/// One account as routing sees it, in rotation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Candidate<'a> {
    pub name: &'a str,
    /// End of the account's cooldown (ms since epoch), if any.
    pub cooldown_until_ms: Option<i64>,
    /// Login broken or missing: never usable until fixed.
    pub needs_login: bool,
    /// Usable, but should not take new sessions (e.g. window above `--switch-at`). Sessions
    /// already on it stay; it is still used when nothing else is left.
    pub avoid_new_sessions: bool,
}

impl Candidate<'_> {
    fn usable(&self, now_ms: i64) -> bool {
        !self.needs_login && self.cooldown_until_ms.is_none_or(|u| u <= now_ms)
    }
}

/// Everything [`choose`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    /// Accounts in preference order (default first, then registry order, or a strategy's order).
    pub candidates: &'a [Candidate<'a>],
    /// The account this request's session is pinned to, if any.
    pub affinity: Option<&'a str>,
    /// Accounts already tried for this request.
    pub exclude: &'a [&'a str],
    pub now_ms: i64,
}

/// Why an account was chosen (for logs and the live view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The session was already on it.
    Affinity,
    /// First usable account in order.
    Order,
    /// Only accounts marked `avoid_new_sessions` were left.
    Fallback,
}

/// The routing decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice<'a> {
    Use {
        name: &'a str,
        reason: Reason,
    },
    /// Nothing usable. `soonest` is the cooling account that resets first (name, ms), if any
    /// account is cooling at all.
    NoneUsable {
        soonest: Option<(&'a str, i64)>,
    },
}

/// Choose the account for the next attempt.
pub fn choose<'a>(input: &RouteInput<'a>) -> Choice<'a> {
    let open = |c: &&Candidate<'a>| c.usable(input.now_ms) && !input.exclude.contains(&c.name);
    if let Some(a) = input.affinity
        && let Some(c) = input.candidates.iter().filter(open).find(|c| c.name == a)
    {
        return Choice::Use {
            name: c.name,
            reason: Reason::Affinity,
        };
    }
    if let Some(c) = input
        .candidates
        .iter()
        .filter(open)
        .find(|c| !c.avoid_new_sessions)
    {
        return Choice::Use {
            name: c.name,
            reason: Reason::Order,
        };
    }
    if let Some(c) = input.candidates.iter().find(open) {
        return Choice::Use {
            name: c.name,
            reason: Reason::Fallback,
        };
    }
    Choice::NoneUsable {
        soonest: soonest_reset(input.candidates, input.now_ms),
    }
}

/// The cooling (not needs-login) account whose cooldown ends first.
pub fn soonest_reset<'a>(candidates: &[Candidate<'a>], now_ms: i64) -> Option<(&'a str, i64)> {
    candidates
        .iter()
        .filter(|c| !c.needs_login)
        .filter_map(|c| {
            c.cooldown_until_ms
                .filter(|u| *u > now_ms)
                .map(|u| (c.name, u))
        })
        .fold(None, |best, c| match best {
            Some(b) if b.1 <= c.1 => Some(b),
            _ => Some(c),
        })
}

/// Whether a request asks about the client's own login rather than for work to be done: Codex's
/// start-up workspace check (`GET .../accounts/check`, both path styles). Codex looks for its own
/// `tokens.account_id` in the answer and refuses to start when it is missing, so this call must
/// carry the client's own credentials, not those of the account serving model calls.
pub fn is_client_identity_call(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("GET") && path.trim_end_matches('/').ends_with("/accounts/check")
}

/// The session key of a request: the first present of `session-id`, `thread-id`,
/// `x-session-id` (values as given by `get`).
pub fn session_key<'h>(get: impl Fn(&str) -> Option<&'h str>) -> Option<&'h str> {
    ["session-id", "thread-id", "x-session-id"]
        .into_iter()
        .find_map(|h| get(h).map(str::trim).filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> Candidate<'_> {
        Candidate {
            name,
            ..Default::default()
        }
    }

    fn input<'a>(
        cands: &'a [Candidate<'a>],
        aff: Option<&'a str>,
        ex: &'a [&'a str],
    ) -> RouteInput<'a> {
        RouteInput {
            candidates: cands,
            affinity: aff,
            exclude: ex,
            now_ms: 1000,
        }
    }

    #[test]
    fn first_usable_in_order() {
        let cands = [c("a"), c("b")];
        assert_eq!(
            choose(&input(&cands, None, &[])),
            Choice::Use {
                name: "a",
                reason: Reason::Order
            }
        );
        assert_eq!(
            choose(&input(&cands, None, &["a"])),
            Choice::Use {
                name: "b",
                reason: Reason::Order
            }
        );
    }

    #[test]
    fn affinity_sticks_while_usable_and_survives_failover() {
        let mut cands = [c("a"), c("b")];
        assert_eq!(
            choose(&input(&cands, Some("b"), &[])),
            Choice::Use {
                name: "b",
                reason: Reason::Affinity
            }
        );
        cands[1].cooldown_until_ms = Some(5000);
        assert_eq!(
            choose(&input(&cands, Some("b"), &[])),
            Choice::Use {
                name: "a",
                reason: Reason::Order
            }
        );
        cands[1].cooldown_until_ms = Some(900);
        assert_eq!(
            choose(&input(&cands, Some("b"), &[])),
            Choice::Use {
                name: "b",
                reason: Reason::Affinity
            }
        );
        assert_eq!(
            choose(&input(&cands, Some("gone"), &[])),
            Choice::Use {
                name: "a",
                reason: Reason::Order
            }
        );
    }

    #[test]
    fn skips_cooling_and_needs_login() {
        let mut cands = [c("a"), c("b"), c("c")];
        cands[0].needs_login = true;
        cands[1].cooldown_until_ms = Some(2000);
        assert_eq!(
            choose(&input(&cands, None, &[])),
            Choice::Use {
                name: "c",
                reason: Reason::Order
            }
        );
    }

    #[test]
    fn all_cooling_reports_soonest() {
        let mut cands = [c("a"), c("b"), c("c")];
        cands[0].cooldown_until_ms = Some(9000);
        cands[1].cooldown_until_ms = Some(3000);
        cands[2].needs_login = true;
        cands[2].cooldown_until_ms = Some(1500);
        assert_eq!(
            choose(&input(&cands, None, &[])),
            Choice::NoneUsable {
                soonest: Some(("b", 3000))
            }
        );
        assert_eq!(
            choose(&input(&[], None, &[])),
            Choice::NoneUsable { soonest: None }
        );
        let cands = [c("a")];
        assert_eq!(
            choose(&input(&cands, None, &["a"])),
            Choice::NoneUsable { soonest: None }
        );
    }

    #[test]
    fn avoided_accounts_keep_sessions_and_serve_as_fallback() {
        let mut cands = [c("a"), c("b")];
        cands[0].avoid_new_sessions = true;
        assert_eq!(
            choose(&input(&cands, None, &[])),
            Choice::Use {
                name: "b",
                reason: Reason::Order
            }
        );
        assert_eq!(
            choose(&input(&cands, Some("a"), &[])),
            Choice::Use {
                name: "a",
                reason: Reason::Affinity
            }
        );
        assert_eq!(
            choose(&input(&cands, None, &["b"])),
            Choice::Use {
                name: "a",
                reason: Reason::Fallback
            }
        );
    }

    #[test]
    fn session_key_takes_first_present() {
        let h = |k: &str| match k {
            "thread-id" => Some("t1"),
            "x-session-id" => Some("x1"),
            "session-id" => Some("  "),
            _ => None,
        };
        assert_eq!(session_key(h), Some("t1"));
        assert_eq!(session_key(|_| None), None);
    }

    #[test]
    fn the_workspace_check_is_about_the_client() {
        for p in [
            "/backend-api/wham/accounts/check",
            "/api/codex/accounts/check",
            "/backend-api/wham/accounts/check/",
        ] {
            assert!(is_client_identity_call("GET", p), "{p}");
        }
        assert!(!is_client_identity_call(
            "POST",
            "/backend-api/wham/accounts/check"
        ));
        for p in [
            "/responses",
            "/models",
            "/backend-api/wham/usage",
            "/accounts/checkout",
        ] {
            assert!(!is_client_identity_call("GET", p), "{p}");
        }
    }
}
