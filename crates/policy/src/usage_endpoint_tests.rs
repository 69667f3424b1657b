use super::*;
use crate::usage::{from_headers, newest_wins};

const NOW: i64 = 1_800_000_000_000;
const NOW_S: i64 = NOW / 1000;

fn real_answer() -> String {
    json!({
        "plan_type": "plus",
        "rate_limit": {"allowed": true, "limit_reached": false,
            "primary_window": {"used_percent": 42, "limit_window_seconds": 18000,
                               "reset_after_seconds": 120, "reset_at": NOW_S + 120},
            "secondary_window": {"used_percent": 7, "limit_window_seconds": 604800,
                                 "reset_after_seconds": 3600, "reset_at": NOW_S + 3600}},
        "credits": {"has_credits": true, "unlimited": false, "balance": "9.99"},
        "additional_rate_limits": [{"limit_name": "GPT-5.3-Codex-Spark",
            "metered_feature": "codex_bengalfox",
            "rate_limit": {"allowed": true, "limit_reached": false,
                "primary_window": {"used_percent": 3, "limit_window_seconds": 18000,
                                   "reset_after_seconds": 60, "reset_at": NOW_S + 60}}}],
        "rate_limit_reached_type": null
    })
    .to_string()
}

#[test]
fn reads_the_endpoint_into_the_same_windows_as_the_headers() {
    let s = from_endpoint(real_answer().as_bytes(), NOW).unwrap();
    assert_eq!(s.source, UsageSource::Endpoint);
    assert_eq!(s.plan_type.as_deref(), Some("plus"));
    assert_eq!(s.limit_reached, Some(false));
    assert_eq!(
        s.credits.as_ref().and_then(|c| c.balance.as_deref()),
        Some("9.99")
    );
    let h = from_headers(
        [
            ("x-codex-primary-used-percent", "42"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", &(NOW_S + 120).to_string()[..]),
            ("x-codex-secondary-used-percent", "7"),
            ("x-codex-secondary-window-minutes", "10080"),
            (
                "x-codex-secondary-reset-at",
                &(NOW_S + 3600).to_string()[..],
            ),
        ],
        NOW,
    )
    .unwrap();
    assert_eq!(s.windows[..2], h.windows[..]);
    let spark = &s.windows[2];
    assert_eq!(spark.family, "codex_bengalfox");
    assert_eq!(spark.display_name(), "GPT-5.3-Codex-Spark 5h");
}

#[test]
fn the_newest_source_wins() {
    let endpoint = from_endpoint(real_answer().as_bytes(), NOW).unwrap();
    let older = from_headers([("x-codex-primary-used-percent", "90")], NOW - 1).unwrap();
    let newer = from_headers([("x-codex-primary-used-percent", "55")], NOW + 1).unwrap();
    let mut known = Some(endpoint);
    assert!(!newest_wins(&mut known, older));
    assert_eq!(known.as_ref().unwrap().windows[0].used_percent, 42.0);
    assert!(newest_wins(&mut known, newer));
    let k = known.unwrap();
    assert_eq!(k.windows[0].used_percent, 55.0);
    assert_eq!(k.source, UsageSource::Headers);
    assert!(
        k.windows.iter().any(|w| w.family == "codex_bengalfox"),
        "other family kept"
    );
}

#[test]
fn junk_is_an_error_or_nothing_never_a_panic() {
    assert!(matches!(
        from_endpoint(b"<html>", NOW),
        Err(EndpointError::NotJson(_))
    ));
    assert_eq!(from_endpoint(b"[1]", NOW), Err(EndpointError::NotObject));
    let s = from_endpoint(br#"{"plan_type":"free","rate_limit":null}"#, NOW).unwrap();
    assert!(s.windows.is_empty());
    let s = from_endpoint(
        br#"{"rate_limit":{"primary_window":{"used_percent":"x"},"secondary_window":7},
            "additional_rate_limits":[1,{"rate_limit":{}}],"credits":{"has_credits":1}}"#,
        NOW,
    )
    .unwrap();
    assert!(s.windows.is_empty() && s.credits.is_none());
}

#[test]
fn the_answer_for_codex_uses_integers_everywhere() {
    let mut s = from_endpoint(real_answer().as_bytes(), NOW).unwrap();
    s.windows[0].used_percent = 41.6;
    let body = endpoint_body(Some(&s), NOW);
    let p = &body["rate_limit"]["primary_window"];
    for k in [
        "used_percent",
        "limit_window_seconds",
        "reset_after_seconds",
        "reset_at",
    ] {
        assert!(p[k].is_i64(), "{k}: {}", p[k]);
    }
    assert_eq!(p["used_percent"], 42);
    assert_eq!(p["reset_at"], NOW_S + 120);
    assert_eq!(p["reset_after_seconds"], 120);
    assert_eq!(body["rate_limit"]["allowed"], true);
    assert_eq!(
        body["additional_rate_limits"][0]["metered_feature"],
        "codex_bengalfox"
    );
    // Read back, it is the same usage.
    let back = from_endpoint(body.to_string().as_bytes(), NOW).unwrap();
    assert_eq!(back.windows.len(), 3);
    assert_eq!(back.windows[0].used_percent, 42.0);
    // Nothing known: allowed, no windows.
    let none = endpoint_body(None, NOW);
    assert_eq!(none["rate_limit"]["primary_window"], Value::Null);
    assert_eq!(none["rate_limit"]["allowed"], true);
}

#[test]
fn all_spent_says_so_with_the_earliest_reset() {
    let s = from_endpoint(real_answer().as_bytes(), NOW).unwrap();
    let body = spent_body(Some(&s), Some(NOW + 600_000), NOW);
    let l = &body["rate_limit"];
    assert_eq!(l["allowed"], false);
    assert_eq!(l["limit_reached"], true);
    assert_eq!(l["primary_window"]["used_percent"], 100);
    assert_eq!(l["primary_window"]["reset_at"], NOW_S + 600);
    assert_eq!(l["primary_window"]["limit_window_seconds"], 18000);
    let unknown = spent_body(None, None, NOW);
    assert_eq!(unknown["rate_limit"]["primary_window"]["used_percent"], 100);
}

#[test]
fn the_pool_answer_shows_the_next_account_or_the_earliest_return() {
    let spent = from_headers(
        [
            ("x-codex-primary-used-percent", "100"),
            ("x-codex-primary-reset-at", &(NOW_S + 3600).to_string()[..]),
        ],
        NOW,
    )
    .unwrap();
    let low = from_headers([("x-codex-primary-used-percent", "12")], NOW).unwrap();
    let m = |name, usage, cooldown| PoolMember {
        name,
        logged_in: true,
        cooldown_until_ms: cooldown,
        usage,
    };
    // The client's own account (a) is spent; the pool still has b.
    let members = [m("a", Some(&spent), None), m("b", Some(&low), None)];
    let body = pool_body(&members, Some("b"), NOW);
    assert_eq!(body["rate_limit"]["primary_window"]["used_percent"], 12);
    assert_eq!(body["rate_limit"]["allowed"], true);
    // Even if asked about a, the answer is an account that can serve.
    assert_eq!(
        pool_body(&members, Some("a"), NOW)["rate_limit"]["allowed"],
        true
    );
    // Everyone spent or cooling: the earliest return (b's cooldown, in 10 minutes).
    let members = [
        m("a", Some(&spent), None),
        m("b", Some(&low), Some(NOW + 600_000)),
    ];
    let body = pool_body(&members, None, NOW);
    assert_eq!(body["rate_limit"]["limit_reached"], true);
    assert_eq!(
        body["rate_limit"]["primary_window"]["reset_at"],
        NOW_S + 600
    );
    // A logged-out account does not count as room.
    let mut out = m("c", None, None);
    out.logged_in = false;
    let body = pool_body(&[m("a", Some(&spent), None), out], None, NOW);
    assert_eq!(
        body["rate_limit"]["primary_window"]["reset_at"],
        NOW_S + 3600
    );
}
