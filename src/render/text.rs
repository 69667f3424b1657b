//! Plain line-oriented views: `cao list`, the compact one-liners and the full multi-line view.

use std::fmt::Write;

use super::{RenderOpts, extra, style, time};
use crate::store::inspect::{AccountView, Overview};

/// Shown instead of any view when nothing is registered.
pub const NO_ACCOUNTS: &str = "No accounts registered. Use `cao add <name>` first.\n";

/// `1 account`, `3 accounts`: a count and its noun, pluralised.
pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Accounts counted as accounts, each by its worst state: `3 accounts: 1 ok, 2 warn` (a part
/// that is zero is left out, except `ok`).
pub fn account_totals(o: &Overview, h: &crate::policy::health::HealthSummary) -> String {
    use crate::policy::health::Severity;
    let (mut warn, mut error) = (0, 0);
    for v in &o.accounts {
        match h.worst(&v.name) {
            Some(Severity::Error) => error += 1,
            Some(Severity::Warn) => warn += 1,
            Some(Severity::Info) | None => {}
        }
    }
    let ok = o.accounts.len() - warn - error;
    let mut out = format!("{}: {ok} ok", plural(o.accounts.len(), "account"));
    if warn > 0 {
        out.push_str(&format!(", {warn} warn"));
    }
    if error > 0 {
        out.push_str(&format!(", {error} error"));
    }
    out
}

fn marker(v: &AccountView) -> &'static str {
    if v.is_default { "*" } else { " " }
}

fn login_word(v: &AccountView) -> &'static str {
    if matches!(v.auth, crate::store::inspect::AuthView::NoAccess(_)) {
        "unreadable"
    } else if v.logged_in() {
        "logged-in"
    } else {
        "not-logged-in"
    }
}

/// `cao list`: `* name (ready)`, the default marked `*`, each account's state in the one
/// vocabulary the dashboard, doctor, `gateway status` and the page use ([`AccountView::state`]).
pub fn list(o: &Overview, now_ms: i64) -> String {
    let mut out = String::new();
    for v in &o.accounts {
        let state = v.state(crate::policy::strategy::DEFAULT_SWITCH_AT, now_ms);
        let _ = writeln!(out, "{} {} ({})", marker(v), v.name, state.as_str());
    }
    out
}

/// One line per account, the TypeScript tool's compact format.
pub fn compact(o: &Overview, r: &RenderOpts) -> String {
    let now = r.now_ms;
    let mut out = String::new();
    for v in &o.accounts {
        let s = &v.status;
        let _ = write!(
            out,
            "{} {} ({}) | expires: {} | cooldown: {} | last_quota: {} | failures: {}",
            marker(v),
            v.name,
            login_word(v),
            time::expiry_short(v.token_expires_at_ms(), now),
            time::cooldown_short(s.cooldown_until_ms, now),
            time::event_short(s.last_quota_at_ms, now),
            s.consecutive_failures.unwrap_or(0),
        );
        if s.needs_login == Some(true) {
            out.push_str(" | needs-login");
        }
        if let Some(suffix) = extra::compact_suffix(v, r) {
            let _ = write!(out, " | {suffix}");
        }
        out.push('\n');
    }
    if let Some(pool) = super::forecast::pool_line(o, now) {
        let _ = writeln!(out, "{pool}");
    }
    out
}

/// The verbose view: every field, absolute (ISO) and relative times.
pub fn full(o: &Overview, r: &RenderOpts) -> String {
    let now = r.now_ms;
    let mut out = String::new();
    for v in &o.accounts {
        let s = &v.status;
        let unknown = |x: Option<&String>| x.map_or("(unknown)".to_string(), Clone::clone);
        let _ = writeln!(out, "{} {}", marker(v), style::bold(&v.name));
        let mut field = |k: &str, val: String| {
            let _ = writeln!(out, "  {k}: {val}");
        };
        field("status", login_word(v).to_string());
        field("email", unknown(v.claims.email.as_ref()));
        field("plan", unknown(v.claims.plan_type.as_ref()));
        field("account_id", unknown(v.claims.chatgpt_account_id.as_ref()));
        field(
            "organization_id",
            unknown(v.claims.organization_id.as_ref()),
        );
        field(
            "token_expires_at",
            time::iso_with_relative(v.token_expires_at_ms(), now),
        );
        field(
            "last_refresh_at",
            time::iso_with_relative(v.last_refresh_ms, now),
        );
        field(
            "last_attempt_at",
            time::iso_with_relative(s.last_attempt_at_ms, now),
        );
        field(
            "last_success_at",
            time::iso_with_relative(s.last_success_at_ms, now),
        );
        field(
            "last_quota_at",
            time::iso_with_relative(s.last_quota_at_ms, now),
        );
        field("cooldown_until", cooldown_full(s.cooldown_until_ms, now));
        field(
            "consecutive_failures",
            s.consecutive_failures.unwrap_or(0).to_string(),
        );
        field(
            "last_error",
            s.last_error.clone().unwrap_or_else(|| "none".to_string()),
        );
        if s.needs_login == Some(true) {
            field("needs_login", format!("yes (run `cao add {}`)", v.name));
        }
        field("account_dir", v.account_dir.display().to_string());
        for line in extra::account_lines(v, r, r.width.saturating_sub(2)) {
            let _ = writeln!(out, "  {line}");
        }
        out.push('\n');
    }
    if let Some(pool) = super::forecast::pool_line(o, now) {
        let _ = writeln!(out, "{pool}");
    }
    out
}

fn cooldown_full(until: Option<i64>, now: i64) -> String {
    match until {
        None => "none".to_string(),
        Some(u) if u <= now => format!("{} (elapsed)", time::iso(u)),
        Some(u) => time::iso_with_relative(Some(u), now),
    }
}
