//! Live usage end to end: the mock upstream sends rate-limit headers and `codex.rate_limits`
//! stream events; the real `cao gateway start` tracks them per account, persists them, and reports
//! them on /status, /metrics, / and in `cao status` (also with the real Codex). Routing by usage
//! (`--strategy`, `--switch-at`) and doctor's thresholds are in [`super::usage_routing`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;

use cao::mock::{AccountFaults, MockUpstream, Scenario};
use common::gateway::{GatewayProc, cao_command, eventually, model_call, send, status_file};
use common::{TestEnv, now_secs};
use serde_json::{Value, json};

pub(crate) fn accounts(n: usize) -> TestEnv {
    let env = TestEnv::new();
    for i in 1..=n {
        env.add_logged_in(&format!("a{i}"), &format!("acc-{i}"), now_secs() + 3600);
    }
    env
}

pub(crate) fn headers(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub(crate) fn gw(env: &TestEnv, m: &MockUpstream, extra: &[&str]) -> GatewayProc {
    let base = m.base_url();
    let token = m.token_url();
    let mut args = vec!["--base-url", &base, "--token-url", &token];
    args.extend_from_slice(extra);
    GatewayProc::start(env, &args)
}

/// `GET /status` as JSON, checked to be exactly what the one wire type
/// (`cao::wire::Status`) reads and writes back: no field the clients would miss.
pub(crate) async fn status_json(g: &GatewayProc) -> Value {
    let a = send("GET", &format!("{}/status", g.url), &[], b"").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let typed: cao::wire::Status = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        serde_json::to_value(&typed).unwrap(),
        a.json(),
        "{}",
        a.body
    );
    a.json()
}

pub(crate) fn account<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {status}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_and_stream_events_are_tracked_reported_and_persisted() {
    let env = accounts(2);
    let reset = now_secs() + 7380;
    let faults = AccountFaults {
        headers: headers(&[
            ("x-codex-primary-used-percent", "40".into()),
            ("x-codex-primary-window-minutes", "300".into()),
            ("x-codex-primary-reset-at", reset.to_string()),
            ("x-codex-credits-has-credits", "true".into()),
            ("x-codex-credits-unlimited", "false".into()),
            ("x-codex-credits-balance", "7".into()),
        ]),
        rate_limit_event: Some(json!({"type": "codex.rate_limits", "plan_type": "plus",
            "rate_limits": {"allowed": true, "limit_reached": false,
              "primary": {"used_percent": 42.0, "window_minutes": 300, "reset_at": reset},
              "secondary": {"used_percent": 12.0, "window_minutes": 10080, "reset_after_seconds": 400000}}})),
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

    let a = model_call(&g.url, Some("s1")).await;
    assert_eq!(a.status, 200);
    // The event reaches the client untouched, before the end of the turn.
    let ev = a
        .body
        .find("event: codex.rate_limits")
        .expect("event forwarded");
    assert!(ev < a.body.find("response.completed").unwrap());
    assert_eq!(a.headers["x-codex-primary-used-percent"], "40");

    let st = status_json(&g).await;
    let a1 = account(&st, "a1");
    assert_eq!(a1["state"], "ready");
    assert_eq!(a1["isDefault"], true);
    assert_eq!(a1["usedPercent"], 42.0, "{a1}");
    let w = &a1["usage"]["windows"];
    assert_eq!(w[0]["slot"], "primary");
    assert_eq!(w[0]["usedPercent"], 42.0);
    assert_eq!(w[0]["resetsAtMs"], reset * 1000);
    assert_eq!(w[1]["windowMinutes"], 10080);
    assert_eq!(
        a1["usage"]["credits"]["balance"], "7",
        "credits kept from headers"
    );
    assert_eq!(a1["usage"]["source"], "event");
    assert_eq!(account(&st, "a2")["usage"], Value::Null);
    assert_eq!(st["strategy"], "fill-first");
    assert_eq!(st["switchAt"], 98.0);
    assert_eq!(st["affinityCount"], 1);
    assert_eq!(a1["sessions"], 1);
    assert_eq!(account(&st, "a2")["sessions"], 0);

    let metrics = send("GET", &format!("{}/metrics", g.url), &[], b"").await;
    assert_eq!(metrics.status, 200);
    for want in [
        "cao_gateway_usage_percent{account=\"a1\",family=\"codex\",slot=\"primary\"} 42.0",
        "cao_gateway_usage_percent{account=\"a1\",family=\"codex\",slot=\"secondary\"} 12.0",
        "cao_gateway_requests_total{account=\"a1\",status=\"200\"} 1",
        "cao_gateway_accounts_cooling 0",
        "cao_gateway_request_duration_seconds_bucket",
    ] {
        assert!(
            metrics.body.contains(want),
            "no {want:?} in\n{}",
            metrics.body
        );
    }

    let page = send("GET", &format!("{}/", g.url), &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("<title>cao gateway</title>"));
    assert!(
        m.requests()
            .iter()
            .all(|r| r.path != "/" && r.path != "/status")
    );

    // Persisted (batched, about once a second) so `cao status` shows it without a gateway.
    assert!(
        eventually(
            10,
            || status_file(&env)["statuses"]["a1"]["usage"]["windows"][0]["usedPercent"] == 42.0
        ),
        "usage not persisted: {}",
        status_file(&env)
    );
    assert!(g.stop().success());

    let out = cao_command(&env)
        .args(["status", "--compact"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("usage: 5h 42% (2h 3m), weekly 12%")
            || text.contains("usage: 5h 42% (2h 2m), weekly 12%"),
        "{text}"
    );
    let out = cao_command(&env)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    assert!(text.contains("\"resetsInSeconds\""), "{text}");
    assert!(text.contains("\"name\":\"weekly\""), "{text}");
    let out = cao_command(&env)
        .args(["status", "--full"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("42%  resets in 2h"), "{text}");
    let out = cao_command(&env)
        .args(["status", "--report"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("## Usage\n\n- a1: 5h 42% (2h "), "{text}");
}

/// Run `cao status --watch --interval 1` until its output contains every `want` (or 20 s pass),
/// then stop it. Returns what it printed.
fn watch_until(env: &TestEnv, want: &[&str]) -> String {
    common::gateway::watch_until(cao_command(env), want)
}

#[tokio::test(flavor = "multi_thread")]
async fn status_watch_redraws_from_the_running_gateway_else_from_files() {
    let env = accounts(2);
    let faults = AccountFaults {
        headers: headers(&[
            ("x-codex-primary-used-percent", "63".into()),
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
    let g = gw(&env, &m, &["--strategy", "least-used"]);
    // Point the saved config at this gateway's port so `cao status` finds it.
    let port: u16 = g.url.rsplit(':').next().unwrap().parse().unwrap();
    std::fs::write(
        env.data_dir().join("gateway.json"),
        json!({"port": port}).to_string(),
    )
    .unwrap();
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);

    let gateway_line = format!("Gateway {} · least-used · switch at 98%", g.url);
    let out = watch_until(&env, &[&gateway_line, "63%", "last decision: least-used"]);
    assert!(out.contains(&gateway_line), "{out}");
    assert!(out.contains("63%"), "live usage drawn: {out}");
    assert!(out.contains("last decision: least-used -> a1"), "{out}");
    assert!(g.stop().success());

    // Without a gateway: the dashboard from files (usage was persisted), no gateway footer.
    let out = watch_until(&env, &["63%", "every 1s · q or Ctrl-C quits"]);
    assert!(out.contains("63%"), "{out}");
    assert!(!out.contains("Gateway http"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_switch_is_counted_and_explained_in_the_live_view() {
    let env = accounts(2);
    let m = MockUpstream::spawn(
        "127.0.0.1",
        0,
        Scenario::default().with_account("acc-1", AccountFaults::spent(3600)),
    )
    .await
    .unwrap();
    let g = gw(&env, &m, &[]);
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);
    let st = status_json(&g).await;
    assert_eq!(st["switches"], 1);
    let sw = &st["recentSwitches"][0];
    assert_eq!(
        (sw["from"].as_str(), sw["to"].as_str()),
        (Some("a1"), Some("a2"))
    );
    assert_eq!(sw["reason"], "usage limit reached");
    assert_eq!(account(&st, "a1")["state"], "cooling");
    assert!(account(&st, "a1")["cooldownUntilMs"].as_i64().unwrap() > now_secs() * 1000);
    let d = &st["lastDecision"];
    assert_eq!(d["account"], "a2");
    assert_eq!(d["skipped"][0]["reason"], "tried");
    let metrics = send("GET", &format!("{}/metrics", g.url), &[], b"").await;
    for want in [
        "cao_gateway_switches_total{from=\"a1\",to=\"a2\"} 1",
        "cao_gateway_accounts_cooling 1",
        "cao_gateway_requests_total{account=\"a2\",status=\"200\"} 1",
    ] {
        assert!(
            metrics.body.contains(want),
            "no {want:?} in\n{}",
            metrics.body
        );
    }
    assert!(g.stop().success());
}

/// The real Codex CLI streams a turn through the gateway while upstream reports usage in
/// headers and a mid-stream `codex.rate_limits` event: the turn is unaffected and the gateway
/// learns the usage.
#[tokio::test(flavor = "multi_thread")]
async fn real_codex_turn_with_rate_limit_headers_and_events() {
    let Some(bin) = common::real_codex() else {
        return;
    };
    let env = accounts(2);
    let faults = AccountFaults {
        headers: headers(&[
            ("x-codex-primary-used-percent", "55".into()),
            ("x-codex-primary-window-minutes", "300".into()),
            ("x-codex-primary-reset-at", (now_secs() + 3000).to_string()),
        ]),
        rate_limit_event: Some(json!({"type": "codex.rate_limits", "plan_type": "plus",
            "rate_limits": {"allowed": true, "limit_reached": false,
              "primary": {"used_percent": 56.0, "window_minutes": 300, "reset_after_seconds": 3000}}})),
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
    let home = env.dir.path().join("codex-home");
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let auth = common::auth_json("client-own-account", "me@example.com", now_secs() + 3600);
    std::fs::write(home.join("auth.json"), auth.to_string()).unwrap();
    std::fs::write(
        home.join("config.toml"),
        "cli_auth_credentials_store = \"file\"\nforced_login_method = \"chatgpt\"\n",
    )
    .unwrap();
    let (url, token) = (g.url.clone(), m.token_url());
    let out = tokio::task::spawn_blocking(move || {
        let provider = format!(
            "model_providers.cao={{name=\"cao\",base_url=\"{url}\",wire_api=\"responses\",requires_openai_auth=true}}"
        );
        std::process::Command::new(bin)
            .args(["-c", "model_provider=cao", "-c", &provider])
            .args(["-c", &format!("chatgpt_base_url={url}")])
            .args(["exec", "--skip-git-repo-check", "say hello"])
            .current_dir(&work)
            .env("CODEX_HOME", &home)
            .env("HOME", &home)
            .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", &token)
            .env("CODEX_REVOKE_TOKEN_URL_OVERRIDE", &token)
            .env_remove("OPENAI_API_KEY")
            .env_remove("CODEX_API_KEY")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "codex failed: {stdout}\n{stderr}\n{}",
        g.log()
    );
    assert!(
        stdout.contains("Mock reply from acc-1."),
        "{stdout}\n{stderr}"
    );
    let st = status_json(&g).await;
    assert_eq!(account(&st, "a1")["usedPercent"], 56.0, "{st}");
    assert!(g.stop().success());
}
