use super::*;
use crate::policy::usage::{UsageSource, UsageWindow};

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
    }
}

fn cand<'a>(name: &'a str, u: Option<&'a UsageSnapshot>) -> Candidate<'a> {
    Candidate {
        name,
        cooldown_until_ms: None,
        needs_login: false,
        usage: u,
    }
}

fn params(strategy: Strategy) -> Params<'static> {
    Params {
        strategy,
        switch_at: DEFAULT_SWITCH_AT,
        last_assigned: None,
        tried: &[],
        now_ms: NOW,
    }
}

#[test]
fn fill_first_uses_the_first_usable_account_until_the_threshold() {
    let ua = usage(97.9, Some(60));
    let cs = [cand("a", Some(&ua)), cand("b", None), cand("c", None)];
    let d = choose(&cs, &params(Strategy::FillFirst));
    assert_eq!(d.account.as_deref(), Some("a"));
    assert!(d.skipped.is_empty());

    let ua = usage(98.0, Some(60));
    let cs = [cand("a", Some(&ua)), cand("b", None), cand("c", None)];
    let d = choose(&cs, &params(Strategy::FillFirst));
    assert_eq!(d.account.as_deref(), Some("b"));
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
        d.summary(),
        "fill-first -> b: first usable in rotation order (skipped: a 5h at 98%)"
    );
}

#[test]
fn cooling_needs_login_and_tried_accounts_are_skipped_with_reasons() {
    let cs = [
        Candidate {
            cooldown_until_ms: Some(NOW + 1),
            ..cand("a", None)
        },
        Candidate {
            needs_login: true,
            ..cand("b", None)
        },
        cand("c", None),
        cand("d", None),
    ];
    let d = choose(
        &cs,
        &Params {
            tried: &["c"],
            ..params(Strategy::FillFirst)
        },
    );
    assert_eq!(d.account.as_deref(), Some("d"));
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
fn an_ended_cooldown_does_not_skip() {
    let cs = [Candidate {
        cooldown_until_ms: Some(NOW),
        ..cand("a", None)
    }];
    assert_eq!(
        choose(&cs, &params(Strategy::FillFirst)).account.as_deref(),
        Some("a")
    );
}

#[test]
fn nobody_usable_gives_none_and_lists_everyone() {
    let cs = [
        Candidate {
            cooldown_until_ms: Some(NOW + 5),
            ..cand("a", None)
        },
        Candidate {
            needs_login: true,
            ..cand("b", None)
        },
    ];
    let d = choose(&cs, &params(Strategy::LeastUsed));
    assert_eq!(d.account, None);
    assert_eq!(d.skipped.len(), 2);
    assert_eq!(choose(&[], &params(Strategy::RoundRobin)).account, None);
}

#[test]
fn all_above_threshold_uses_the_one_with_most_headroom() {
    let (ua, ub, uc) = (usage(99.5, None), usage(98.5, None), usage(98.5, None));
    let cs = [
        cand("a", Some(&ua)),
        cand("b", Some(&ub)),
        cand("c", Some(&uc)),
    ];
    let d = choose(&cs, &params(Strategy::FillFirst));
    assert_eq!(d.account.as_deref(), Some("b"));
    assert!(d.reason.contains("most headroom"), "{}", d.reason);
    let skipped: Vec<_> = d.skipped.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(skipped, ["a", "c"]);
}

#[test]
fn round_robin_continues_after_the_last_assigned_and_wraps() {
    let ub = usage(99.0, None);
    let cs = [
        cand("a", None),
        cand("b", Some(&ub)),
        cand("c", None),
        cand("d", None),
    ];
    let pick = |last: Option<&'static str>| {
        choose(
            &cs,
            &Params {
                last_assigned: last,
                ..params(Strategy::RoundRobin)
            },
        )
        .account
        .unwrap()
    };
    assert_eq!(pick(None), "a");
    assert_eq!(pick(Some("a")), "c", "b is above the threshold");
    assert_eq!(pick(Some("c")), "d");
    assert_eq!(pick(Some("d")), "a");
    assert_eq!(pick(Some("gone")), "a");
}

#[test]
fn least_used_prefers_lowest_percent_and_unknown_counts_as_empty() {
    let (ua, ub) = (usage(50.0, None), usage(10.0, None));
    let cs = [cand("a", Some(&ua)), cand("b", Some(&ub))];
    let d = choose(&cs, &params(Strategy::LeastUsed));
    assert_eq!(d.account.as_deref(), Some("b"));
    assert_eq!(d.reason, "least used (5h at 10%)");

    let cs = [cand("a", Some(&ua)), cand("b", Some(&ub)), cand("c", None)];
    assert_eq!(
        choose(&cs, &params(Strategy::LeastUsed)).account.as_deref(),
        Some("c")
    );
    // Ties go to rotation order.
    let ub2 = usage(50.0, None);
    let cs = [cand("a", Some(&ua)), cand("b", Some(&ub2))];
    assert_eq!(
        choose(&cs, &params(Strategy::LeastUsed)).account.as_deref(),
        Some("a")
    );
}

#[test]
fn least_used_treats_a_passed_reset_as_empty() {
    let ua = usage(90.0, Some(-10));
    let ub = usage(5.0, Some(100));
    let cs = [cand("b", Some(&ub)), cand("a", Some(&ua))];
    assert_eq!(
        choose(&cs, &params(Strategy::LeastUsed)).account.as_deref(),
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
    let d = choose(&cs, &params(Strategy::SoonestReset));
    assert_eq!(d.account.as_deref(), Some("b"));
    assert!(d.reason.contains("in 120s"), "{}", d.reason);

    let cs = [cand("x", None), cand("y", None)];
    let d = choose(&cs, &params(Strategy::SoonestReset));
    assert_eq!(d.account.as_deref(), Some("x"));
    assert!(d.reason.contains("no reset time"));
}

#[test]
fn a_lower_switch_at_moves_sessions_earlier() {
    let ua = usage(80.0, None);
    let cs = [cand("a", Some(&ua)), cand("b", None)];
    let p = Params {
        switch_at: 75.0,
        ..params(Strategy::FillFirst)
    };
    assert_eq!(choose(&cs, &p).account.as_deref(), Some("b"));
}

#[test]
fn switch_at_must_be_a_percent() {
    assert_eq!(check_switch_at(98.0), Ok(98.0));
    assert_eq!(check_switch_at(100.0), Ok(100.0));
    assert!(check_switch_at(0.0).is_err());
    assert!(check_switch_at(101.0).is_err());
    assert!(check_switch_at(f64::NAN).is_err());
}

#[test]
fn decision_serializes_for_the_live_view() {
    let ua = usage(99.0, None);
    let cs = [cand("a", Some(&ua)), cand("b", None)];
    let d = choose(&cs, &params(Strategy::FillFirst));
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"account":"b","strategy":"fill-first",
            "reason":"first usable in rotation order",
            "skipped":[{"account":"a","reason":"aboveSwitchAt","usedPercent":99.0,"window":"5h"}]})
    );
}
