//! The live part of `cao status --watch`: each redraw asks the running gateway (on the
//! configured address) for `GET /status` and, when it answers, draws its fresher usage and
//! cooldowns plus a footer (strategy, sessions, last routing decision, recent switches).
//! Without a gateway the dashboard comes from the data dir alone.

use std::time::Duration;

use anyhow::Result;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::Ctx;
use crate::cli::GatewayStartArgs;
use crate::gateway::GatewayConfig;
use crate::policy::usage::UsageSnapshot;
use crate::render::{style, time};
use crate::store::inspect::Overview;

/// How long one redraw waits for the gateway.
const LIVE_TIMEOUT: Duration = Duration::from_millis(800);

/// The overview to draw and a footer about the gateway (empty without one).
pub fn snapshot(ctx: &Ctx) -> Result<(Overview, String)> {
    let mut overview = ctx.store.inspect()?;
    let now = crate::store::now_ms();
    let (url, live) = match live_status(ctx) {
        Some(v) => v,
        None => return Ok((overview, String::new())),
    };
    overlay(&mut overview, &live);
    Ok((overview, footer(&url, &live, now)))
}

/// The configured gateway's `/status`, if one answers.
fn live_status(ctx: &Ctx) -> Option<(String, Value)> {
    let args = GatewayStartArgs {
        access_key: std::env::var("CAO_GATEWAY_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        ..Default::default()
    };
    let config = GatewayConfig::resolve(&ctx.store, &args).ok()?;
    let base = config
        .local_url()
        .replace("://0.0.0.0", "://127.0.0.1")
        .replace("://[::]", "://[::1]");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let url = base.clone();
    let v = rt.block_on(async move {
        let client = crate::gateway::http_client().ok()?;
        let mut b = http::Request::get(format!("{url}/status"));
        if let Some(k) = config.access_key.as_deref() {
            b = b.header(crate::gateway::proxy::ACCESS_KEY_HEADER, k);
        }
        let req = b.body(Full::new(bytes::Bytes::new())).ok()?;
        let resp = tokio::time::timeout(LIVE_TIMEOUT, client.request(req))
            .await
            .ok()?
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body = tokio::time::timeout(LIVE_TIMEOUT, resp.into_body().collect())
            .await
            .ok()?
            .ok()?
            .to_bytes();
        serde_json::from_slice::<Value>(&body).ok()
    })?;
    (v.get("service").and_then(Value::as_str) == Some("cao-gateway")).then_some((base, v))
}

/// Put the gateway's in-memory usage and cooldowns (fresher than the batched files) into the
/// overview.
fn overlay(o: &mut Overview, live: &Value) {
    let Some(accounts) = live.get("accounts").and_then(Value::as_array) else {
        return;
    };
    for a in accounts {
        let Some(view) = a
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| o.accounts.iter_mut().find(|v| v.name == n))
        else {
            continue;
        };
        if let Some(u) = a
            .get("usage")
            .and_then(|u| serde_json::from_value::<UsageSnapshot>(u.clone()).ok())
        {
            view.status.usage = Some(u);
        }
        if let Some(c) = a.get("cooldownUntilMs").and_then(Value::as_i64) {
            view.status.cooldown_until_ms = Some(c);
        }
    }
}

/// `Gateway http://127.0.0.1:4319 · fill-first · switch at 98% · 3 sessions · 12 requests · 1 switch`
/// then the last decision and the latest switches.
fn footer(url: &str, live: &Value, now: i64) -> String {
    let n = |k: &str| live.get(k).and_then(Value::as_u64).unwrap_or(0);
    let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "es" });
    let mut out = format!(
        "{} {url} · {} · switch at {}% · {} session(s) · {} request(s) · {}\n",
        style::bold("Gateway"),
        live.get("strategy")
            .and_then(Value::as_str)
            .unwrap_or("fill-first"),
        live.get("switchAt").and_then(Value::as_f64).unwrap_or(98.0),
        n("affinityCount"),
        n("requests"),
        plural(n("switches"), "switch"),
    );
    if let Some(s) = live
        .pointer("/lastDecision/summary")
        .and_then(Value::as_str)
    {
        out.push_str(&format!("  last decision: {}\n", style::dim(s)));
    }
    if let Some(sw) = live.get("recentSwitches").and_then(Value::as_array) {
        for s in sw.iter().rev().take(3) {
            let at = s.get("atMs").and_then(Value::as_i64).unwrap_or(now);
            out.push_str(&format!(
                "  switch {}: {} → {} ({})\n",
                time::relative(at, now),
                s.get("from").and_then(Value::as_str).unwrap_or("?"),
                s.get("to").and_then(Value::as_str).unwrap_or("?"),
                s.get("reason").and_then(Value::as_str).unwrap_or(""),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn footer_names_strategy_decision_and_switches() {
        let live = json!({"strategy": "least-used", "switchAt": 90.0, "affinityCount": 2,
            "requests": 7, "switches": 1,
            "lastDecision": {"summary": "least-used -> b: least used (5h at 3%)"},
            "recentSwitches": [{"atMs": 1_000, "from": "a", "to": "b", "reason": "usage limit reached"}]});
        let f = style::strip(&footer("http://127.0.0.1:4319", &live, 61_000));
        assert_eq!(
            f,
            "Gateway http://127.0.0.1:4319 · least-used · switch at 90% · 2 session(s) · 7 request(s) · 1 switch\n  last decision: least-used -> b: least used (5h at 3%)\n  switch 1m ago: a → b (usage limit reached)\n"
        );
    }
}
