//! Usage of idle accounts (issue 14): `cao status --refresh` asks the mock's usage endpoint about
//! every account without a gateway; a gateway with `--usage-poll` fills in idle accounts and polls
//! each at most once per interval (backing off after a 401); through the gateway, Codex's own
//! `GET /backend-api/wham/usage` describes the pool, not the client's spent account; the pool
//! forecast of a synthetic usage series shows in `cao status`; `--usage-poll 0` turns polling
//! off (with shared state only the leader polls: tests/it/replicas.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::usage::accounts;

use cao::mock::{AccountFaults, MockUpstream, QuotaFault, Scenario, UsageFault};
use common::gateway::{eventually, eventually_async, get, gw, mock, model_call, status_file};
use common::{TestEnv, now_secs};
use serde_json::{Value, json};

pub(crate) fn usage(primary: i64, secondary: i64) -> AccountFaults {
    AccountFaults {
        usage: Some(UsageFault {
            primary_used_percent: Some(primary),
            secondary_used_percent: Some(secondary),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn failing_usage(f: UsageFault) -> AccountFaults {
    AccountFaults {
        usage: Some(f),
        ..Default::default()
    }
}

/// Usage-endpoint calls the mock answered: (account, status, ms since the mock started).
pub(crate) fn usage_calls(m: &MockUpstream) -> Vec<(String, u16, u64)> {
    m.requests()
        .iter()
        .filter(|r| r.path.ends_with("/wham/usage"))
        .map(|r| (r.account().unwrap_or("-").to_string(), r.status, r.at_ms))
        .collect()
}

/// Point `status --refresh`'s token refreshes at the mock (never the real token endpoint).
pub(crate) fn save_token_url(env: &TestEnv, m: &MockUpstream) {
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::fs::write(
        env.data_dir().join("gateway.json"),
        json!({"tokenUrl": m.token_url()}).to_string(),
    )
    .unwrap();
}

pub(crate) fn main_window(record: &Value, slot: &str) -> Option<f64> {
    record["usage"]["windows"]
        .as_array()?
        .iter()
        .find(|w| w["family"] == "codex" && w["slot"] == slot)
        .and_then(|w| w["usedPercent"].as_f64())
}

#[tokio::test(flavor = "multi_thread")]
async fn status_refresh_asks_every_account_without_a_gateway_and_says_why_one_failed() {
    let env = accounts(3);
    let m = mock(
        Scenario::default()
            .with_account("acc-1", usage(42, 7))
            .with_account(
                "acc-2",
                failing_usage(UsageFault {
                    status: Some(401),
                    ..Default::default()
                }),
            )
            .with_account(
                "acc-3",
                failing_usage(UsageFault {
                    deactivated: true,
                    ..Default::default()
                }),
            ),
    )
    .await;
    save_token_url(&env, &m);
    let out = env
        .cao()
        .args(["status", "--refresh", "--base-url", &m.base_url(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records.len(), 3, "every account is still shown");
    assert_eq!(main_window(&records[0], "primary"), Some(42.0));
    assert_eq!(main_window(&records[0], "secondary"), Some(7.0));
    assert_eq!(records[0]["usage"]["source"], "endpoint");
    assert!(records[1]["usage"].is_null() && records[2]["usage"].is_null());
    assert!(
        stderr.contains("could not refresh the usage of a2: the usage endpoint refused the credentials (HTTP 401)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("could not refresh the usage of a3: the account is deactivated"),
        "{stderr}"
    );
    assert!(
        stderr.contains("usage refreshed for 1 of 3 account(s)"),
        "{stderr}"
    );
    // The 401 was retried once after a token refresh (through the mock's token endpoint).
    assert_eq!(m.refresh_count("acc-2"), 1);
    let calls = usage_calls(&m);
    for acc in ["acc-1", "acc-3"] {
        assert_eq!(calls.iter().filter(|c| c.0 == acc).count(), 1, "{calls:?}");
    }
    assert_eq!(
        calls.iter().filter(|c| c.0 == "acc-2").count(),
        2,
        "{calls:?}"
    );
    for r in m
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/wham/usage"))
    {
        assert_eq!(r.path, "/backend-api/wham/usage");
        assert_eq!(r.bearer_account, r.header_account, "{r:?}");
    }
    // Stored: the next plain `cao status` shows it without asking again.
    let f = status_file(&env);
    assert_eq!(f["statuses"]["a1"]["usage"]["source"], "endpoint");
    let compact = env.cao().args(["status", "--compact"]).output().unwrap();
    let text = String::from_utf8_lossy(&compact.stdout);
    assert!(text.contains("usage: 5h 42%"), "{text}");
    assert!(text.contains("weekly 7%"), "{text}");
    assert_eq!(usage_calls(&m).len(), 4, "plain status asks nothing");
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_never_seen_accounts_as_information_only() {
    let env = TestEnv::new();
    for i in 1..=2 {
        env.add_logged_in(
            &format!("a{i}"),
            &format!("acc-{i}"),
            now_secs() + 3 * 86_400,
        );
    }
    let out = env
        .cao()
        .args(["status", "--doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "information does not fail doctor"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let unknown: Vec<&Value> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["code"] == "usage_unknown")
        .collect();
    assert_eq!(unknown.len(), 2, "{v}");
    assert_eq!(unknown[0]["severity"], "info");
    assert_eq!(v["totals"]["ok"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_polls_idle_accounts_at_most_once_per_interval_and_backs_off_after_401() {
    let env = accounts(3);
    let m = mock(
        Scenario::default()
            .with_account("acc-1", usage(10, 1))
            .with_account("acc-2", usage(20, 2))
            .with_account(
                "acc-3",
                failing_usage(UsageFault {
                    status: Some(401),
                    ..Default::default()
                }),
            ),
    )
    .await;
    let g = gw(&env, &m, &["--usage-poll", "1"]);
    let log = g.log_when(|l| l.contains("warning: --usage-poll 1"));
    assert!(log.contains("warning: --usage-poll 1"), "{log}");
    let filled = eventually(15, || {
        let f = status_file(&env);
        main_window(&f["statuses"]["a1"], "primary") == Some(10.0)
            && main_window(&f["statuses"]["a2"], "primary") == Some(20.0)
    });
    assert!(filled, "idle accounts filled in: {}", status_file(&env));
    // Wait until every account was polled twice (acc-3: its 401, then the 401 after the
    // refresh), then look at every poll the mock saw.
    let polled_twice = |acc: &str| usage_calls(&m).iter().filter(|c| c.0 == acc).count() >= 2;
    assert!(
        eventually(20, || ["acc-1", "acc-2", "acc-3"]
            .iter()
            .all(|a| polled_twice(a))),
        "{:?}",
        usage_calls(&m)
    );
    let calls = usage_calls(&m);
    for acc in ["acc-1", "acc-2"] {
        let at: Vec<u64> = calls.iter().filter(|c| c.0 == acc).map(|c| c.2).collect();
        assert!(
            at.len() >= 2,
            "{acc} polled again after an interval: {calls:?}"
        );
        for pair in at.windows(2) {
            // One interval (1 s) at least between two polls of one account; 100 ms slack for
            // the trip from the gateway's clock to the mock's.
            assert!(
                pair[1] - pair[0] >= 900,
                "{acc} polled twice in one interval: {at:?}"
            );
        }
    }
    // acc-3: one poll (401, token refreshed, 401 again), then five minutes of back-off.
    let a3: Vec<&(String, u16, u64)> = calls.iter().filter(|c| c.0 == "acc-3").collect();
    assert_eq!(a3.len(), 2, "{calls:?}");
    assert!(a3.iter().all(|c| c.1 == 401));
    // Never a model call to find out.
    assert!(m.requests().iter().all(|r| !r.is_model_call()));
    // Counted once the poll's answer is handled, which may trail the mock's record of it.
    let failed_once = "cao_gateway_usage_polls_total{account=\"a3\",result=\"failed\"} 1";
    let url = g.url.as_str();
    eventually_async(10, || async move {
        get(url, "/metrics", &[]).await.body.contains(failed_once)
    })
    .await;
    let metrics = get(&g.url, "/metrics", &[]).await.body;
    assert!(metrics.contains(failed_once), "{metrics}");
    g.stop();
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_sees_the_pool_while_its_own_account_is_spent() {
    let env = accounts(2);
    // Spent: model calls get 429, and the usage endpoint says 100 % until the same reset.
    let spent = |secs| AccountFaults {
        quota: Some(QuotaFault {
            resets_in_seconds: Some(secs),
            ..Default::default()
        }),
        usage: Some(UsageFault {
            primary_used_percent: Some(100),
            primary_reset_in_seconds: Some(secs),
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = mock(
        Scenario::default()
            .with_account("acc-1", spent(600))
            .with_account("acc-2", usage(20, 5)),
    )
    .await;
    let g = gw(&env, &m, &["--usage-poll", "0"]);
    // Codex asks with its own login: acc-1, which is spent.
    let own = common::auth_json("acc-1", "a1@example.com", now_secs() + 3600);
    let bearer = format!("Bearer {}", own["tokens"]["access_token"].as_str().unwrap());
    let codex_headers = [
        ("authorization", bearer.as_str()),
        ("chatgpt-account-id", "acc-1"),
    ];
    for path in ["/backend-api/wham/usage", "/api/codex/usage"] {
        let a = get(&g.url, path, &codex_headers).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let v = a.json();
        let limit = &v["rate_limit"];
        assert_eq!(limit["allowed"], true, "{path}: {v}");
        assert_eq!(limit["limit_reached"], false, "{path}: {v}");
        let p = &limit["primary_window"];
        assert_eq!(
            p["used_percent"], 20,
            "{path}: the next turn's account (a2): {v}"
        );
        for k in [
            "used_percent",
            "limit_window_seconds",
            "reset_after_seconds",
            "reset_at",
        ] {
            assert!(
                p[k].is_i64(),
                "{path}: {k} must be an integer for Codex: {v}"
            );
        }
        assert!(limit["secondary_window"]["used_percent"].is_i64());
    }
    // Other /wham/* calls are still forwarded upstream.
    let settings = get(&g.url, "/backend-api/wham/settings/user", &codex_headers).await;
    assert_eq!(settings.status, 200, "{}", settings.body);
    assert!(
        m.requests()
            .iter()
            .any(|r| r.path == "/backend-api/wham/settings/user")
    );
    // Once everything is spent: limit reached, with the earliest reset (acc-1's, in 10 minutes).
    m.set_faults("acc-2", spent(1200));
    let turn = model_call(&g.url, None).await;
    assert_eq!(turn.status, 429, "{}", turn.body);
    let v = get(&g.url, "/backend-api/wham/usage", &codex_headers)
        .await
        .json();
    assert_eq!(v["rate_limit"]["limit_reached"], true, "{v}");
    assert_eq!(v["rate_limit"]["allowed"], false, "{v}");
    let reset = v["rate_limit"]["primary_window"]["reset_at"]
        .as_i64()
        .unwrap();
    assert!((reset - (now_secs() + 600)).abs() <= 5, "{v}");
    common::gateway::assert_no_mismatch(&m);
    g.stop();
    m.shutdown().await;
}

#[test]
fn the_pool_forecast_of_a_synthetic_series_shows_in_status() {
    let env = accounts(3);
    let now = now_secs() * 1000;
    const MIN: i64 = 60_000;
    // Each account: 5-hour window, a series over the last hour, weekly 50/30/43 % (mean 41 %).
    let account = |points: &[(i64, f64)], weekly: f64| {
        let (_, used) = points[points.len() - 1];
        json!({"usage": {
            "windows": [
                {"family": "codex", "slot": "primary", "usedPercent": used,
                 "windowMinutes": 300, "resetsAtMs": now + 290 * MIN},
                {"family": "codex", "slot": "secondary", "usedPercent": weekly,
                 "windowMinutes": 10080, "resetsAtMs": now + 3 * 24 * 60 * MIN}],
            "seenAtMs": now, "source": "endpoint",
            "history": [{"family": "codex", "slot": "primary", "samples": points.iter()
                .map(|(ago, u)| json!({"atMs": now - ago * MIN, "usedPercent": u}))
                .collect::<Vec<_>>()}]}})
    };
    // a1: 30 -> 60 % in 45 minutes (40/h); a2: 15 -> 30 % (20/h); a3 idle at 0.
    // Room 40 + 70 + 100 = 210 points at 60 points an hour: 3h 30m.
    let file = json!({"statuses": {
        "a1": account(&[(45, 30.0), (15, 50.0), (0, 60.0)], 50.0),
        "a2": account(&[(45, 15.0), (0, 30.0)], 30.0),
        "a3": account(&[(30, 0.0), (0, 0.0)], 43.0),
    }});
    std::fs::write(
        env.data_dir().join("account_status.json"),
        serde_json::to_string_pretty(&file).unwrap(),
    )
    .unwrap();
    for view in ["--compact", "--full", "--pretty"] {
        let out = env.cao().args(["status", view]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("pool: about 3h 30m left at the last hour's pace; weekly 41 % used"),
            "{view}: {text}"
        );
    }
    let full = env.cao().args(["status", "--full"]).output().unwrap();
    let text = String::from_utf8_lossy(&full.stdout);
    // a1 runs out in an hour at 40 %/h, before its reset.
    assert!(text.contains("out in 1h at this pace"), "{text}");
    let json = env.cao().args(["status", "--json"]).output().unwrap();
    let records: Vec<Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(records[0]["usage"]["windows"][0]["pacePerHour"], 40.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_poll_0_turns_polling_off_and_save_keeps_the_interval() {
    let env = accounts(2);
    let m = mock(Scenario::default().with_account("acc-1", usage(10, 1))).await;
    let g = gw(&env, &m, &["--usage-poll", "0", "--save"]);
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(env.data_dir().join("gateway.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["usagePollSeconds"], 0, "{saved}");
    // A gateway polling every second would have asked about both idle accounts by now.
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    assert!(usage_calls(&m).is_empty(), "{:?}", usage_calls(&m));
    assert!(!g.log().contains("warning: --usage-poll"), "{}", g.log());
    drop(g);
    // The saved interval is what the next start uses.
    let g = gw(&env, &m, &[]);
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert!(usage_calls(&m).is_empty(), "{:?}", usage_calls(&m));
    drop(g);
}
