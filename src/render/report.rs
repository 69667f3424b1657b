//! `cao status --report md`: a Markdown table to paste into an issue or a chat. No email
//! addresses (it is meant to be shared); the JSON report has everything.

use std::fmt::Write;

use super::{RenderOpts, time};
use crate::policy::health::HealthSummary;
use crate::store::inspect::Overview;

/// The Markdown report.
pub fn markdown(o: &Overview, health: &HealthSummary, r: &RenderOpts) -> String {
    let now = r.now_ms;
    let mut out = String::new();
    out.push_str("# CAO Account Report\n\n");
    let _ = writeln!(out, "Generated: {}\n", time::local(now, &r.tz));
    out.push_str(
        "| Account | Default | Login | Plan | Token Expires | Cooldown | Last Quota | Failures | Health |\n",
    );
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for v in &o.accounts {
        let s = &v.status;
        let codes: Vec<&str> = health.problems(&v.name).map(|i| i.code.as_str()).collect();
        let health_cell = if codes.is_empty() {
            "ok".to_string()
        } else {
            codes.join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&v.name),
            if v.is_default { "yes" } else { "no" },
            if v.logged_in() {
                "logged-in"
            } else {
                "not-logged-in"
            },
            cell(v.claims.plan_type.as_deref().unwrap_or("unknown")),
            // Absolute times: a shared report is read later, when "in 3h" is no longer true.
            absolute(v.token_expires_at_ms(), r, "unknown"),
            absolute(s.active_cooldown(now), r, "none"),
            absolute(s.last_quota_at_ms, r, "none"),
            s.consecutive_failures.unwrap_or(0),
            health_cell,
        );
    }
    // Usage windows (issue 6), when upstream has reported any.
    let usage: Vec<String> = o
        .accounts
        .iter()
        .filter_map(|v| {
            super::usage::short(v.status.usage.as_ref(), now).map(|u| format!("- {}: {u}", v.name))
        })
        .collect();
    if !usage.is_empty() {
        let _ = write!(out, "\n## Usage\n\n{}\n", usage.join("\n"));
    }
    if !health.gateway.is_empty() {
        out.push_str("\n## Gateway and HTTPS\n\n");
        for issue in &health.gateway {
            let _ = writeln!(out, "- **{}**: {}", issue.code, cell(&issue.message));
        }
    }
    let _ = writeln!(out, "\n{}.", super::text::account_totals(o, health));
    out
}

/// `2026-11-24 21:30 UTC` in the report's zone, or `missing`.
fn absolute(ts_ms: Option<i64>, r: &RenderOpts, missing: &str) -> String {
    ts_ms.map_or_else(|| missing.to_string(), |t| time::local(t, &r.tz))
}

/// Escape what would break a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
