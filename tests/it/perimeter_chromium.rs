//! The perimeter against a real browser (headless Chromium): a page on another loopback port
//! tries what any web page can (a `no-cors` fetch, a `text/plain` form POST, a WebSocket, a
//! read of `/status`) and gets nothing through; a DNS-rebinding name (`--host-resolver-rules`)
//! reads nothing either; the gateway's own page still shows the accounts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use crate::common::chromium::{chromium, dump_dom, page_gateway, run_chromium};

use axum::Router;
use axum::routing::get;
use cao::mock::Scenario;

/// The attacker's page, aimed at the gateway on `port`.
fn attack_page(port: u16) -> String {
    format!(
        r#"<!doctype html><html><body>
<form id="f" method="POST" enctype="text/plain" target="sink"
      action="http://127.0.0.1:{port}/responses">
  <input name='{{"model":"gpt-5","input":[],"x":"' value='"}}'>
</form>
<iframe name="sink"></iframe>
<pre id="result">pending</pre>
<script>
const gw = "http://127.0.0.1:{port}";
const out = [];
async function attack() {{
  try {{
    await fetch(gw + "/responses", {{method: "POST", mode: "no-cors",
      body: JSON.stringify({{model: "gpt-5", input: []}})}});
    out.push("nocors:sent");
  }} catch (e) {{ out.push("nocors:error"); }}
  try {{
    const r = await fetch(gw + "/status");
    out.push("status:READ:" + (await r.text()).slice(0, 80));
  }} catch (e) {{ out.push("status:blocked"); }}
  try {{
    const r = await fetch(gw + "/metrics");
    out.push("metrics:READ:" + (await r.text()).slice(0, 80));
  }} catch (e) {{ out.push("metrics:blocked"); }}
  await new Promise((done) => {{
    try {{
      const ws = new WebSocket("ws://127.0.0.1:{port}/responses");
      ws.onopen = () => {{ out.push("ws:open"); ws.send("{{}}"); done(); }};
      ws.onerror = () => {{ out.push("ws:error"); done(); }};
      setTimeout(done, 2000);
    }} catch (e) {{ out.push("ws:throw"); done(); }}
  }});
  document.getElementById("f").submit();
  out.push("form:sent");
  document.getElementById("result").textContent = out.join("|");
}}
attack();
</script></body></html>"#
    )
}

async fn serve_attacker(page: String) -> (u16, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/",
        get(move || {
            let p = page.clone();
            async move { axum::response::Html(p) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_on_another_port_gets_nothing_through() {
    let Some(bin) = chromium() else { return };
    let (_env, m, g) = page_gateway(Scenario::default(), &[("work", "acc-1")], &[]).await;
    let gw_port: u16 = g.url.rsplit(':').next().unwrap().parse().unwrap();
    let (attacker, server) = serve_attacker(attack_page(gw_port)).await;

    let (dom, _) = dump_dom(bin.clone(), format!("http://127.0.0.1:{attacker}/")).await;
    server.abort();
    let result = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap_or_default();
    // The page ran to the end (so each attempt was made) ...
    assert!(result.ends_with("form:sent"), "{dom}");
    // ... and read nothing.
    assert!(!result.contains("READ:"), "{result}");
    assert!(!result.contains("ws:open"), "{result}");
    // Nothing reached upstream: no bearer was spent by a stranger.
    assert!(
        m.requests().iter().all(|r| r.path == "/oauth/token"),
        "{:?}",
        m.requests()
    );
    // The gateway refused each attempt itself: the fetch, the form, the WebSocket, the reads.
    let log = g.log_when(|l| l.matches("refused").count() >= 5);
    assert!(log.matches("cross_origin_refused").count() >= 5, "{log}");
    assert!(
        log.contains("method=GET path=/responses"),
        "the WebSocket: {log}"
    );

    // The gateway's own page, opened by the user, still shows the accounts.
    let (own, console) = dump_dom(bin, format!("{}/", g.url)).await;
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(own.contains("data-account=\"work\""), "{own}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_name_reads_nothing() {
    let Some(bin) = chromium() else { return };
    let (_env, m, g) = page_gateway(Scenario::default(), &[("work", "acc-1")], &[]).await;
    let gw_port: u16 = g.url.rsplit(':').next().unwrap().parse().unwrap();
    // evil.test "rebinds" to 127.0.0.1: the page, /status and /metrics are all same-origin
    // for it, so only the Host check stands in the way.
    for path in ["/", "/status", "/metrics"] {
        let url = format!("http://evil.test:{gw_port}{path}");
        let (dom, _) = tokio::task::spawn_blocking({
            let bin = bin.clone();
            move || {
                run_chromium(
                    &bin,
                    &url,
                    &[
                        "--host-resolver-rules=MAP evil.test 127.0.0.1",
                        "--virtual-time-budget=5000",
                        "--dump-dom",
                    ],
                )
            }
        })
        .await
        .unwrap();
        assert!(dom.contains("host_not_allowed"), "{path}: {dom}");
        assert!(!dom.contains("data-account"), "{path}: {dom}");
        assert!(
            !dom.contains("\"work\"") && !dom.contains("cao_"),
            "{path}: {dom}"
        );
    }
    assert!(m.requests().iter().all(|r| r.path == "/oauth/token"));
}
