//! The dashboard for many accounts: one row each (name, state, 5h and weekly use, next reset,
//! issues), problems first, instead of a block of lines per account.
//!
//! ```text
//! 40 accounts: 37 ok, 2 warn, 1 error · 2026-11-24 21:30 UTC
//!   ACCOUNT   STATE        5H   WEEKLY  RESETS     ISSUES
//!   broken    needs-login   -        -  -          not_logged_in
//!   spent     cooling     100%     40%  in 2h 3m   cooldown_active
//! * work      ready        12%      3%  in 4h 1m
//! ```
//!
//! `cao status NAME` or `--full` show an account's details.

use super::{RenderOpts, style, text, time};
use crate::policy::account::State;
use crate::policy::health::{HealthSummary, Severity};
use crate::policy::strategy::DEFAULT_SWITCH_AT;
use crate::store::inspect::{AccountView, Overview};

/// From this many accounts on, the dashboard is this table.
pub const MANY_ACCOUNTS: usize = 10;

/// The account's state word (the one vocabulary: [`AccountView::state`]) and its place in the
/// order problems are shown: no usable login first, then errors, cooling, warnings, the rest.
fn state(v: &AccountView, h: &HealthSummary, now_ms: i64) -> (u8, &'static str) {
    let st = v.state(DEFAULT_SWITCH_AT, now_ms);
    let rank = match st {
        State::Unreadable | State::NeedsLogin => 0,
        _ if h.worst(&v.name) == Some(Severity::Error) => 1,
        State::Cooling | State::Spent => 2,
        _ if h.worst(&v.name) == Some(Severity::Warn) => 3,
        State::Full => 3,
        State::Ready => 4,
    };
    (rank, st.as_str())
}

/// Used percent of the main window spanning `minutes`, as `42%`, else `-`.
fn window(v: &AccountView, minutes: i64, now_ms: i64) -> String {
    v.status
        .usage
        .as_ref()
        .and_then(|u| {
            u.windows.iter().find(|w| {
                w.family == crate::policy::usage::MAIN_FAMILY && w.window_minutes == Some(minutes)
            })
        })
        .map_or_else(|| "-".to_string(), |w| format!("{:.0}%", w.used_at(now_ms)))
}

/// The next thing that changes for the account: its cooldown end, else its 5h reset.
fn next_reset(v: &AccountView, now_ms: i64) -> String {
    if let Some(until) = v.status.active_cooldown(now_ms) {
        return time::relative(until, now_ms);
    }
    v.status
        .usage
        .as_ref()
        .and_then(|u| {
            u.windows
                .iter()
                .filter_map(|w| w.resets_at_ms.filter(|&r| r > now_ms))
                .min()
        })
        .map_or_else(|| "-".to_string(), |r| time::relative(r, now_ms))
}

/// Render the table for `r.width` columns. Nothing is cut: a row whose issues do not fit
/// continues them on the next line, under the ISSUES column.
pub fn render(o: &Overview, h: &HealthSummary, r: &RenderOpts) -> String {
    render_at_most(o, h, r, usize::MAX)
}

/// [`render`] in at most `max_lines` lines (`cao status --watch` on a short terminal): the rows
/// that do not fit (the healthiest, as problems come first) become `… and N more accounts`.
pub fn render_at_most(o: &Overview, h: &HealthSummary, r: &RenderOpts, max_lines: usize) -> String {
    let now = r.now_ms;
    let mut rows: Vec<(u8, usize, [String; 6])> = o
        .accounts
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (rank, word) = state(v, h, now);
            let issues: Vec<&str> = h
                .for_account(&v.name)
                .filter(|i| i.severity != crate::policy::health::Severity::Info)
                .map(|i| i.code.as_str())
                .collect();
            let mark = if v.is_default { "*" } else { " " };
            (
                rank,
                i,
                [
                    format!("{mark} {}", v.name),
                    word.to_string(),
                    window(v, 300, now),
                    window(v, 10080, now),
                    next_reset(v, now),
                    issues.join(", "),
                ],
            )
        })
        .collect();
    rows.sort_by_key(|(rank, i, _)| (*rank, *i));
    let head = [
        "  ACCOUNT".to_string(),
        "STATE".to_string(),
        "5H".to_string(),
        "WEEKLY".to_string(),
        "RESETS".to_string(),
        "ISSUES".to_string(),
    ];
    let mut widths = [0usize; 5];
    for cells in rows.iter().map(|(_, _, c)| c).chain(std::iter::once(&head)) {
        for (w, cell) in widths.iter_mut().zip(cells.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let issues_at = widths.iter().sum::<usize>() + 2 * widths.len();
    // Issues are codes (never cut): when their column would be narrower than the longest,
    // they go on the lines under the row instead, indented, with the whole width.
    let longest_issue = rows
        .iter()
        .flat_map(|(_, _, c)| c[5].split(", "))
        .map(|i| i.chars().count())
        .max()
        .unwrap_or(0);
    let beside = r.width.saturating_sub(issues_at) >= longest_issue.max(6);
    let (issues_at, issues_room) = if beside {
        (issues_at, r.width.saturating_sub(issues_at))
    } else {
        (4, r.width.saturating_sub(4).max(16))
    };
    let mut out = format!(
        "{} · {}\n",
        text::account_totals(o, h),
        time::local(now, &r.tz)
    );
    if let Some(pool) = super::forecast::pool_line(o, now) {
        out.push_str(&pool);
        out.push('\n');
    }
    let details = "Details: `cao status NAME` for one account, `cao status --full` for all.";
    // Lines left for the head and the rows, keeping one for the last line (details or "more").
    let mut room = max_lines.saturating_sub(out.lines().count() + 1);
    let mut shown = 0;
    for (k, cells) in std::iter::once(&head)
        .chain(rows.iter().map(|(_, _, c)| c))
        .enumerate()
    {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Numbers right-aligned, words left-aligned.
            if (2..=3).contains(&i) {
                line.push_str(&format!("{cell:>w$}  "));
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        let issue_lines = if k == 0 && !beside {
            Vec::new()
        } else {
            wrap_list(&cells[5], issues_room)
        };
        for (n, part) in issue_lines.iter().enumerate() {
            if n > 0 || (!beside && !part.is_empty()) {
                line.push('\n');
                line.push_str(&" ".repeat(issues_at));
            }
            line.push_str(part);
        }
        let line = line.trim_end().to_string();
        let height = line.lines().count();
        // The last row may take the "more" line's place.
        let last = k == rows.len();
        if height > room + usize::from(last) {
            break;
        }
        room -= height.min(room);
        shown = k;
        out.push_str(&if k == 0 { style::dim(&line) } else { line });
        out.push('\n');
    }
    if shown < rows.len() {
        let more = rows.len() - shown;
        out.push_str(&style::dim(&format!(
            "… and {} (`cao status --full`)\n",
            text::plural(more, "more account")
        )));
    } else if room > 0 || max_lines == usize::MAX {
        out.push_str(&style::dim(details));
        out.push('\n');
    }
    out
}

/// Split a comma-separated list into lines of at most `width` columns (at the commas).
fn wrap_list(list: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for item in list.split(", ").filter(|s| !s.is_empty()) {
        let cur = lines.last_mut().map_or(0, |l| l.chars().count());
        if cur > 0 && cur + 2 + item.chars().count() > width {
            if let Some(l) = lines.last_mut() {
                l.push(',');
            }
            lines.push(String::new());
        }
        if let Some(l) = lines.last_mut() {
            if !l.is_empty() {
                l.push_str(", ");
            }
            l.push_str(item);
        }
    }
    lines
}
