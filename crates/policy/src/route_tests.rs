//! Tests of the one routing decision: every rule, the strategies, and the odd cases (every
//! account cooling, a reset in the past, ties). A session's pin is tested in [`sessions`].

use super::*;
use crate::strategy::DEFAULT_SWITCH_AT;
use crate::usage::{UsageSource, UsageWindow};

#[path = "route_session_tests.rs"]
mod sessions;

const NOW: i64 = 1_800_000_000_000;

fn usage(used: f64, reset_in_s: Option<i64>) -> UsageSnapshot {
    UsageSnapshot {
        windows: vec![UsageWindow {
            family: "codex".into(),
            slot: "primary".into(),
            label: None,
            used_percent: used,
            window_minutes: Some(300),
            resets_at_ms: reset_in_s.map(|s| NOW + s * 1000),
        }],
        credits: None,
        plan_type: None,
        limit_reached: None,
        seen_at_ms: NOW,
        source: UsageSource::Headers,
        history: Vec::new(),
    }
}

fn cand<'a>(name: &'a str, u: Option<&'a UsageSnapshot>) -> Candidate<'a> {
    Candidate {
        name,
        usage: u,
        ..Default::default()
    }
}

fn c(name: &str) -> Candidate<'_> {
    cand(name, None)
}

fn input<'a>(cands: &'a [Candidate<'a>], strategy: Strategy) -> RouteInput<'a> {
    RouteInput {
        candidates: cands,
        affinity: None,
        strategy,
        switch_at: DEFAULT_SWITCH_AT,
        last_assigned: None,
        now_ms: NOW,
    }
}

fn fill_first<'a>(cands: &'a [Candidate<'a>]) -> RouteInput<'a> {
    input(cands, Strategy::FillFirst)
}

fn pinned<'a>(cands: &'a [Candidate<'a>], to: &'a str) -> RouteInput<'a> {
    RouteInput {
        affinity: Some(to),
        ..fill_first(cands)
    }
}

fn account(d: &Decision) -> Option<&str> {
    d.account.as_deref()
}

#[test]
fn fill_first_uses_the_first_usable_account_until_the_threshold() {
    let ua = usage(97.9, Some(60));
    let cs = [cand("a", Some(&ua)), c("b"), c("c")];
    let d = choose(&fill_first(&cs));
    assert_eq!(account(&d), Some("a"));
    assert_eq!(d.basis, Basis::Strategy);
    assert!(d.is_new_assignment());
    assert!(d.skipped.is_empty());

    let ua = usage(98.0, Some(60));
    let cs = [cand("a", Some(&ua)), c("b"), c("c")];
    let d = choose(&fill_first(&cs));
    assert_eq!(account(&d), Some("b"));
    assert_eq!(
        d.skipped,
        vec![Skipped {
            account: "a".into(),
            why: SkipReason::AboveSwitchAt {
                used_percent: 98.0,
                window: "5h".into()
            }
        }]
    );
    assert_eq!(
        d.summary(&|ms| format!("<{ms}>")),
        "fill-first -> b: first usable in rotation order (skipped: a 5h at 98%)"
    );
}

#[test]
fn cooling_needs_login_and_tried_accounts_are_skipped_with_reasons() {
    let cs = [
        Candidate {
            cooldown_until_ms: Some(NOW + 1),
            ..c("a")
        },
        Candidate {
            needs_login: true,
            ..c("b")
        },
        Candidate {
            tried: true,
            ..c("c")
        },
        c("d"),
    ];
    let d = choose(&fill_first(&cs));
    assert_eq!(account(&d), Some("d"));
    let why: Vec<_> = d.skipped.iter().map(|s| s.why.clone()).collect();
    assert_eq!(
        why,
        vec![
            SkipReason::Cooling { until_ms: NOW + 1 },
            SkipReason::NeedsLogin,
            SkipReason::Tried
        ]
    );
}

#[test]
fn a_cooldown_ending_now_or_in_the_past_is_over() {
    for until in [NOW, NOW - 1, 1] {
        let cs = [Candidate {
            cooldown_until_ms: Some(until),
            ..c("a")
        }];
        let d = choose(&fill_first(&cs));
        assert_eq!(account(&d), Some("a"), "cooldown until {until}");
        assert!(d.skipped.is_empty());
    }
    assert!(!is_cooling(Some(NOW), NOW));
    assert!(!is_cooling(None, NOW));
    assert!(is_cooling(Some(NOW + 1), NOW));
}

#[test]
fn a_usage_window_whose_reset_passed_counts_as_empty() {
    // 100 % used, but the window reset ten seconds ago: not full, not skipped.
    let spent_before = usage(100.0, Some(-10));
    let cs = [cand("a", Some(&spent_before)), c("b")];
    let d = choose(&fill_first(&cs));
    assert_eq!(account(&d), Some("a"));
    assert!(d.skipped.is_empty());
}

#[test]
fn every_account_cooling_gives_none_and_the_soonest_reset() {
    let cs = [
        Candidate {
            cooldown_until_ms: Some(NOW + 9000),
            ..c("a")
        },
        Candidate {
            cooldown_until_ms: Some(NOW + 3000),
            tried: true,
            ..c("b")
        },
        Candidate {
            needs_login: true,
            cooldown_until_ms: Some(NOW + 1500),
            ..c("c")
        },
    ];
    for strategy in [
        Strategy::FillFirst,
        Strategy::RoundRobin,
        Strategy::LeastUsed,
        Strategy::SoonestReset,
    ] {
        let d = choose(&input(&cs, strategy));
        assert_eq!(d.account, None);
        assert_eq!(d.basis, Basis::NoneUsable);
        assert!(!d.is_new_assignment());
        assert_eq!(d.skipped.len(), 3);
        // The tried one counts (it is cooling too); the needs-login one does not.
        assert_eq!(d.soonest_reset, Some(("b".to_string(), NOW + 3000)));
        assert_eq!(d.reason, "no account is usable");
    }
}

#[test]
fn nothing_usable_without_cooldowns_has_no_soonest_reset() {
    assert_eq!(choose(&fill_first(&[])).soonest_reset, None);
    assert_eq!(choose(&fill_first(&[])).account, None);
    let cs = [
        Candidate {
            tried: true,
            ..c("a")
        },
        Candidate {
            needs_login: true,
            ..c("b")
        },
        // A cooldown already over does not count as a reset to wait for.
        Candidate {
            cooldown_until_ms: Some(NOW - 5),
            tried: true,
            ..c("c")
        },
    ];
    let d = choose(&input(&cs, Strategy::LeastUsed));
    assert_eq!((d.account, d.soonest_reset), (None, None));
}

#[test]
fn all_above_threshold_uses_the_one_with_most_headroom() {
    let (ua, ub, uc) = (usage(99.5, None), usage(98.5, None), usage(98.5, None));
    let cs = [
        cand("a", Some(&ua)),
        cand("b", Some(&ub)),
        cand("c", Some(&uc)),
    ];
    let d = choose(&fill_first(&cs));
    assert_eq!(account(&d), Some("b"), "ties go to rotation order");
    assert_eq!(d.basis, Basis::MostHeadroom);
    assert!(d.is_new_assignment());
    assert!(d.reason.contains("most headroom"), "{}", d.reason);
    let skipped: Vec<_> = d.skipped.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(skipped, ["a", "c"]);
}

#[test]
fn a_full_account_serves_when_the_others_are_cooling_or_tried() {
    let ua = usage(99.0, None);
    let cs = [
        cand("a", Some(&ua)),
        Candidate {
            tried: true,
            ..c("b")
        },
        Candidate {
            cooldown_until_ms: Some(NOW + 60_000),
            ..c("c")
        },
    ];
    let d = choose(&input(&cs, Strategy::RoundRobin));
    assert_eq!(account(&d), Some("a"));
    assert_eq!(d.basis, Basis::MostHeadroom);
}

#[test]
fn round_robin_continues_after_the_last_assigned_and_wraps() {
    let ub = usage(99.0, None);
    let cs = [c("a"), cand("b", Some(&ub)), c("c"), c("d")];
    let pick = |last: Option<&'static str>| {
        let d = choose(&RouteInput {
            last_assigned: last,
            ..input(&cs, Strategy::RoundRobin)
        });
        d.account.unwrap_or_default()
    };
    assert_eq!(pick(None), "a");
    assert_eq!(pick(Some("a")), "c", "b is above the threshold");
    assert_eq!(pick(Some("c")), "d");
    assert_eq!(pick(Some("d")), "a");
    assert_eq!(pick(Some("gone")), "a");
    assert_eq!(pick(Some("b")), "c", "the full one still marks the place");
}

#[test]
fn least_used_prefers_lowest_percent_and_unknown_counts_as_empty() {
    let (ua, ub) = (usage(50.0, None), usage(10.0, None));
    let cs = [cand("a", Some(&ua)), cand("b", Some(&ub))];
    let d = choose(&input(&cs, Strategy::LeastUsed));
    assert_eq!(account(&d), Some("b"));
    assert_eq!(d.reason, "least used (5h at 10%)");

    let cs = [cand("a", Some(&ua)), cand("b", Some(&ub)), c("c")];
    let d = choose(&input(&cs, Strategy::LeastUsed));
    assert_eq!(account(&d), Some("c"));
    assert_eq!(d.reason, "least used (no usage reported yet)");
}

#[test]
fn strategy_ties_go_to_rotation_order() {
    let (ua, ub) = (usage(50.0, Some(600)), usage(50.0, Some(600)));
    let cs = [cand("a", Some(&ua)), cand("b", Some(&ub))];
    for strategy in [Strategy::LeastUsed, Strategy::SoonestReset] {
        assert_eq!(account(&choose(&input(&cs, strategy))), Some("a"));
    }
    // No usage anywhere: every strategy starts with the first in rotation.
    let cs = [c("x"), c("y")];
    for strategy in [
        Strategy::FillFirst,
        Strategy::RoundRobin,
        Strategy::LeastUsed,
        Strategy::SoonestReset,
    ] {
        assert_eq!(account(&choose(&input(&cs, strategy))), Some("x"));
    }
}

#[test]
fn least_used_treats_a_passed_reset_as_empty() {
    let ua = usage(90.0, Some(-10));
    let ub = usage(5.0, Some(100));
    let cs = [cand("b", Some(&ub)), cand("a", Some(&ua))];
    assert_eq!(
        account(&choose(&input(&cs, Strategy::LeastUsed))),
        Some("a")
    );
}

#[test]
fn soonest_reset_uses_quota_that_would_otherwise_be_lost() {
    let (ua, ub, uc) = (
        usage(10.0, Some(3600)),
        usage(60.0, Some(120)),
        usage(0.0, None),
    );
    let cs = [
        cand("a", Some(&ua)),
        cand("b", Some(&ub)),
        cand("c", Some(&uc)),
    ];
    let d = choose(&input(&cs, Strategy::SoonestReset));
    assert_eq!(account(&d), Some("b"));
    assert!(d.reason.contains("in 120s"), "{}", d.reason);

    // A reset already in the past is no reset to chase.
    let (ua, ub) = (usage(10.0, Some(-5)), usage(10.0, Some(900)));
    let cs = [cand("a", Some(&ua)), cand("b", Some(&ub))];
    assert_eq!(
        account(&choose(&input(&cs, Strategy::SoonestReset))),
        Some("b")
    );

    let cs = [c("x"), c("y")];
    let d = choose(&input(&cs, Strategy::SoonestReset));
    assert_eq!(account(&d), Some("x"));
    assert!(d.reason.contains("no reset time"));
}

#[test]
fn a_lower_switch_at_moves_sessions_earlier() {
    let ua = usage(80.0, None);
    let cs = [cand("a", Some(&ua)), c("b")];
    let d = choose(&RouteInput {
        switch_at: 75.0,
        ..fill_first(&cs)
    });
    assert_eq!(account(&d), Some("b"));
}

#[test]
fn decision_serializes_for_the_live_view() {
    let ua = usage(99.0, None);
    let cs = [cand("a", Some(&ua)), c("b")];
    let d = choose(&fill_first(&cs));
    let v = serde_json::to_value(&d).unwrap_or_default();
    assert_eq!(
        v,
        serde_json::json!({"account":"b","strategy":"fill-first",
            "reason":"first usable in rotation order",
            "skipped":[{"account":"a","reason":"aboveSwitchAt","usedPercent":99.0,"window":"5h"}]})
    );
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
