//! `cao status --doctor`: the health check as text or JSON (the TypeScript tool's shapes).

use std::fmt::Write;

use serde::Serialize;

use super::{RenderOpts, records::to_pretty, style, time};
use crate::policy::health::{HealthIssue, HealthOptions, HealthSummary};
use crate::store::inspect::Overview;

/// The text report.
pub fn text(o: &Overview, h: &HealthSummary, opts: &HealthOptions) -> String {
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
    if h.warn_count + h.error_count == 0 {
        out.push_str("All accounts look healthy.\n");
    }
    if h.issues.is_empty() {
        return out;
    }
    for v in &o.accounts {
        let marker = if v.is_default { "*" } else { " " };
        let _ = writeln!(
            out,
            "{marker} {}: {}",
            v.name,
            style::badge(h.worst(&v.name))
        );
        for issue in h.for_account(&v.name) {
            let _ = writeln!(
                out,
                "  - [{}] {}: {}",
                style::severity(issue.severity),
                issue.code,
                issue.message
            );
        }
    }
    out
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
    })
}
