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
use crate::policy::account::State;
use crate::policy::health::HealthSummary;
use crate::store::inspect::{AccountView, Overview};

/// Below this many columns the dashboard has no frame (the frame would squeeze every line).
pub const MIN_FRAMED_WIDTH: usize = 70;
/// The widest frame (wider is harder to read, not more useful).
pub const MAX_WIDTH: usize = 120;
/// The narrowest layout cao draws: narrower terminals wrap it.
pub const MIN_WIDTH: usize = 40;

/// Render the dashboard for a terminal `r.width` columns wide: framed up to 120 columns,
/// frameless below 70, one row per account with many accounts. No value is ever cut: what does
/// not fit continues on the next line.
pub fn render(o: &Overview, h: &HealthSummary, r: &RenderOpts) -> String {
    if o.accounts.len() >= super::table::MANY_ACCOUNTS {
        return super::table::render(o, h, r);
    }
    let width = r.width.clamp(MIN_WIDTH, MAX_WIDTH);
    let framed = width >= MIN_FRAMED_WIDTH;
    let inner = if framed { width - 4 } else { width };
    let mut b = Frame {
        out: String::new(),
        width,
        framed,
    };
    b.top("CAO Status");
    // Accounts are counted as accounts, each by its worst state (the TypeScript tool's
    // "ok 1, warn 4" of 3 accounts mixed accounts and issues).
    b.line(&format!(
        "{} · {}",
        super::text::account_totals(o, h),
        time::local(r.now_ms, &r.tz)
    ));
    b.line(&format!("Data dir: {}", o.data_dir.display()));
    if let Some(pool) = super::forecast::pool_line(o, r.now_ms) {
        b.line(&pool);
    }
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
    // The state word (the one vocabulary), with when a cooldown ends.
    let st = v.state(crate::policy::strategy::DEFAULT_SWITCH_AT, now);
    let cooldown = match s.active_cooldown(now) {
        Some(u) => style::yellow(&format!(
            "{} until {}",
            st.as_str(),
            time::local_with_relative(u, now, &r.tz)
        )),
        None if st.takes_requests() && st != State::Ready => style::yellow(st.as_str()),
        None if st.takes_requests() => st.as_str().to_string(),
        None => style::red(st.as_str()),
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
        .problems(&v.name)
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
    let tail = sep.trim_end().chars().count();
    for (i, item) in items.iter().enumerate() {
        let extra = if empty { 0 } else { sep.chars().count() };
        // An item that is not the last may end its line with the separator.
        let end = if i + 1 < items.len() { tail } else { 0 };
        if !empty && style::visible_width(&cur) + extra + style::visible_width(item) + end > width {
            if style::visible_width(&cur) + tail <= width {
                cur.push_str(sep.trim_end());
            }
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
    /// Box-drawing frame, or plain lines (narrow terminals).
    framed: bool,
}

impl Frame {
    fn titled(&mut self, left: char, right: char, title: &str) {
        if !self.framed {
            self.out.push_str(&style::bold(title));
            self.out.push('\n');
            return;
        }
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
        if !self.framed {
            return;
        }
        self.out.push('└');
        self.out.push_str(&"─".repeat(self.width - 2));
        self.out.push_str("┘\n");
    }

    fn line(&mut self, content: &str) {
        let max = if self.framed {
            self.width - 4
        } else {
            self.width
        };
        // Too long: wrapped (never cut), continuation lines indented under the text.
        let parts = if style::visible_width(content) > max {
            wrap(&style::strip(content), max)
        } else {
            vec![content.to_string()]
        };
        for part in parts {
            if !self.framed {
                self.out.push_str(part.trim_end());
                self.out.push('\n');
                continue;
            }
            let pad = max.saturating_sub(style::visible_width(&part));
            self.out.push_str("│ ");
            self.out.push_str(&part);
            self.out.push_str(&" ".repeat(pad));
            self.out.push_str(" │\n");
        }
    }
}

/// Break `text` into lines of at most `max` columns, at spaces where it can and inside a word
/// (a long path) where it must; continuation lines keep the first line's indent plus two.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let indent_n = text.chars().take_while(|c| *c == ' ').count() + 2;
    let indent_n = indent_n.min(max / 2);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_inclusive(' ') {
        let mut word = word.to_string();
        loop {
            let cur_w = cur.chars().count();
            let word_w = word.trim_end().chars().count();
            if cur_w + word_w <= max {
                cur.push_str(&word);
                break;
            }
            if cur.trim().is_empty() {
                // The word alone is too long: split it.
                let room = max.saturating_sub(cur_w).max(1);
                let head: String = word.chars().take(room).collect();
                word = word.chars().skip(room).collect();
                cur.push_str(&head);
            }
            lines.push(cur.trim_end().to_string());
            cur = " ".repeat(indent_n);
            if word.is_empty() {
                break;
            }
        }
    }
    if !cur.trim().is_empty() {
        lines.push(cur.trim_end().to_string());
    }
    lines
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
        assert_eq!(fit("L", &items, ", ", 12), vec!["L aaaa,", "  bbbb, cccc"]);
        assert_eq!(fit("L", &items, ", ", 13), vec!["L aaaa, bbbb,", "  cccc"]);
        assert_eq!(fit("L", &items, ", ", 80), vec!["L aaaa, bbbb, cccc"]);
    }

    #[test]
    fn long_lines_wrap_instead_of_being_cut() {
        assert_eq!(
            wrap("    token    expires in 3h (2026-11-24 21:30 UTC)", 30),
            vec!["    token    expires in 3h", "      (2026-11-24 21:30 UTC)"]
        );
        let path = format!("Data dir: /{}", "x".repeat(40));
        let lines = wrap(&path, 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(lines.concat().replace(' ', ""), path.replace(' ', ""));
    }
}
