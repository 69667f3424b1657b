//! One frame of `cao status --watch`, fitted to the terminal: the dashboard (or, when it is
//! taller than the terminal, the one-row-per-account table, problems first, cut with a line
//! saying how many more), then the running gateway's footer and a status line, every line at
//! most `width` columns (long ones wrap at their ` · ` separators) and the whole at most `rows`
//! lines.

use super::{RenderOpts, dashboard, style, table, time};
use crate::policy::health::HealthSummary;
use crate::store::inspect::Overview;
use crate::wire::Status;

/// The gateway part of the footer: `Gateway URL · strategy · switch at 98% · 3 sessions · …`,
/// the last decision and the latest switches (times relative and local). Empty without a
/// gateway.
pub fn gateway_footer(url: &str, live: &Status, r: &RenderOpts) -> Vec<String> {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut out = vec![
        [
            format!("{} {url}", style::bold("Gateway")),
            live.strategy.as_str().to_string(),
            format!("switch at {}%", live.switch_at),
            plural(live.affinity_count as u64, "session", "sessions"),
            plural(live.requests, "request", "requests"),
            plural(live.switches, "switch", "switches"),
        ]
        .join(" · "),
    ];
    if let Some(d) = live
        .last_decision
        .as_ref()
        .filter(|d| !d.summary.is_empty())
    {
        out.push(format!("  last decision: {}", style::dim(&d.summary)));
    }
    for s in live.recent_switches.iter().rev().take(3) {
        out.push(format!(
            "  switch {}: {} → {} ({})",
            time::relative_with_local(Some(s.at_ms), r.now_ms, &r.tz, ""),
            s.from,
            s.to,
            s.reason,
        ));
    }
    out
}

/// `Updated 2026-11-24 21:30 UTC · every 2s · q quits`
pub fn status_line(interval_secs: u64, r: &RenderOpts) -> String {
    style::dim(&format!(
        "Updated {} · every {interval_secs}s · q or Ctrl-C quits",
        time::local(r.now_ms, &r.tz)
    ))
}

/// The whole frame, `\n`-separated, at most `rows` lines of at most `r.width` columns.
pub fn frame(
    o: &Overview,
    h: &HealthSummary,
    r: &RenderOpts,
    rows: usize,
    footer: &[String],
    status: &str,
) -> String {
    let width = r.width.max(20);
    let mut tail: Vec<String> = footer.iter().flat_map(|l| fit_width(l, width)).collect();
    tail.extend(fit_width(status, width));
    // Keep room for the body: the footer gives way first (the status line stays).
    let body_rows = rows.saturating_sub(tail.len());
    if body_rows < 4 && tail.len() > 1 {
        let keep = rows.saturating_sub(4).max(1);
        let drop = tail.len().saturating_sub(keep);
        tail.drain(..drop.min(tail.len() - 1));
    }
    let body_rows = rows.saturating_sub(tail.len()).max(1);
    let full = if o.accounts.is_empty() {
        super::text::NO_ACCOUNTS.to_string()
    } else {
        dashboard::render(o, h, r)
    };
    let body = if full.lines().count() <= body_rows {
        full
    } else {
        table::render_at_most(o, h, r, body_rows)
    };
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    lines.truncate(body_rows);
    lines.extend(tail);
    lines.truncate(rows.max(1));
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `line` as lines of at most `width` columns: broken at ` · ` (or spaces) where it must.
pub fn fit_width(line: &str, width: usize) -> Vec<String> {
    if style::visible_width(line) <= width {
        return vec![line.to_string()];
    }
    let plain = style::strip(line);
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, part) in plain.split(" · ").enumerate() {
        let sep = if i == 0 || cur.is_empty() { "" } else { " · " };
        if !cur.is_empty()
            && cur.chars().count() + sep.chars().count() + part.chars().count() > width
        {
            out.push(std::mem::take(&mut cur));
            cur.push_str("  ");
        }
        if !cur.trim().is_empty() {
            cur.push_str(sep);
        }
        cur.push_str(part);
    }
    out.push(cur);
    // A part longer than the width on its own: hard wrap at the width.
    out.into_iter()
        .flat_map(|l| {
            let chars: Vec<char> = l.chars().collect();
            chars
                .chunks(width.max(1))
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_footer_lines_break_at_their_separators() {
        let line = "Gateway http://127.0.0.1:4319 · fill-first · switch at 98% · 2 sessions";
        assert_eq!(
            fit_width(line, 40),
            vec![
                "Gateway http://127.0.0.1:4319",
                "  fill-first · switch at 98%",
                "  2 sessions"
            ]
        );
        for w in [20, 30, 40, 60] {
            assert!(
                fit_width(line, w).iter().all(|l| l.chars().count() <= w),
                "{w}: {:?}",
                fit_width(line, w)
            );
        }
        assert_eq!(fit_width("short", 40), vec!["short"]);
        assert_eq!(
            fit_width("aaaa · bbbb · cccc", 11),
            vec!["aaaa · bbbb", "  cccc"]
        );
    }

    #[test]
    fn footer_names_strategy_decision_and_switches() {
        let live = serde_json::json!({"strategy": "least-used", "switchAt": 90.0, "affinityCount": 2,
            "requests": 7, "switches": 1,
            "lastDecision": {"summary": "least-used -> b: least used (5h at 3%)"},
            "recentSwitches": [{"atMs": 1_767_225_540_000_i64, "from": "a", "to": "b", "reason": "usage limit reached"}]});
        let live: Status = serde_json::from_value(live).unwrap_or_default();
        let r = RenderOpts {
            now_ms: 1_767_225_600_000,
            tz: jiff::tz::TimeZone::UTC,
            width: 80,
        };
        let f: Vec<String> = gateway_footer("http://127.0.0.1:4319", &live, &r)
            .iter()
            .map(|l| style::strip(l))
            .collect();
        assert_eq!(
            f,
            vec![
                "Gateway http://127.0.0.1:4319 · least-used · switch at 90% · 2 sessions · 7 requests · 1 switch",
                "  last decision: least-used -> b: least used (5h at 3%)",
                "  switch 1m ago (2025-12-31 23:59 UTC): a → b (usage limit reached)",
            ]
        );
    }
}
