//! Usage windows as bars with used % and reset countdown, for every `cao status` view.
//!
//! ```text
//! 5h      ██████████░░░░░░░░░░  42%  resets in 2h 3m
//! weekly  ██░░░░░░░░░░░░░░░░░░  10%  resets in 5d 4h
//! ```
//!
//! Colour: green below 70 %, yellow from 70 %, red from the default switch threshold (98 %).
//! A window whose reset time has passed is shown empty (upstream has not spoken since).

use serde_json::{Map, Value, json};

use super::{RenderOpts, style, time};
use crate::policy::forecast::window_forecast;
use crate::policy::strategy::DEFAULT_SWITCH_AT;
use crate::policy::usage::{UsageSnapshot, UsageWindow};

/// Width of the bar itself, in cells, for a line `width` columns wide.
fn bar_cells(width: usize) -> usize {
    // name(8) + bar + " 100%"(5) + "  resets in 6d 23h"(18)
    width.saturating_sub(8 + 5 + 18 + 2).clamp(10, 30)
}

/// A bar of `cells` cells filled to `used_percent`, coloured by level.
pub fn bar(used_percent: f64, cells: usize) -> String {
    let used = used_percent.clamp(0.0, 100.0);
    let mut filled = ((used / 100.0) * cells as f64).round() as usize;
    if used > 0.0 && filled == 0 {
        filled = 1; // something used shows as something
    }
    let filled = filled.min(cells);
    let text = format!("{}{}", "█".repeat(filled), "░".repeat(cells - filled));
    paint_level(used, &text)
}

fn paint_level(used: f64, text: &str) -> String {
    if used >= DEFAULT_SWITCH_AT {
        style::red(text)
    } else if used >= 70.0 {
        style::yellow(text)
    } else {
        style::green(text)
    }
}

/// `resets in 2h 3m`, `reset due` (time passed), or empty when unknown.
fn reset_words(w: &UsageWindow, now_ms: i64) -> String {
    match w.resets_at_ms {
        Some(r) if r > now_ms => format!("resets in {}", time::duration(r - now_ms)),
        Some(_) => "reset due".to_string(),
        None => String::new(),
    }
}

/// One line per window plus a `seen` line, for the dashboard and the full view.
pub fn lines(u: Option<&UsageSnapshot>, r: &RenderOpts, width: usize) -> Vec<String> {
    let Some(u) = u else {
        return Vec::new();
    };
    let now = r.now_ms;
    let cells = bar_cells(width);
    let mut out: Vec<String> = u
        .windows
        .iter()
        .map(|w| {
            let used = w.used_at(now);
            let mut line = format!(
                "{:<8} {} {:>3.0}%  {}",
                w.display_name(),
                bar(used, cells),
                used,
                reset_words(w, now)
            );
            if let Some(t) = window_forecast(w, &u.history, now).runs_out_at_ms {
                line.push_str(&format!(
                    " · out in {} at this pace",
                    time::duration(t - now)
                ));
            }
            line.trim_end().to_string()
        })
        .collect();
    let mut seen = format!("usage seen {}", time::relative(u.seen_at_ms, now));
    if let Some(c) = &u.credits {
        seen.push_str(&format!(" · credits {}", credits_words(c)));
    }
    if u.limit_reached == Some(true) {
        seen.push_str(" · limit reached");
    }
    // Aligned under the bars (a window name takes 8 columns and a space).
    out.push(format!("{:9}{}", "", style::dim(&seen)));
    out
}

fn credits_words(c: &crate::policy::usage::Credits) -> String {
    if c.unlimited {
        "unlimited".to_string()
    } else if let Some(b) = &c.balance {
        b.clone()
    } else if c.has_credits {
        "yes".to_string()
    } else {
        "none".to_string()
    }
}

/// Short form for the compact one-liner and the Markdown report: `5h 42% (2h 3m), weekly 10%`.
pub fn short(u: Option<&UsageSnapshot>, now_ms: i64) -> Option<String> {
    let u = u?;
    if u.windows.is_empty() {
        return None;
    }
    let parts: Vec<String> = u
        .windows
        .iter()
        .map(|w| {
            let used = w.used_at(now_ms);
            match w.resets_at_ms.filter(|&r| r > now_ms) {
                Some(r) => format!(
                    "{} {used:.0}% ({})",
                    w.display_name(),
                    time::duration(r - now_ms)
                ),
                None => format!("{} {used:.0}%", w.display_name()),
            }
        })
        .collect();
    Some(parts.join(", "))
}

/// The `usage` field of an account's JSON record: the stored snapshot plus, per window, the
/// display name, the used % as of now, ISO reset time and seconds to it.
pub fn json(u: Option<&UsageSnapshot>, now_ms: i64) -> Map<String, Value> {
    let mut m = Map::new();
    let Some(u) = u else {
        return m;
    };
    let windows: Vec<Value> = u
        .windows
        .iter()
        .map(|w| {
            let f = window_forecast(w, &u.history, now_ms);
            json!({
                "pacePerHour": f.pace_per_hour,
                "runsOutAtMs": f.runs_out_at_ms,
                "runsOutAt": f.runs_out_at_ms.map(time::iso),
                "family": w.family,
                "slot": w.slot,
                "name": w.display_name(),
                "label": w.label,
                "usedPercent": w.used_at(now_ms),
                "windowMinutes": w.window_minutes,
                "resetsAt": w.resets_at_ms.map(time::iso),
                "resetsAtMs": w.resets_at_ms,
                "resetsInSeconds": w.reset_in_secs(now_ms),
            })
        })
        .collect();
    m.insert(
        "usage".to_string(),
        json!({
            "windows": windows,
            "credits": u.credits,
            "planType": u.plan_type,
            "limitReached": u.limit_reached,
            "seenAt": time::iso(u.seen_at_ms),
            "seenAtMs": u.seen_at_ms,
            "source": u.source,
        }),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::usage::from_headers;

    const NOW: i64 = 1_800_000_000_000;

    fn opts() -> RenderOpts {
        RenderOpts {
            now_ms: NOW,
            tz: jiff::tz::TimeZone::UTC,
            width: 80,
        }
    }

    fn snap() -> UsageSnapshot {
        from_headers(
            vec![
                ("x-codex-primary-used-percent", "42"),
                ("x-codex-primary-window-minutes", "300"),
                ("x-codex-primary-reset-at", "1800007380"),
                ("x-codex-secondary-used-percent", "99"),
                ("x-codex-secondary-window-minutes", "10080"),
                ("x-codex-credits-has-credits", "true"),
                ("x-codex-credits-unlimited", "false"),
                ("x-codex-credits-balance", "5"),
            ],
            NOW - 180_000,
        )
        .unwrap()
    }

    #[test]
    fn bars_fill_proportionally_and_show_any_use() {
        assert_eq!(style::strip(&bar(50.0, 10)), "█████░░░░░");
        assert_eq!(style::strip(&bar(0.0, 4)), "░░░░");
        assert_eq!(style::strip(&bar(0.1, 4)), "█░░░");
        assert_eq!(style::strip(&bar(100.0, 4)), "████");
        assert_eq!(style::strip(&bar(250.0, 4)), "████");
        assert!(bar(99.0, 4).contains("\x1b[31m"), "red at the threshold");
        assert!(bar(75.0, 4).contains("\x1b[33m"), "yellow from 70 %");
    }

    #[test]
    fn lines_show_each_window_with_percent_and_countdown() {
        let s = snap();
        let got: Vec<String> = lines(Some(&s), &opts(), 60)
            .iter()
            .map(|l| style::strip(l))
            .collect();
        assert_eq!(got.len(), 3);
        assert!(got[0].starts_with("5h       █"), "{}", got[0]);
        assert!(got[0].ends_with(" 42%  resets in 2h 3m"), "{}", got[0]);
        assert!(got[1].ends_with(" 99%"), "{}", got[1]);
        assert_eq!(got[2], "         usage seen 3m ago · credits 5");
        assert!(lines(None, &opts(), 60).is_empty());
    }

    #[test]
    fn a_passed_reset_shows_empty_and_due() {
        let s = snap();
        let later = RenderOpts {
            now_ms: 1_800_007_380_000 + 1,
            ..opts()
        };
        let got = style::strip(&lines(Some(&s), &later, 60)[0]);
        assert!(got.ends_with("  0%  reset due"), "{got}");
    }

    #[test]
    fn short_form_for_compact_and_reports() {
        let s = snap();
        assert_eq!(
            short(Some(&s), NOW).as_deref(),
            Some("5h 42% (2h 3m), weekly 99%")
        );
        assert_eq!(short(None, NOW), None);
    }

    #[test]
    fn json_has_iso_reset_and_countdown() {
        let s = snap();
        let m = json(Some(&s), NOW);
        let w = &m["usage"]["windows"][0];
        assert_eq!(w["name"], "5h");
        assert_eq!(w["usedPercent"], 42.0);
        assert_eq!(w["resetsInSeconds"], 7380);
        assert_eq!(w["resetsAt"], "2027-01-15T10:03:00.000Z");
        assert_eq!(m["usage"]["credits"]["balance"], "5");
        assert!(json(None, NOW).is_empty());
    }
}
