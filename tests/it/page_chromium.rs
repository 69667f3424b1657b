//! The gateway's status page in real headless Chromium: it loads, draws every account with a
//! bar per usage window from `GET /status`, and logs nothing to the console.
//!
//! Needs Debian's `chromium` (scripts/test installs it). Without it the tests skip locally and
//! fail under CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use crate::common;
use crate::common::chromium::{chromium, dump_dom, page_gateway};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

/// Serve the real page at `/` and `status` (a fixed JSON) at `/status` on 127.0.0.1.
async fn serve(status: Value) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/", get(cao::gateway::pages::page::handler))
        .route(
            "/status",
            get(move || {
                let s = status.clone();
                async move { axum::Json(s) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://127.0.0.1:{}/", addr.port()), task)
}

fn fixture() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    json!({
        "nowMs": now,
        "strategy": "least-used",
        "switchAt": 98,
        "affinityCount": 3,
        "accounts": [
            {"name": "work", "isDefault": true, "state": "ready", "sessions": 2,
             "usage": {"windows": [
                {"family": "codex", "slot": "primary", "usedPercent": 42.0, "windowMinutes": 300,
                 "resetsAtMs": now + 7_380_000},
                {"family": "codex", "slot": "secondary", "usedPercent": 12.0, "windowMinutes": 10080,
                 "resetsAtMs": now + 400_000_000}],
               "seenAtMs": now - 60_000, "source": "headers"}},
            {"name": "home", "isDefault": false, "state": "cooling", "cooldownUntilMs": now + 3_600_000,
             "usage": {"windows": [
                {"family": "codex", "slot": "primary", "usedPercent": 100.0, "windowMinutes": 300,
                 "resetsAtMs": now + 3_600_000},
                {"family": "codex_bengalfox", "slot": "primary", "label": "spark",
                 "usedPercent": 71.0, "windowMinutes": 300}],
               "seenAtMs": now - 5_000, "source": "event"}},
            {"name": "spare", "isDefault": false, "state": "needs-login"}
        ],
        "recentSwitches": [{"atMs": now - 30_000, "from": "home", "to": "work", "reason": "usage_limit_reached"}],
        "lastDecision": {"summary": "least-used -> work: least used (5h at 42%)"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_every_account_with_bars_and_no_console_errors() {
    let Some(bin) = chromium() else { return };
    let (url, server) = serve(fixture()).await;
    let (dom, console) = dump_dom(bin, url).await;
    server.abort();

    assert!(console.is_empty(), "console output: {console:#?}");
    for name in ["work", "home", "spare"] {
        assert!(
            dom.contains(&format!("data-account=\"{name}\"")),
            "account {name} missing from the page:\n{dom}"
        );
    }
    // One bar per window, filled to its percent, with the percent and reset countdown.
    assert_eq!(dom.matches("role=\"progressbar\"").count(), 4, "{dom}");
    for want in [
        "width: 42%",
        "width: 12%",
        "width: 100%",
        "width: 71%",
        "data-window=\"5h\"",
        "data-window=\"weekly\"",
        "data-window=\"spark 5h\"",
        "resets in 2h 3m",
        "cooling for 1h 0m",
        "no usage reported yet",
        "least-used",
        "home → work (usage_limit_reached)",
        "least-used -&gt; work: least used (5h at 42%)",
    ] {
        assert!(dom.contains(want), "page lacks {want:?}:\n{dom}");
    }
    assert!(
        dom.contains("class=\"fill bad\" style=\"width: 100%"),
        "a spent window is red:\n{dom}"
    );
    assert!(
        dom.contains("<div id=\"error\" style=\"display: none;\"></div>"),
        "page showed an error:\n{dom}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_survives_an_empty_or_odd_status() {
    let Some(bin) = chromium() else { return };
    let (url, server) =
        serve(json!({"accounts": [{"name": "x", "usage": {"windows": "junk"}}]})).await;
    let (dom, console) = dump_dom(bin, url).await;
    server.abort();
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(dom.contains("data-account=\"x\""), "{dom}");
    assert!(dom.contains("no usage reported yet"), "{dom}");
}

/// The console check itself works: a page that logs an error is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_errors_are_detected() {
    let Some(bin) = chromium() else { return };
    let app = Router::new().route(
        "/",
        get(|| async { axum::response::Html("<script>console.error('boom from page')</script>") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (_, console) = dump_dom(bin, format!("http://127.0.0.1:{port}/")).await;
    server.abort();
    assert!(
        console.iter().any(|l| l.contains("boom from page")),
        "console error not detected: {console:#?}"
    );
}

/// The real gateway's page: every registered account, bars from live usage, no console errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_gateway_page_shows_live_usage() {
    use cao::mock::{AccountFaults, Scenario};
    use common::gateway::model_call;
    let Some(bin) = chromium() else { return };
    let faults = AccountFaults {
        rate_limit_event: Some(json!({"type": "codex.rate_limits",
            "rate_limits": {"primary": {"used_percent": 37.0, "window_minutes": 300,
                "reset_after_seconds": 5000}}})),
        ..Default::default()
    };
    let (_env, _m, g) = page_gateway(
        Scenario::default().with_account("acc-1", faults),
        &[("work", "acc-1"), ("home", "acc-2")],
        &[],
    )
    .await;
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);

    let (dom, console) = dump_dom(bin, format!("{}/", g.url)).await;
    assert!(g.stop().success());
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(dom.contains("data-account=\"work\""), "{dom}");
    assert!(dom.contains("data-account=\"home\""), "{dom}");
    assert!(dom.contains("aria-valuenow=\"37\""), "{dom}");
    assert!(dom.contains("width: 37%"), "{dom}");
    assert!(dom.contains("resets in 1h 23m"), "{dom}");
    assert!(dom.contains("<b>1</b>"), "one session pinned: {dom}");
}

/// With an access key the page loads without it, and reads it from `/#key=...` (a fragment,
/// never sent to the server) to call /status; without it, the page says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_with_an_access_key() {
    use cao::mock::Scenario;
    use common::gateway::send;
    let Some(bin) = chromium() else { return };
    let (_env, _m, g) = page_gateway(
        Scenario::default(),
        &[("work", "acc-1")],
        &["--access-key", "s3cret-key-0123456789"],
    )
    .await;
    assert_eq!(
        send("GET", &format!("{}/", g.url), &[], b"").await.status,
        200
    );
    assert_eq!(
        send("GET", &format!("{}/status", g.url), &[], b"")
            .await
            .status,
        401
    );
    assert_eq!(
        send("GET", &format!("{}/metrics", g.url), &[], b"")
            .await
            .status,
        401
    );

    let (dom, console) =
        dump_dom(bin.clone(), format!("{}/#key=s3cret-key-0123456789", g.url)).await;
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(dom.contains("data-account=\"work\""), "{dom}");

    let (dom, _) = dump_dom(bin, format!("{}/", g.url)).await;
    assert!(g.stop().success());
    assert!(!dom.contains("data-account=\"work\""), "{dom}");
    assert!(
        dom.contains("<div id=\"error\" style=\"display: block;\">cannot reach the gateway: this gateway needs its access key"),
        "{dom}"
    );
}
