//! `cao status --doctor`: the health check as text or JSON (the TypeScript tool's shapes), and
//! after the accounts the gateway section (`gateway` in JSON) when it has something to say.

use std::fmt::Write;

use serde::Serialize;

use super::{RenderOpts, records::to_pretty, style, time};
use crate::policy::health::GatewayIssue;
use crate::policy::health::{HealthIssue, HealthOptions, HealthSummary, IssueCode, Severity};
use crate::store::inspect::Overview;

/// The text report.
pub fn text(o: &Overview, h: &HealthSummary, opts: &HealthOptions, now_ms: i64) -> String {
    let mut out = String::new();
    out.push_str(&style::bold("Account health check"));
    out.push('\n');
    let _ = writeln!(
        out,
        "Thresholds: expires_within={}h, max_failures={}",
        opts.expires_within_hours, opts.max_failures
    );
    let _ = writeln!(
        out,
        "Totals: {} ({}, {})\n",
        super::text::account_totals(o, h),
        super::text::plural(h.warn_count, "warning"),
        super::text::plural(h.error_count, "error"),
    );
    if h.issues.iter().all(|i| i.severity == Severity::Info) {
        out.push_str("All accounts look healthy.\n");
    }
    for v in o.accounts.iter().filter(|_| !h.issues.is_empty()) {
        let marker = if v.is_default { "*" } else { " " };
        let _ = writeln!(
            out,
            "{marker} {}: {} ({})",
            v.name,
            style::badge(h.worst(&v.name)),
            v.state(opts.switch_at, now_ms).as_str()
        );
        for issue in h.for_account(&v.name) {
            issue_line(&mut out, issue.severity, issue.code, &issue.message);
        }
    }
    out.push_str(&gateway_text(h));
    out
}

/// The gateway section (the HTTPS Codex is routed to): empty when there is nothing to say.
pub fn gateway_text(h: &HealthSummary) -> String {
    let mut out = String::new();
    if h.gateway.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\n{}", style::bold("Gateway and HTTPS"));
    for issue in &h.gateway {
        issue_line(&mut out, issue.severity, issue.code, &issue.message);
    }
    out
}

/// `  - [warn] code: message`, one issue in either section.
fn issue_line(out: &mut String, severity: Severity, code: IssueCode, message: &str) {
    let _ = writeln!(out, "  - [{}] {code}: {message}", style::severity(severity));
}

/// The JSON report: `generatedAt`, `thresholds`, `totals`, `issues`.
pub fn json(o: &Overview, h: &HealthSummary, opts: &HealthOptions, r: &RenderOpts) -> String {
    #[derive(Serialize)]
    struct Totals {
        accounts: usize,
        ok: usize,
        warnings: usize,
        errors: usize,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doctor<'a> {
        generated_at: String,
        thresholds: &'a HealthOptions,
        totals: Totals,
        issues: &'a [HealthIssue],
        /// The gateway section, when it has something to say.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        gateway: &'a [GatewayIssue],
        /// Each account's state in the one vocabulary (`ready`, `cooling`, `needs-login`, …).
        states: std::collections::BTreeMap<&'a str, crate::policy::account::State>,
    }
    to_pretty(&Doctor {
        generated_at: time::iso(r.now_ms),
        thresholds: opts,
        totals: Totals {
            accounts: o.accounts.len(),
            ok: h.ok_count,
            warnings: h.warn_count,
            errors: h.error_count,
        },
        issues: &h.issues,
        gateway: &h.gateway,
        states: o
            .accounts
            .iter()
            .map(|v| (v.name.as_str(), v.state(opts.switch_at, r.now_ms)))
            .collect(),
    })
}
