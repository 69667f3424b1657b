//! Routing by live usage through the real `cao gateway start`: `--switch-at` (a full account keeps
//! its sessions, takes no new ones), each `--strategy`, and doctor's threshold warnings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::usage::{account, accounts, gw, headers, status_json};

use cao::mock::{AccountFaults, MockUpstream, Scenario};
use common::gateway::{cao_command, model_call, status_file};
use common::{TestEnv, now_secs};
use serde_json::{Value, json};

/// Seed account_status.json with a main-window usage for `name`.
fn seed_usage(env: &TestEnv, name: &str, used: f64) {
    let mut f = status_file(env);
    if f.is_null() {
        f = json!({"statuses": {}});
    }
    f["statuses"][name] = json!({"usage": {
        "windows": [{"family": "codex", "slot": "primary", "usedPercent": used,
                     "windowMinutes": 300, "resetsAtMs": (now_secs() + 3600) * 1000}],
        "seenAtMs": now_secs() * 1000, "source": "headers"}});
    std::fs::write(
        env.data_dir().join("account_status.json"),
        serde_json::to_string_pretty(&f).unwrap(),
    )
    .unwrap();
}

/// Which account served each model call, in order.
fn served(m: &MockUpstream) -> Vec<String> {
    m.requests()
        .iter()
        .filter(|r| r.is_model_call() && r.status == 200)
        .map(|r| r.account().unwrap_or("-").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_account_keeps_its_sessions_but_gets_no_new_ones() {
    let env = accounts(2);
    seed_usage(&env, "a1", 97.0);
    let faults = AccountFaults {
        headers: headers(&[
            ("x-codex-primary-used-percent", "99".into()),
            ("x-codex-primary-window-minutes", "300".into()),
        ]),
        ..Default::default()
    };
    let m = MockUpstream::spawn(
        "127.0.0.1",
        0,
        Scenario::default().with_account("acc-1", faults),
    )
    .await
    .unwrap();
    let g = gw(&env, &m, &[]);

    // 97 % is below the default 98: the new session goes to a1, which then reports 99 %.
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);
    // s1 stays on a1 (its prompt cache lives there); the new session s2 goes to a2.
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);
    assert_eq!(model_call(&g.url, Some("s2")).await.status, 200);
    assert_eq!(model_call(&g.url, None).await.status, 200);
    assert_eq!(served(&m), ["acc-1", "acc-1", "acc-2", "acc-2"]);

    let st = status_json(&g).await;
    assert_eq!(account(&st, "a1")["state"], "full");
    let d = &st["lastDecision"];
    assert_eq!(d["account"], "a2");
    assert_eq!(d["skipped"][0]["account"], "a1");
    assert_eq!(d["skipped"][0]["reason"], "aboveSwitchAt");
    assert!(
        d["summary"].as_str().unwrap().contains("a1 5h at 99%"),
        "{d}"
    );
    assert!(g.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn switch_at_is_configurable_and_saved() {
    let env = accounts(2);
    seed_usage(&env, "a1", 60.0);
    let m = MockUpstream::spawn("127.0.0.1", 0, Scenario::default())
        .await
        .unwrap();
    let g = gw(&env, &m, &["--switch-at", "50", "--save"]);
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);
    assert_eq!(served(&m), ["acc-2"]);
    assert_eq!(status_json(&g).await["switchAt"], 50.0);
    assert!(g.stop().success());
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(env.data_dir().join("gateway.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["switchAt"], 50.0);

    let bad = cao_command(&env)
        .args(["gateway", "start", "--port", "0", "--switch-at", "150"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("switch"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn least_used_picks_the_emptiest_account() {
    let env = accounts(3);
    seed_usage(&env, "a1", 80.0);
    seed_usage(&env, "a2", 10.0);
    seed_usage(&env, "a3", 30.0);
    let m = MockUpstream::spawn("127.0.0.1", 0, Scenario::default())
        .await
        .unwrap();
    let g = gw(&env, &m, &["--strategy", "least-used"]);
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);
    assert_eq!(model_call(&g.url, Some("s2")).await.status, 200);
    assert_eq!(served(&m), ["acc-2", "acc-2"]);
    let st = status_json(&g).await;
    assert_eq!(st["strategy"], "least-used");
    assert_eq!(st["lastDecision"]["reason"], "least used (5h at 10%)");
    assert!(g.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn round_robin_spreads_new_sessions_and_soonest_reset_uses_expiring_quota() {
    let env = accounts(3);
    let m = MockUpstream::spawn("127.0.0.1", 0, Scenario::default())
        .await
        .unwrap();
    let g = gw(&env, &m, &["--strategy", "round-robin"]);
    for s in ["s1", "s2", "s3", "s4"] {
        assert_eq!(model_call(&g.url, Some(s)).await.status, 200);
    }
    // A known session stays put whatever the rotation says.
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);
    assert_eq!(served(&m), ["acc-1", "acc-2", "acc-3", "acc-1", "acc-1"]);
    assert!(g.stop().success());

    m.clear_requests();
    let mut f = json!({"statuses": {}});
    for (name, reset_s) in [("a1", 9000), ("a2", 600), ("a3", 3000)] {
        f["statuses"][name] = json!({"usage": {"windows": [{"family": "codex", "slot": "primary",
            "usedPercent": 50.0, "windowMinutes": 300, "resetsAtMs": (now_secs() + reset_s) * 1000}],
            "seenAtMs": now_secs() * 1000, "source": "headers"}});
    }
    std::fs::write(env.data_dir().join("account_status.json"), f.to_string()).unwrap();
    let g = gw(&env, &m, &["--strategy", "soonest-reset"]);
    assert_eq!(model_call(&g.url, Some("t1")).await.status, 200);
    assert_eq!(served(&m), ["acc-2"]);
    assert!(g.stop().success());
}

#[test]
fn doctor_warns_above_the_threshold_and_errors_when_every_account_is_spent() {
    let env = TestEnv::new();
    // Tokens valid for long enough not to raise token_expiring_soon.
    env.add_logged_in("a1", "acc-1", now_secs() + 90 * 24 * 3600);
    env.add_logged_in("a2", "acc-2", now_secs() + 90 * 24 * 3600);
    seed_usage(&env, "a1", 99.0);
    let out = cao_command(&env)
        .args(["status", "--doctor"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("usage_high"), "{text}");
    assert!(text.contains("5h window at 99%"), "{text}");
    assert!(!text.contains("all_spent"), "{text}");

    // a2 spent too (100 %, resets in about 10 minutes): every account is spent.
    let mut f = status_file(&env);
    f["statuses"]["a2"] = json!({"usage": {"windows": [{"family": "codex", "slot": "primary",
        "usedPercent": 100.0, "windowMinutes": 300, "resetsAtMs": (now_secs() + 600) * 1000}],
        "seenAtMs": now_secs() * 1000, "source": "event"}});
    std::fs::write(env.data_dir().join("account_status.json"), f.to_string()).unwrap();
    // a1 is cooling after a usage limit.
    let mut f = status_file(&env);
    f["statuses"]["a1"]["cooldownUntilMs"] = json!((now_secs() + 3600) * 1000);
    std::fs::write(env.data_dir().join("account_status.json"), f.to_string()).unwrap();
    let out = cao_command(&env)
        .args(["status", "--doctor", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("\"all_spent\""), "{text}");
    assert!(text.contains("the first to reset is a2, in "), "{text}");
}

#[test]
fn doctor_uses_the_saved_switch_threshold_and_counts_quota_cooldowns_as_spent() {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", now_secs() + 90 * 24 * 3600);
    env.add_logged_in("a2", "acc-2", now_secs() + 90 * 24 * 3600);
    seed_usage(&env, "a1", 93.0);
    // At the default threshold (98 %) 93 % is fine.
    let out = cao_command(&env)
        .args(["status", "--doctor"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The gateway saved --switch-at 90: doctor warns where the gateway stops routing.
    std::fs::write(
        env.data_dir().join("gateway.json"),
        json!({"switchAt": 90}).to_string(),
    )
    .unwrap();
    let out = cao_command(&env)
        .args(["status", "--doctor"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("(switch at 90%)"), "{text}");

    // Both accounts cooling after a usage-limit hit, recorded the way `cao run` and the
    // TypeScript tool record it (no usage snapshot): every account is spent.
    let now_ms = common::now_ms();
    let quota = |until_ms: i64| {
        json!({"lastAttemptAtMs": now_ms - 1000, "lastQuotaAtMs": now_ms - 1000,
               "cooldownUntilMs": until_ms, "consecutiveFailures": 1,
               "lastError": "usage_limit_reached"})
    };
    std::fs::write(
        env.data_dir().join("account_status.json"),
        json!({"statuses": {"a1": quota(now_ms + 7_200_000), "a2": quota(now_ms + 1_230_000)}})
            .to_string(),
    )
    .unwrap();
    let out = cao_command(&env)
        .args(["status", "--doctor"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("all_spent"), "{text}");
    // 20m 30s ahead: "20m" however long the machine takes to get here (under 30 s).
    assert!(text.contains("the first to reset is a2, in 20m"), "{text}");
}
