//! The framed dashboard `cao status` shows on a terminal.
//!
//! ```text
//! ┌───────────────────────── CAO Status ─────────────────────────┐
//! │ Accounts: 2 (1 ok) · 1 warning, 0 errors · 2026-11-24 21:30 UTC │
//! │ Data dir: /home/me/.codex-account-orchestrator               │
//! ├────────────────────────── Accounts ──────────────────────────┤
//! │ * work  OK  work@example.com · plus · acc-1                  │
//! │     token    expires in 9d 23h (2026-12-04 21:30 UTC)         │
//! │     ...                                                      │
//! └──────────────────────────────────────────────────────────────┘
//! ```
//!
//! Each account is a block of lines; [`super::extra::account_lines`] (usage bars) slot in
//! after the token line.

use super::{RenderOpts, extra, style, time};
use crate::policy::health::HealthSummary;
use crate::store::inspect::{AccountView, Overview};

/// Narrowest and widest frame.
pub const MIN_WIDTH: usize = 72;
pub const MAX_WIDTH: usize = 120;

/// Render the dashboard `r.width` columns wide (clamped to 72..=120).
pub fn render(o: &Overview, h: &HealthSummary, r: &RenderOpts) -> String {
    let width = r.width.clamp(MIN_WIDTH, MAX_WIDTH);
    let inner = width - 4;
    let mut b = Frame {
        out: String::new(),
        width,
    };
    b.top("CAO Status");
    // Accounts are counted as accounts, each by its worst state (the TypeScript tool's
    // "ok 1, warn 4" of 3 accounts mixed accounts and issues).
    b.line(&format!(
        "{} · {}",
        super::text::account_totals(o, h),
        time::local(r.now_ms, &r.tz)
    ));
    b.line(&format!(
        "Data dir: {}",
        truncate_middle(&o.data_dir.display().to_string(), inner.saturating_sub(10))
    ));
    b.divider("Accounts");
    for (i, v) in o.accounts.iter().enumerate() {
        if i > 0 {
            b.line("");
        }
        for line in account_block(v, h, r, inner) {
            b.line(&line);
        }
    }
    b.bottom();
    b.out
}

fn account_block(v: &AccountView, h: &HealthSummary, r: &RenderOpts, inner: usize) -> Vec<String> {
    let now = r.now_ms;
    let s = &v.status;
    let marker = if v.is_default { "*" } else { " " };
    let mut head = format!(
        "{marker} {}  {}",
        style::bold(&v.name),
        style::badge(h.worst(&v.name))
    );
    let ident: Vec<&str> = [
        v.claims.email.as_deref(),
        v.claims.plan_type.as_deref(),
        v.claims.chatgpt_account_id.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if v.logged_in() {
        if !ident.is_empty() {
            head.push_str("  ");
            head.push_str(&style::dim(&ident.join(" · ")));
        }
    } else if matches!(v.auth, crate::store::inspect::AuthView::NoAccess(_)) {
        head.push_str("  ");
        head.push_str(&style::red("auth.json unreadable"));
    } else {
        head.push_str("  ");
        head.push_str(&style::red("not logged in"));
    }
    let mut lines = vec![head];
    if matches!(v.auth, crate::store::inspect::AuthView::NoAccess(_)) {
        let path = v.auth_path.display();
        let fix = [
            format!("sudo chown \"$USER\" {path}"),
            format!("chmod 600 {path}"),
        ];
        lines.extend(fit(
            &format!("    {}", style::dim(&format!("{:<8}", "fix"))),
            &fix,
            " && ",
            inner,
        ));
    }
    let label = |k: &str| format!("    {}", style::dim(&format!("{k:<8}")));

    if v.logged_in() {
        let exp = v.token_expires_at_ms();
        let expiry = match exp {
            None => "expiry unknown".to_string(),
            Some(e) if e <= now => format!(
                "expired {}",
                time::relative_with_local(Some(e), now, &r.tz, "")
            ),
            Some(e) => format!(
                "expires {}",
                time::relative_with_local(Some(e), now, &r.tz, "")
            ),
        };
        let mut token = format!("{} {expiry}", label("token"));
        if let Some(lr) = v.last_refresh_ms {
            token.push_str(&format!(" · refreshed {}", time::relative(lr, now)));
        }
        lines.push(token);
    }
    for extra_line in extra::account_lines(v, r, inner.saturating_sub(4)) {
        lines.push(format!("    {extra_line}"));
    }
    let cooldown = match s.active_cooldown(now) {
        Some(u) => style::yellow(&format!(
            "cooling {}",
            time::relative_with_local(Some(u), now, &r.tz, "")
        )),
        None => "ready".to_string(),
    };
    let state = [
        cooldown,
        format!("last quota {}", time::event_short(s.last_quota_at_ms, now)),
        format!(
            "last success {}",
            time::event_short(s.last_success_at_ms, now)
        ),
        format!("failures {}", s.consecutive_failures.unwrap_or(0)),
    ];
    lines.extend(fit(&label("state"), &state, " · ", inner));
    let issues: Vec<String> = h
        .for_account(&v.name)
        .map(|i| format!("{} {}", style::severity(i.severity), i.code))
        .collect();
    if !issues.is_empty() {
        lines.extend(fit(&label("issues"), &issues, ", ", inner));
    }
    lines
}

/// Lay `items` out after `label`, joined by `sep`, starting a new (indented) line instead of
/// overflowing `width`.
fn fit(label: &str, items: &[String], sep: &str, width: usize) -> Vec<String> {
    let indent = " ".repeat(style::visible_width(label) + 1);
    let mut lines = Vec::new();
    let mut cur = format!("{label} ");
    let mut empty = true;
    for item in items {
        let extra = if empty { 0 } else { sep.len() };
        if !empty && style::visible_width(&cur) + extra + style::visible_width(item) > width {
            cur.push_str(sep.trim_end());
            lines.push(cur);
            cur = indent.clone();
            empty = true;
        }
        if !empty {
            cur.push_str(sep);
        }
        cur.push_str(item);
        empty = false;
    }
    lines.push(cur);
    lines
}

struct Frame {
    out: String,
    width: usize,
}

impl Frame {
    fn titled(&mut self, left: char, right: char, title: &str) {
        let line = self.width - 2;
        let label = format!(" {title} ");
        let label_w = label.chars().count();
        let start = line.saturating_sub(label_w) / 2;
        let end = line.saturating_sub(start + label_w);
        self.out.push(left);
        self.out.push_str(&"─".repeat(start));
        self.out.push_str(&style::bold(&label));
        self.out.push_str(&"─".repeat(end));
        self.out.push(right);
        self.out.push('\n');
    }

    fn top(&mut self, title: &str) {
        self.titled('┌', '┐', title);
    }

    fn divider(&mut self, title: &str) {
        self.titled('├', '┤', title);
    }

    fn bottom(&mut self) {
        self.out.push('└');
        self.out.push_str(&"─".repeat(self.width - 2));
        self.out.push_str("┘\n");
    }

    fn line(&mut self, content: &str) {
        let max = self.width - 4;
        let content = if style::visible_width(content) > max {
            truncate_tail(&style::strip(content), max)
        } else {
            content.to_string()
        };
        let pad = max.saturating_sub(style::visible_width(&content));
        self.out.push_str("│ ");
        self.out.push_str(&content);
        self.out.push_str(&" ".repeat(pad));
        self.out.push_str(" │\n");
    }
}

fn truncate_tail(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn truncate_middle(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max || max < 5 {
        return text.to_string();
    }
    let head = (max - 1).div_ceil(2);
    let tail = (max - 1) / 2;
    let mut s: String = text.chars().take(head).collect();
    s.push('…');
    s.extend(text.chars().skip(n - tail));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_wraps_at_separators() {
        let items: Vec<String> = ["aaaa", "bbbb", "cccc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(fit("L", &items, ", ", 12), vec!["L aaaa, bbbb,", "  cccc"]);
        assert_eq!(fit("L", &items, ", ", 80), vec!["L aaaa, bbbb, cccc"]);
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate_tail("abcdef", 4), "abc…");
        assert_eq!(truncate_tail("abc", 4), "abc");
        assert_eq!(truncate_middle("/very/long/path/here", 9), "/ver…here");
    }
}
