//! Tests of a session's pin: it stays on its account while that is usable (whatever the
//! strategy, above --switch-at), moves when the account is spent, tried, broken or gone, and a
//! brief cooldown keeps it. The fixtures are [`super`]'s.

use super::*;

#[test]
fn a_pinned_session_stays_on_its_account_while_it_is_usable() {
    let cs = [c("a"), c("b")];
    let d = choose(&pinned(&cs, "b"));
    assert_eq!(account(&d), Some("b"));
    assert_eq!(d.basis, Basis::Affinity);
    assert!(!d.is_new_assignment(), "round-robin does not move on");
    // Whatever the strategy says.
    for strategy in [Strategy::RoundRobin, Strategy::LeastUsed] {
        let ua = usage(0.0, None);
        let cs = [cand("a", Some(&ua)), c("b")];
        let d = choose(&RouteInput {
            strategy,
            last_assigned: Some("b"),
            ..pinned(&cs, "b")
        });
        assert_eq!(account(&d), Some("b"));
    }
}

#[test]
fn a_pinned_session_stays_on_a_full_or_spent_account_until_upstream_says_so() {
    // Above --switch-at, even at 100 %: the prompt cache lives there, and only upstream's
    // 429 (which cools the account) moves the session.
    for used in [98.0, 99.0, 100.0] {
        let ua = usage(used, Some(3600));
        let cs = [cand("a", Some(&ua)), c("b")];
        let d = choose(&pinned(&cs, "a"));
        assert_eq!(account(&d), Some("a"), "{used} %");
        assert_eq!(d.basis, Basis::Affinity);
    }
}

#[test]
fn a_pinned_session_whose_account_got_spent_moves_by_the_strategy() {
    let cs = [
        Candidate {
            cooldown_until_ms: Some(NOW + 3_600_000),
            ..c("a")
        },
        c("b"),
    ];
    let d = choose(&pinned(&cs, "a"));
    assert_eq!(account(&d), Some("b"));
    assert_eq!(d.basis, Basis::Strategy);
    assert!(d.is_new_assignment());
    assert_eq!(
        d.skipped[0].why,
        SkipReason::Cooling {
            until_ms: NOW + 3_600_000
        }
    );
    // Its cooldown over: back to it.
    let cs = [
        Candidate {
            cooldown_until_ms: Some(NOW - 1),
            ..c("a")
        },
        c("b"),
    ];
    assert_eq!(account(&choose(&pinned(&cs, "a"))), Some("a"));
}

#[test]
fn a_pinned_session_moves_when_its_account_was_tried_needs_login_or_is_gone() {
    let cs = [
        Candidate {
            tried: true,
            ..c("a")
        },
        c("b"),
    ];
    assert_eq!(account(&choose(&pinned(&cs, "a"))), Some("b"));
    let cs = [
        Candidate {
            needs_login: true,
            ..c("a")
        },
        c("b"),
    ];
    assert_eq!(account(&choose(&pinned(&cs, "a"))), Some("b"));
    let cs = [c("a"), c("b")];
    let d = choose(&pinned(&cs, "gone"));
    assert_eq!((account(&d), d.basis), (Some("a"), Basis::Strategy));
}

#[test]
fn a_brief_cooldown_keeps_the_pin_and_a_long_one_moves_it() {
    let at = |until: Option<i64>| Candidate {
        cooldown_until_ms: until,
        ..c("a")
    };
    assert!(keeps_pin(Some(&at(None)), NOW));
    assert!(
        keeps_pin(Some(&at(Some(NOW + 10_000))), NOW),
        "a rate limit"
    );
    assert!(keeps_pin(Some(&at(Some(NOW + BRIEF_COOLDOWN_MS - 1))), NOW));
    assert!(!keeps_pin(Some(&at(Some(NOW + BRIEF_COOLDOWN_MS))), NOW));
    assert!(!keeps_pin(Some(&at(Some(NOW + 3_600_000))), NOW), "spent");
    let broken = Candidate {
        needs_login: true,
        ..c("a")
    };
    assert!(!keeps_pin(Some(&broken), NOW));
    assert!(!keeps_pin(None, NOW), "the account is gone");
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
