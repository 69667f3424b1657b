use super::*;

fn plan(accounts: &[&str], cooldowns: &[(&str, i64)], o: PlanOptions) -> RunPlan {
    RunPlan::new(
        accounts.iter().map(|s| s.to_string()).collect(),
        cooldowns.iter().map(|(a, u)| (a.to_string(), *u)).collect(),
        o,
    )
}

fn opts() -> PlanOptions {
    PlanOptions {
        fallback: true,
        wait: false,
        max_passes: 2,
        retry_delay_ms: 0,
    }
}

fn run(step: Step) -> String {
    match step {
        Step::Run { account, .. } => account,
        other => panic!("expected Run, got {other:?}"),
    }
}

const NOW: i64 = 1_000_000;

#[test]
fn first_success_ends_the_run() {
    let mut p = plan(&["a", "b"], &[], opts());
    assert_eq!(run(p.next(NOW)), "a");
    p.record("a", Attempt::Success, NOW);
    assert!(matches!(
        p.next(NOW),
        Step::Exit {
            code: 0,
            reason: ExitReason::Success,
            ..
        }
    ));
}

#[test]
fn quota_falls_back_to_the_next_account() {
    let mut p = plan(&["a", "b", "c"], &[], opts());
    assert_eq!(run(p.next(NOW)), "a");
    p.record(
        "a",
        Attempt::Quota {
            code: 1,
            reset_at_ms: Some(NOW + 5),
        },
        NOW,
    );
    assert_eq!(run(p.next(NOW)), "b");
    p.record("b", Attempt::Success, NOW);
    assert!(matches!(p.next(NOW), Step::Exit { code: 0, .. }));
}

#[test]
fn a_non_quota_failure_stops_with_its_code() {
    let mut p = plan(&["a", "b"], &[], opts());
    assert_eq!(run(p.next(NOW)), "a");
    p.record("a", Attempt::Failed { code: 3 }, NOW);
    assert_eq!(
        p.next(NOW),
        Step::Exit {
            code: 3,
            reason: ExitReason::Failed,
            soonest: None
        }
    );
}

#[test]
fn interrupted_never_falls_back() {
    let mut p = plan(&["a", "b"], &[], opts());
    p.next(NOW);
    p.record("a", Attempt::Interrupted { code: 130 }, NOW);
    assert!(matches!(
        p.next(NOW),
        Step::Exit {
            code: 130,
            reason: ExitReason::Interrupted,
            ..
        }
    ));
}

#[test]
fn no_fallback_stops_after_the_first_quota() {
    let mut p = plan(
        &["a", "b"],
        &[],
        PlanOptions {
            fallback: false,
            ..opts()
        },
    );
    p.next(NOW);
    p.record(
        "a",
        Attempt::Quota {
            code: 1,
            reset_at_ms: None,
        },
        NOW,
    );
    assert!(matches!(
        p.next(NOW),
        Step::Exit {
            code: 1,
            reason: ExitReason::QuotaNoFallback,
            ..
        }
    ));
}

#[test]
fn cooling_accounts_are_skipped_and_reported_once() {
    let mut p = plan(
        &["a", "b", "c"],
        &[("a", NOW + 100), ("b", NOW - 1)],
        opts(),
    );
    match p.next(NOW) {
        Step::Run { account, skipped } => {
            assert_eq!(account, "b");
            assert_eq!(skipped, vec![("a".to_string(), NOW + 100)]);
        }
        s => panic!("{s:?}"),
    }
    p.record(
        "b",
        Attempt::Quota {
            code: 1,
            reset_at_ms: None,
        },
        NOW,
    );
    match p.next(NOW) {
        Step::Run { account, skipped } => {
            assert_eq!(account, "c");
            assert!(skipped.is_empty());
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn every_account_cooling_names_the_soonest_reset() {
    let mut p = plan(&["a", "b"], &[("a", NOW + 500), ("b", NOW + 200)], opts());
    assert_eq!(
        p.next(NOW),
        Step::Exit {
            code: 1,
            reason: ExitReason::AllCooling,
            soonest: Some(("b".into(), NOW + 200))
        }
    );
}

#[test]
fn wait_waits_for_the_soonest_then_runs_it() {
    let mut p = plan(
        &["a", "b"],
        &[("a", NOW + 500), ("b", NOW + 200)],
        PlanOptions {
            wait: true,
            ..opts()
        },
    );
    assert_eq!(
        p.next(NOW),
        Step::Wait {
            account: "b".into(),
            until_ms: NOW + 200
        }
    );
    assert_eq!(run(p.next(NOW + 200)), "b");
}

#[test]
fn all_passes_spent_exits_with_the_last_code_and_soonest_reset() {
    let mut p = plan(&["a", "b"], &[], opts());
    for pass in 0..2 {
        for a in ["a", "b"] {
            let now = NOW + pass * 1_000_000_000;
            assert_eq!(run(p.next(now)), a, "pass {pass}");
            p.record(
                a,
                Attempt::Quota {
                    code: 7,
                    // b resets before a; both well before the second pass
                    reset_at_ms: Some(now + if a == "a" { 900 } else { 600 }),
                },
                now,
            );
        }
    }
    let later = NOW + 1_000_000_000;
    assert_eq!(
        p.next(later),
        Step::Exit {
            code: 7,
            reason: ExitReason::PassesSpent,
            soonest: Some(("b".into(), later + 600))
        }
    );
}

#[test]
fn second_pass_skips_accounts_still_cooling_and_gives_up_without_wait() {
    let mut p = plan(&["a", "b"], &[], opts());
    for a in ["a", "b"] {
        p.next(NOW);
        p.record(
            a,
            Attempt::Quota {
                code: 1,
                reset_at_ms: None,
            },
            NOW,
        );
    }
    assert_eq!(
        p.next(NOW + 1),
        Step::Exit {
            code: 1,
            reason: ExitReason::PassesSpent,
            soonest: Some(("a".into(), NOW + DEFAULT_COOLDOWN_MS))
        }
    );
}

#[test]
fn retry_delay_sleeps_between_passes() {
    let mut p = plan(
        &["a"],
        &[],
        PlanOptions {
            retry_delay_ms: 2_000,
            ..opts()
        },
    );
    p.next(NOW);
    p.record(
        "a",
        Attempt::Quota {
            code: 1,
            reset_at_ms: Some(NOW + 1_000),
        },
        NOW,
    );
    assert_eq!(p.next(NOW), Step::Sleep { ms: 2_000 });
    assert_eq!(run(p.next(NOW + 2_000)), "a");
}

#[test]
fn max_passes_zero_means_one() {
    let mut p = plan(
        &["a"],
        &[],
        PlanOptions {
            max_passes: 0,
            ..opts()
        },
    );
    p.next(NOW);
    p.record(
        "a",
        Attempt::Quota {
            code: 1,
            reset_at_ms: Some(NOW),
        },
        NOW,
    );
    assert!(matches!(
        p.next(NOW + 1),
        Step::Exit {
            reason: ExitReason::PassesSpent,
            ..
        }
    ));
}

#[test]
fn classify_rules() {
    assert_eq!(classify(0, false, None, false), Attempt::Success);
    assert_eq!(classify(2, false, None, false), Attempt::Failed { code: 2 });
    assert_eq!(
        classify(1, false, Some(Some(5)), false),
        Attempt::Quota {
            code: 1,
            reset_at_ms: Some(5)
        }
    );
    // exec quoting the message but succeeding is a success
    assert_eq!(classify(0, false, Some(None), false), Attempt::Success);
    // the TUI exits 0 after showing the message
    assert_eq!(
        classify(0, false, Some(None), true),
        Attempt::Quota {
            code: 0,
            reset_at_ms: None
        }
    );
    assert_eq!(
        classify(130, true, Some(None), true),
        Attempt::Interrupted { code: 130 }
    );
    assert_eq!(cooldown_until(None, 10), 10 + DEFAULT_COOLDOWN_MS);
    assert_eq!(cooldown_until(Some(3), 10), 3);
}
