//! The live part of `cao status --watch`: each redraw asks the running gateway (on the
//! configured address) for `GET /status` and, when it answers, draws its fresher usage and
//! cooldowns plus a footer (strategy, sessions, last routing decision, recent switches).
//! Without a gateway the dashboard comes from the data dir alone.

use anyhow::Result;

use super::Ctx;
use crate::gateway::live::LiveError;
use crate::gateway::wire::Status;
use crate::gateway::{LiveGateway, Overrides, live};
use crate::render::{style, time};
use crate::store::inspect::Overview;

/// The overview to draw and a footer about the gateway (empty without one).
pub fn snapshot(ctx: &Ctx) -> Result<(Overview, String)> {
    let mut overview = ctx.store.inspect()?;
    let now = crate::clock::now_ms();
    let (url, live) = match live_status(ctx) {
        Ok(Some(v)) => v,
        Ok(None) => return Ok((overview, String::new())),
        Err(e) => {
            let note = format!(
                "{} {}\n",
                style::bold("Gateway"),
                style::dim(&e.to_string())
            );
            return Ok((overview, note));
        }
    };
    overlay(&mut overview, &live);
    Ok((overview, footer(&url, &live, now)))
}

/// The configured gateway's `/status`, if this user's gateway answers (anything else on the
/// port is neither sent the access key nor believed).
fn live_status(ctx: &Ctx) -> Result<Option<(String, Status)>, LiveError> {
    let url = live::saved_url(&ctx.store);
    let Some(gateway) = LiveGateway::find(&ctx.store, &url, Overrides::from_env().access_key)?
    else {
        return Ok(None);
    };
    Ok(gateway
        .status()
        .ok()
        .map(|status| (gateway.url().to_string(), status)))
}

/// Put the gateway's in-memory usage and cooldowns (fresher than the batched files) into the
/// overview.
fn overlay(o: &mut Overview, live: &Status) {
    for a in &live.accounts {
        let Some(view) = o.accounts.iter_mut().find(|v| v.name == a.name) else {
            continue;
        };
        if let Some(u) = &a.usage {
            view.status.usage = Some(u.clone());
        }
        if let Some(c) = a.cooldown_until_ms {
            view.status.cooldown_until_ms = Some(c);
        }
    }
}

/// `Gateway http://127.0.0.1:4319 · fill-first · switch at 98% · 3 sessions · 12 requests · 1 switch`
/// then the last decision and the latest switches.
fn footer(url: &str, live: &Status, now: i64) -> String {
    let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "es" });
    let mut out = format!(
        "{} {url} · {} · switch at {}% · {} session(s) · {} request(s) · {}\n",
        style::bold("Gateway"),
        live.strategy,
        live.switch_at,
        live.affinity_count,
        live.requests,
        plural(live.switches, "switch"),
    );
    if let Some(d) = live
        .last_decision
        .as_ref()
        .filter(|d| !d.summary.is_empty())
    {
        out.push_str(&format!("  last decision: {}\n", style::dim(&d.summary)));
    }
    for s in live.recent_switches.iter().rev().take(3) {
        out.push_str(&format!(
            "  switch {}: {} → {} ({})\n",
            time::relative(s.at_ms, now),
            s.from,
            s.to,
            s.reason,
        ));
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
        let live: Status = serde_json::from_value(live).unwrap_or_default();
        let f = style::strip(&footer("http://127.0.0.1:4319", &live, 61_000));
        assert_eq!(
            f,
            "Gateway http://127.0.0.1:4319 · least-used · switch at 90% · 2 session(s) · 7 request(s) · 1 switch\n  last decision: least-used -> b: least used (5h at 3%)\n  switch 1m ago: a → b (usage limit reached)\n"
        );
    }
}
