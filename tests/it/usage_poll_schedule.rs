//! When the usage of idle accounts is asked for (issue 14), against the mock's recorded usage
//! calls: the gateway's poller leaves alone an account whose live traffic reported its usage
//! within the interval while it polls the idle one; its polls of several accounts are spread
//! across the interval, never two at once; `cao status --refresh` has at most 3 calls open at a
//! time and still refreshes every account. The exact offsets (spacing, jitter, due times) are
//! unit-tested in `policy::usage_poll`; these tests hold only properties that load cannot break:
//! a poll can come late, never early.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use crate::usage::accounts;
use crate::usage_poll::{main_window, save_token_url, usage, usage_calls};

use cao::mock::{AccountFaults, Scenario, UsageFault};
use common::gateway::{eventually, gw, mock, model_call, status_file};
use common::{TestEnv, now_secs};
use serde_json::json;

use crate::common;

/// Slack between the gateway's clock (when it decided) and the mock's (when the call arrived).
const SLACK_MS: u64 = 100;

/// Remember `name`'s usage as reported (by live traffic) just now, as a gateway that ran a
/// moment ago would have saved it.
fn seen_just_now(env: &TestEnv, name: &str) {
    let now_ms = now_secs() * 1000;
    let file = json!({"statuses": {name: {"usage": {
        "windows": [{"family": "codex", "slot": "primary", "usedPercent": 5.0,
                     "windowMinutes": 300, "resetsAtMs": now_ms + 3_600_000}],
        "seenAtMs": now_ms, "source": "headers"}}}});
    std::fs::write(
        env.data_dir().join("account_status.json"),
        serde_json::to_string_pretty(&file).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_poller_skips_an_account_whose_live_traffic_reported_usage_within_the_interval() {
    const INTERVAL_MS: u64 = 4_000;
    let env = accounts(2);
    // a1 (acc-1, the default) serves the traffic; its answers carry x-codex-* usage headers.
    // It reported usage a moment ago, so the poller's first call is about idle a2, and a1's
    // first poll cannot come before a1's news is one interval old.
    seen_just_now(&env, "a1");
    let live = AccountFaults {
        headers: BTreeMap::from([
            ("x-codex-primary-used-percent".to_string(), "33".to_string()),
            (
                "x-codex-primary-window-minutes".to_string(),
                "300".to_string(),
            ),
            (
                "x-codex-primary-reset-at".to_string(),
                (now_secs() + 3600).to_string(),
            ),
        ]),
        ..usage(70, 7)
    };
    let m = mock(
        Scenario::default()
            .with_account("acc-1", live)
            .with_account("acc-2", usage(20, 2)),
    )
    .await;
    let g = gw(&env, &m, &["--usage-poll", "4"]);
    assert!(
        eventually(20, || !m.usage_hits("acc-2").is_empty()),
        "idle a2 polled: {:?}",
        usage_calls(&m)
    );
    // Live traffic on a1 after a2's poll: its usage comes from the answer's headers.
    let turn = model_call(&g.url, None).await;
    assert_eq!(turn.status, 200, "{}", turn.body);
    let live_at = m
        .requests()
        .iter()
        .filter(|r| r.is_model_call())
        .map(|r| (r.account().map(str::to_string), r.at_ms))
        .next_back()
        .unwrap();
    assert_eq!(live_at.0.as_deref(), Some("acc-1"), "the default served it");
    let live_at = live_at.1;
    assert!(
        eventually(10, || {
            main_window(&status_file(&env)["statuses"]["a1"], "primary") == Some(33.0)
        }),
        "live usage recorded: {}",
        status_file(&env)
    );
    // Once the live news is an interval old, a1 is due again: wait for that poll.
    assert!(
        eventually(30, || !m.usage_hits("acc-1").is_empty()),
        "a1 polled once its news was old: {:?}",
        usage_calls(&m)
    );
    let a1_first = m.usage_hits("acc-1")[0];
    let a2 = m.usage_hits("acc-2");
    assert!(
        a1_first + SLACK_MS >= live_at + INTERVAL_MS,
        "a1 was polled {} ms after its live traffic, within the {INTERVAL_MS} ms interval: {:?}",
        a1_first as i64 - live_at as i64,
        usage_calls(&m)
    );
    assert!(
        a2[0] < a1_first,
        "idle a2 was polled while a1 was left alone: {:?}",
        usage_calls(&m)
    );
    // The poll did its work: a1's usage now comes from the endpoint.
    assert!(eventually(10, || {
        main_window(&status_file(&env)["statuses"]["a1"], "primary") == Some(70.0)
    }));
    g.stop();
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn polls_of_several_accounts_are_spread_across_the_interval() {
    // 3 accounts every 4 s: one poll every 4/3 s, 75..125 % of it with jitter, so never two
    // polls within 1 s of each other (however late a loaded machine makes them).
    const INTERVAL_MS: u64 = 4_000;
    const MIN_SPACING_MS: u64 = INTERVAL_MS * 3 / 4 / 3;
    let env = accounts(3);
    let m = mock(
        Scenario::default()
            .with_account("acc-1", usage(10, 1))
            .with_account("acc-2", usage(20, 2))
            .with_account("acc-3", usage(30, 3)),
    )
    .await;
    let g = gw(&env, &m, &["--usage-poll", "4"]);
    // Four polls: every account once, then the first one again.
    assert!(
        eventually(40, || usage_calls(&m).len() >= 4),
        "{:?}",
        usage_calls(&m)
    );
    g.stop();
    let calls = usage_calls(&m);
    assert!(calls.iter().all(|c| c.1 == 200), "{calls:?}");
    for pair in calls.windows(2) {
        assert!(
            pair[1].2 - pair[0].2 + SLACK_MS >= MIN_SPACING_MS,
            "two polls at once: {calls:?}"
        );
    }
    // The first round asks about every account once before any account a second time.
    let mut first_round: Vec<&str> = calls[..3].iter().map(|c| c.0.as_str()).collect();
    first_round.sort_unstable();
    assert_eq!(first_round, ["acc-1", "acc-2", "acc-3"], "{calls:?}");
    for acc in ["acc-1", "acc-2", "acc-3"] {
        let at = m.usage_hits(acc);
        for pair in at.windows(2) {
            assert!(
                pair[1] - pair[0] + SLACK_MS >= INTERVAL_MS,
                "{acc} polled twice in one interval: {calls:?}"
            );
        }
    }
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_refresh_asks_at_most_three_accounts_at_a_time_and_refreshes_them_all() {
    let env = accounts(6);
    // Each answer takes 1.5 s, so calls started together are all open at the mock at once.
    let slow = |used| AccountFaults {
        usage: Some(UsageFault {
            primary_used_percent: Some(used),
            delay_ms: Some(1500),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut scenario = Scenario::default();
    for i in 1..=6 {
        scenario = scenario.with_account(&format!("acc-{i}"), slow(10 * i));
    }
    let m = mock(scenario).await;
    save_token_url(&env, &m);
    let out = env
        .cao()
        .args(["status", "--refresh", "--base-url", &m.base_url(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("usage refreshed for 6 of 6 account(s)"),
        "{stderr}"
    );
    assert_eq!(
        m.usage_max_in_flight(),
        3,
        "calls open at once: {:?}",
        usage_calls(&m)
    );
    let f = status_file(&env);
    for i in 1..=6_i64 {
        assert_eq!(m.usage_hits(&format!("acc-{i}")).len(), 1, "acc-{i}");
        assert_eq!(
            main_window(&f["statuses"][format!("a{i}")], "primary"),
            Some(10.0 * i as f64),
            "a{i}: {f}"
        );
    }
    m.shutdown().await;
}
