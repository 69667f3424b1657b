use super::*;
use crate::usage_event::from_event;

const NOW: i64 = 1_800_000_000_000;

fn h(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    pairs.to_vec()
}

#[test]
fn reads_primary_and_secondary_headers_of_the_main_family() {
    let s = from_headers(
        h(&[
            ("X-Codex-Primary-Used-Percent", "12.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", "1800000600"),
            ("x-codex-secondary-used-percent", "40"),
            ("x-codex-secondary-window-minutes", "10080"),
            ("x-codex-secondary-reset-at", "1800600000"),
            ("content-type", "text/event-stream"),
        ]),
        NOW,
    )
    .unwrap();
    assert_eq!(s.source, UsageSource::Headers);
    assert_eq!(s.seen_at_ms, NOW);
    assert_eq!(s.windows.len(), 2);
    let p = &s.windows[0];
    assert_eq!((p.family.as_str(), p.slot.as_str()), ("codex", "primary"));
    assert_eq!(p.used_percent, 12.5);
    assert_eq!(p.window_minutes, Some(300));
    assert_eq!(p.resets_at_ms, Some(1_800_000_600_000));
    assert_eq!(p.display_name(), "5h");
    assert_eq!(s.windows[1].display_name(), "weekly");
    assert_eq!(s.windows[1].resets_at_ms, Some(1_800_600_000_000));
}

#[test]
fn old_reset_after_seconds_is_relative_to_now() {
    let s = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "50"),
            ("x-codex-primary-reset-after-seconds", "90"),
        ]),
        NOW,
    )
    .unwrap();
    assert_eq!(s.windows[0].resets_at_ms, Some(NOW + 90_000));
    assert_eq!(s.windows[0].window_minutes, None);
    assert_eq!(s.windows[0].reset_in_secs(NOW + 500), Some(90));
}

#[test]
fn reset_at_wins_over_reset_after_seconds() {
    let s = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "50"),
            ("x-codex-primary-reset-at", "1800000100"),
            ("x-codex-primary-reset-after-seconds", "9999"),
        ]),
        NOW,
    )
    .unwrap();
    assert_eq!(s.windows[0].resets_at_ms, Some(1_800_000_100_000));
}

#[test]
fn model_specific_families_are_separate_windows() {
    let s = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "10"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-bengalfox-primary-used-percent", "100"),
            ("x-codex-bengalfox-primary-window-minutes", "300"),
            ("x-codex-bengalfox-limit-name", "gpt-5.3-codex-spark"),
        ]),
        NOW,
    )
    .unwrap();
    assert_eq!(s.windows.len(), 2);
    let fams: Vec<_> = s.windows.iter().map(|w| w.family.as_str()).collect();
    assert_eq!(fams, ["codex", "codex_bengalfox"]);
    assert_eq!(s.windows[1].label.as_deref(), Some("gpt-5.3-codex-spark"));
    assert_eq!(s.windows[1].display_name(), "gpt-5.3-codex-spark 5h");
    // Routing looks only at the main family: a spent model limit does not block the account.
    assert_eq!(s.fullness(NOW).unwrap().used_percent, 10.0);
    assert_eq!(s.spent_until_ms(NOW), None);
}

#[test]
fn without_a_main_family_every_window_gates_routing() {
    let s = from_headers(h(&[("x-codex-other-secondary-used-percent", "70")]), NOW).unwrap();
    assert_eq!(s.windows[0].family, "codex_other");
    assert_eq!(s.windows[0].slot, "secondary");
    assert_eq!(s.fullness(NOW).unwrap().used_percent, 70.0);
}

#[test]
fn no_rate_limit_headers_means_no_snapshot() {
    assert_eq!(from_headers(h(&[("content-type", "json")]), NOW), None);
    assert_eq!(from_headers(Vec::new(), NOW), None);
    // The empty placeholder upstream sends (0 %, nothing else) is not information.
    assert_eq!(
        from_headers(h(&[("x-codex-primary-used-percent", "0")]), NOW),
        None
    );
}

#[test]
fn junk_values_are_ignored_not_fatal() {
    let s = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "lots"),
            ("x-codex-secondary-used-percent", "NaN"),
            ("x-codex-credits-has-credits", "yes"),
            ("x-codex-credits-unlimited", "false"),
        ]),
        NOW,
    );
    assert_eq!(s, None);
    let s = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "250"),
            ("x-codex-primary-window-minutes", "-5"),
            ("x-codex-primary-reset-at", "soon"),
            ("x-codex-secondary-used-percent", "-3"),
            ("x-codex-secondary-window-minutes", "60"),
        ]),
        NOW,
    )
    .unwrap();
    assert_eq!(s.windows[0].used_percent, 100.0);
    assert_eq!(s.windows[0].window_minutes, None);
    assert_eq!(s.windows[0].resets_at_ms, None);
    assert_eq!(s.windows[1].used_percent, 0.0);
    assert_eq!(s.windows[1].display_name(), "1h");
}

#[test]
fn credits_need_both_flags() {
    let s = from_headers(
        h(&[
            ("x-codex-credits-has-credits", "true"),
            ("x-codex-credits-unlimited", "0"),
            ("x-codex-credits-balance", " 12.50 "),
        ]),
        NOW,
    )
    .unwrap();
    assert!(s.windows.is_empty());
    assert_eq!(
        s.credits,
        Some(Credits {
            has_credits: true,
            unlimited: false,
            balance: Some("12.50".into())
        })
    );
    assert_eq!(
        from_headers(h(&[("x-codex-credits-has-credits", "true")]), NOW),
        None
    );
}

#[test]
fn reads_the_rate_limit_event_as_codex_sends_it() {
    let data = r#"{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"allowed":true,"limit_reached":false,"primary":{"used_percent":7,"window_minutes":300,"reset_after_seconds":13168,"reset_at":1800013168},"secondary":{"used_percent":29,"window_minutes":10080,"reset_after_seconds":434962,"reset_at":1800434962}},"code_review_rate_limits":null}"#;
    let s = from_event(data, NOW).unwrap();
    assert_eq!(s.source, UsageSource::Event);
    assert_eq!(s.plan_type.as_deref(), Some("pro"));
    assert_eq!(s.limit_reached, Some(false));
    assert_eq!(s.windows.len(), 2);
    assert_eq!(s.windows[0].used_percent, 7.0);
    assert_eq!(s.windows[0].resets_at_ms, Some(1_800_013_168_000));
    assert_eq!(s.windows[1].window_minutes, Some(10080));
    assert_eq!(s.fullness(NOW).unwrap().used_percent, 29.0);
    assert_eq!(s.next_reset_ms(NOW), Some(1_800_013_168_000));
}

#[test]
fn event_family_credits_and_additional_limits() {
    let data = r#"{"type":"codex.rate_limits","metered_limit_name":"codex-bengalfox",
        "rate_limits":{"primary":{"used_percent":55.5,"reset_after_seconds":60}},
        "credits":{"has_credits":true,"unlimited":false,"balance":"3"},
        "additional_rate_limits":[{"limit_name":"GPT Spark","metered_feature":"codex_spark",
          "rate_limit":{"primary_window":{"used_percent":20,"limit_window_seconds":18000}}},
          {"bogus":true}]}"#;
    let s = from_event(data, NOW).unwrap();
    assert_eq!(s.windows[0].family, "codex_bengalfox");
    assert_eq!(s.windows[0].resets_at_ms, Some(NOW + 60_000));
    assert_eq!(s.windows[1].family, "codex_spark");
    assert_eq!(s.windows[1].window_minutes, Some(300));
    assert_eq!(s.windows[1].label.as_deref(), Some("GPT Spark"));
    assert_eq!(s.credits.as_ref().unwrap().balance.as_deref(), Some("3"));
}

#[test]
fn other_events_and_junk_are_not_rate_limits() {
    assert_eq!(
        from_event(r#"{"type":"response.output_text.delta","delta":"hi"}"#, NOW),
        None
    );
    assert_eq!(from_event("codex.rate_limits {not json", NOW), None);
    assert_eq!(
        from_event(r#"{"type":"x","note":"codex.rate_limits"}"#, NOW),
        None
    );
    assert_eq!(from_event(r#"{"type":"codex.rate_limits"}"#, NOW), None);
    assert_eq!(from_event("[DONE]", NOW), None);
    // A text delta that merely mentions the event name is still not an event.
    assert_eq!(
        from_event(
            r#"{"type":"response.output_text.delta","delta":"codex.rate_limits"}"#,
            NOW
        ),
        None
    );
}

#[test]
fn limit_reached_alone_is_information() {
    let s = from_event(
        r#"{"type":"codex.rate_limits","rate_limits":{"allowed":false,"limit_reached":true}}"#,
        NOW,
    )
    .unwrap();
    assert!(s.windows.is_empty());
    assert_eq!(s.limit_reached, Some(true));
}

#[test]
fn a_passed_reset_means_the_window_is_empty_again() {
    let s = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "100"),
            ("x-codex-primary-reset-at", "1800000060"),
        ]),
        NOW,
    )
    .unwrap();
    assert_eq!(s.spent_until_ms(NOW), Some(1_800_000_060_000));
    assert_eq!(s.fullness(NOW).unwrap().used_percent, 100.0);
    let later = 1_800_000_060_000;
    assert_eq!(s.fullness(later).unwrap().used_percent, 0.0);
    assert_eq!(s.spent_until_ms(later), None);
    assert_eq!(s.next_reset_ms(later), None);
    assert_eq!(s.windows[0].reset_in_secs(later + 5_000), Some(0));
}

#[test]
fn spent_without_reset_time_is_spent_indefinitely() {
    let s = from_headers(h(&[("x-codex-primary-used-percent", "100")]), NOW).unwrap();
    assert_eq!(s.spent_until_ms(NOW), Some(i64::MAX));
}

#[test]
fn merge_replaces_reported_families_and_keeps_others() {
    let mut a = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "10"),
            ("x-codex-secondary-used-percent", "20"),
            ("x-codex-spark-primary-used-percent", "30"),
            ("x-codex-credits-has-credits", "false"),
            ("x-codex-credits-unlimited", "false"),
        ]),
        NOW,
    )
    .unwrap();
    let b = from_event(
        r#"{"type":"codex.rate_limits","plan_type":"plus","rate_limits":{"primary":{"used_percent":11}}}"#,
        NOW + 1,
    )
    .unwrap();
    a.merge(b);
    let got: Vec<_> = a
        .windows
        .iter()
        .map(|w| (w.family.as_str(), w.slot.as_str(), w.used_percent))
        .collect();
    assert_eq!(
        got,
        [("codex", "primary", 11.0), ("codex_spark", "primary", 30.0)]
    );
    assert!(
        a.credits.is_some(),
        "credits kept when the newer one has none"
    );
    assert_eq!(a.plan_type.as_deref(), Some("plus"));
    assert_eq!(a.seen_at_ms, NOW + 1);
    assert_eq!(a.source, UsageSource::Event);
}

#[test]
fn snapshot_round_trips_in_camel_case() {
    let s = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "42"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", "1800000600"),
        ]),
        NOW,
    )
    .unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"windows":[{"family":"codex","slot":"primary","usedPercent":42.0,
            "windowMinutes":300,"resetsAtMs":1_800_000_600_000_i64}],
            "seenAtMs":NOW,"source":"headers"})
    );
    let back: UsageSnapshot = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

#[test]
fn window_spans_read_naturally() {
    assert_eq!(window_span(300), "5h");
    assert_eq!(window_span(10080), "weekly");
    assert_eq!(window_span(1440), "1d");
    assert_eq!(window_span(45), "45m");
    assert_eq!(window_span(43200), "30d");
}

#[test]
fn odd_header_names_never_panic() {
    let s = from_headers(
        vec![("xé-codex", "1"), ("x", "1"), ("X-", "2"), ("é", "3")],
        NOW,
    );
    assert_eq!(s, None);
    assert_eq!(from_event("", NOW), None);
}

#[test]
fn absurd_reset_values_saturate_instead_of_overflowing() {
    // Found by the usage_headers fuzz target: a reset-at beyond i64 used to overflow.
    let s = from_headers(
        h(&[
            ("x-codex-primary-used-percent", "1"),
            ("x-codex-primary-reset-at", "99999999999999999999"),
            ("x-codex-secondary-used-percent", "2"),
            ("x-codex-secondary-reset-after-seconds", "1e300"),
        ]),
        NOW,
    )
    .expect("windows");
    for w in &s.windows {
        let secs = w.reset_in_secs(NOW).expect("a reset time");
        assert!(secs > 0, "{w:?}");
        assert!(w.resets_at_ms.is_some_and(|r| r > NOW), "{w:?}");
    }
    assert_eq!(s.windows[0].reset_in_secs(i64::MIN), Some(i64::MAX / 1000));
}
