//! When does a spent account come back? Parse the reset time Codex printed into an absolute time.
//!
//! Codex 0.169 (`codex-rs/core/src/error.rs`, `UsageLimitReachedError`) formats the backend's
//! `resets_at` in the local time zone of the machine:
//! - same local date: `Try again at 7:37 AM.` (chrono `%-I:%M %p`), or after an upgrade hint
//!   `... or try again at 7:37 AM.`
//! - another date: `Try again at Nov 26th, 2026 7:37 AM.` (`%b %-d{st|nd|rd|th}, %Y %-I:%M %p`)
//! - no reset known: `Try again later.` (nothing to parse; the caller uses its default cooldown)
//!
//! Also read, because they show up in raw error bodies or other wordings: `"resets_at": <unix s>`,
//! `"resets_in_seconds": <s>`, "try again in 2 days 3 hours" / "in 1h 30m" / "in 1.5s", and
//! "try again at 7:37 PM on Nov 26".
//!
//! Pure: `now_ms` and the time zone come in. Codex truncates the time to the minute, so a
//! clock time is taken as the END of that minute, never earlier than the real reset.

use std::sync::LazyLock;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use regex::{Captures, Regex};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// A printed clock time this far in the past still means "just reset" rather than "tomorrow".
const JUST_PASSED_MS: i64 = 5 * MINUTE_MS;

const MONTH: &str = r"(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?";
const DAY: &str = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?";
const CLOCK: &str = r"(?P<h>\d{1,2}):(?P<min>\d{2})(?::\d{2})?\s*(?P<ampm>[ap]\.?m\.?)?";

#[allow(clippy::expect_used)] // the patterns are constants; a typo fails every test at once
fn re(p: &str) -> Regex {
    Regex::new(p).expect("constant regex")
}

/// "try again at Nov 26th, 2026 7:37 AM" (Codex's other-date form; year optional).
static AT_DATE_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)try\s+again\s+at\s+{MONTH}\s+{DAY},?\s*(?:(?P<year>\d{{4}}),?\s*)?(?:at\s+)?{CLOCK}\b"
    ))
});
/// "try again at 7:37 PM on Nov 26[, 2026]".
static AT_TIME_FIRST_ON: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)try\s+again\s+at\s+{CLOCK}\s+on\s+{MONTH}\s+{DAY}(?:,?\s*(?P<year>\d{{4}}))?"
    ))
});
/// "try again at 7:37 AM" (Codex's same-day form).
static AT_TIME: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(?i)try\s+again\s+at\s+{CLOCK}(?:\b|$)")));
/// "try again in 2 days 3 hours", "resets in 1h 30m", "try again in 1.5s".
static IN_DURATION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:try\s+again|resets?)\s+in\s+((?:\d+(?:\.\d+)?\s*(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s|ms)\b[\s,]*(?:and\s+)?)+)",
    )
});
static DURATION_PART: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)(\d+(?:\.\d+)?)\s*(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s|ms)\b")
});
static RESETS_AT_JSON: LazyLock<Regex> =
    LazyLock::new(|| re(r#""resets_at"\s*:\s*(\d{9,12}(?:\.\d+)?)"#));
static RESETS_IN_JSON: LazyLock<Regex> =
    LazyLock::new(|| re(r#""resets_in_seconds"\s*:\s*(\d+(?:\.\d+)?)"#));

/// The reset time (ms since the epoch) stated in `line`, read at `now_ms` in time zone `tz`
/// (the zone Codex formatted in: the local one). `None` when the line states none.
pub fn parse_reset(line: &str, now_ms: i64, tz: &TimeZone) -> Option<i64> {
    if let Some(c) = RESETS_AT_JSON.captures(line) {
        let secs: f64 = c[1].parse().ok()?;
        return Some((secs * 1000.0) as i64);
    }
    if let Some(c) = RESETS_IN_JSON.captures(line) {
        let secs: f64 = c[1].parse().ok()?;
        return Some(now_ms.saturating_add((secs * 1000.0) as i64));
    }
    if let Some(c) = IN_DURATION.captures(line) {
        return duration_ms(&c[1]).map(|d| now_ms.saturating_add(d));
    }
    let now = Timestamp::from_millisecond(now_ms)
        .ok()?
        .to_zoned(tz.clone());
    if let Some(c) = AT_DATE_FIRST
        .captures(line)
        .or_else(|| AT_TIME_FIRST_ON.captures(line))
    {
        return dated(&c, &now, tz);
    }
    if let Some(c) = AT_TIME.captures(line) {
        let (h, m) = clock(&c)?;
        let today = now.date();
        let mut at = end_of_minute(today, h, m, tz)?;
        if at < now_ms - JUST_PASSED_MS {
            // A clock time well before now names its next occurrence: tomorrow.
            at = end_of_minute(today.tomorrow().ok()?, h, m, tz)?;
        }
        return Some(at);
    }
    None
}

/// Sum "2 days 3 hours", "1h 30m", "1.5s" into milliseconds.
fn duration_ms(text: &str) -> Option<i64> {
    let mut total = 0f64;
    for c in DURATION_PART.captures_iter(text) {
        let n: f64 = c[1].parse().ok()?;
        let unit = c[2].to_ascii_lowercase();
        let ms = match unit.as_str() {
            "ms" => 1.0,
            u if u.starts_with('d') => DAY_MS as f64,
            u if u.starts_with('h') => 3_600_000.0,
            u if u.starts_with("mi") || u == "m" => MINUTE_MS as f64,
            _ => 1000.0,
        };
        total += n * ms;
    }
    (total.is_finite() && (0.0..9.0e15).contains(&total)).then_some(total.round() as i64)
}

/// Hour (0-23) and minute from a `CLOCK` match; `None` for impossible times like 13:00 PM.
fn clock(c: &Captures) -> Option<(i8, i8)> {
    let h: i8 = c.name("h")?.as_str().parse().ok()?;
    let m: i8 = c.name("min")?.as_str().parse().ok()?;
    if m > 59 {
        return None;
    }
    let h = match c.name("ampm").map(|a| a.as_str().to_ascii_lowercase()) {
        Some(a) => {
            if !(1..=12).contains(&h) {
                return None;
            }
            let pm = a.starts_with('p');
            match (h, pm) {
                (12, false) => 0,
                (12, true) => 12,
                (h, true) => h + 12,
                (h, false) => h,
            }
        }
        None if h <= 23 => h,
        None => return None,
    };
    Some((h, m))
}

fn month_number(mon: &str) -> Option<i8> {
    let names = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let key = mon.get(..3)?.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == key)
        .and_then(|i| i8::try_from(i + 1).ok())
}

fn end_of_minute(date: Date, h: i8, m: i8, tz: &TimeZone) -> Option<i64> {
    let z = date.at(h, m, 0, 0).to_zoned(tz.clone()).ok()?;
    Some(z.timestamp().as_millisecond() + MINUTE_MS)
}

/// A date-and-time match. Without a year: this year, or next year if that is long past
/// (a "Jan 2" read on Dec 31).
fn dated(c: &Captures, now: &Zoned, tz: &TimeZone) -> Option<i64> {
    let (h, m) = clock(c)?;
    let month = month_number(c.name("mon")?.as_str())?;
    let day: i8 = c.name("day")?.as_str().parse().ok()?;
    match c.name("year") {
        Some(y) => {
            let year: i16 = y.as_str().parse().ok()?;
            end_of_minute(Date::new(year, month, day).ok()?, h, m, tz)
        }
        None => {
            let year = now.year();
            let at = end_of_minute(Date::new(year, month, day).ok()?, h, m, tz)?;
            if at < now.timestamp().as_millisecond() - DAY_MS {
                end_of_minute(Date::new(year + 1, month, day).ok()?, h, m, tz)
            } else {
                Some(at)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::Offset;

    fn tz(hours: i8) -> TimeZone {
        TimeZone::fixed(Offset::constant(hours))
    }

    /// ms of a civil time in `tz`.
    fn at(tz: &TimeZone, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
        Date::new(y, mo, d)
            .unwrap()
            .at(h, mi, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn codex_same_day_time_is_today_end_of_minute() {
        let z = tz(0);
        let now = at(&z, 2026, 11, 24, 6, 0);
        let line = "ERROR: You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 7:37 AM.";
        assert_eq!(
            parse_reset(line, now, &z),
            Some(at(&z, 2026, 11, 24, 7, 38))
        );
        assert_eq!(
            parse_reset(
                "You’ve hit your usage limit. Try again at 7:37 PM.",
                now,
                &z
            ),
            Some(at(&z, 2026, 11, 24, 19, 38))
        );
    }

    #[test]
    fn uses_the_given_time_zone() {
        let z = tz(-5);
        let now = at(&z, 2026, 11, 24, 6, 0);
        let got = parse_reset("Try again at 7:37 AM.", now, &z).unwrap();
        assert_eq!(got, at(&tz(0), 2026, 11, 24, 12, 38));
    }

    #[test]
    fn time_earlier_today_means_tomorrow_unless_it_just_passed() {
        let z = tz(2);
        let now = at(&z, 2026, 11, 24, 20, 0);
        assert_eq!(
            parse_reset("try again at 7:37 AM", now, &z),
            Some(at(&z, 2026, 11, 25, 7, 38))
        );
        // Printed 19:58, read at 20:00: the reset has just passed; not a day away.
        assert_eq!(
            parse_reset("try again at 7:58 PM", now, &z),
            Some(at(&z, 2026, 11, 24, 19, 59))
        );
        // Across the end of a month and a year.
        let now = at(&z, 2026, 12, 31, 23, 50);
        assert_eq!(
            parse_reset("Try again at 12:05 AM.", now, &z),
            Some(at(&z, 2027, 1, 1, 0, 6))
        );
    }

    #[test]
    fn codex_other_date_form_with_ordinal_and_year() {
        let z = tz(0);
        let now = at(&z, 2026, 11, 24, 6, 0);
        for (line, want) in [
            (
                "You’ve hit your usage limit. Try again at Nov 26th, 2026 7:37 AM.",
                at(&z, 2026, 11, 26, 7, 38),
            ),
            (
                "... or try again at Dec 1st, 2026 12:05 PM.",
                at(&z, 2026, 12, 1, 12, 6),
            ),
            (
                "try again at Jan 2nd, 2027 12:00 AM.",
                at(&z, 2027, 1, 2, 0, 1),
            ),
            (
                "Try again at Nov 23rd, 2026 9:00 PM.",
                at(&z, 2026, 11, 23, 21, 1),
            ),
        ] {
            assert_eq!(parse_reset(line, now, &z), Some(want), "{line}");
        }
    }

    #[test]
    fn time_first_with_on_date_and_no_year() {
        let z = tz(0);
        let now = at(&z, 2026, 11, 24, 6, 0);
        assert_eq!(
            parse_reset("try again at 7:37 PM on Nov 26", now, &z),
            Some(at(&z, 2026, 11, 26, 19, 38))
        );
        // "Jan 2" read on Dec 31 is next year's.
        let now = at(&z, 2026, 12, 31, 6, 0);
        assert_eq!(
            parse_reset("try again at Jan 2 9:15 AM", now, &z),
            Some(at(&z, 2027, 1, 2, 9, 16))
        );
        assert_eq!(
            parse_reset("try again at 9:15 AM on January 2nd", now, &z),
            Some(at(&z, 2027, 1, 2, 9, 16))
        );
    }

    #[test]
    fn durations() {
        let now = 1_000_000;
        let z = tz(0);
        let cases = [
            ("try again in 2 days 3 hours", 2 * DAY_MS + 3 * 3_600_000),
            ("Try again in 1h 30m.", 90 * MINUTE_MS),
            ("try again in 45 minutes", 45 * MINUTE_MS),
            ("Rate limit reached. Please try again in 1.5s.", 1500),
            ("try again in 120ms", 120),
            (
                "resets in 1 day, 2 hours and 5 minutes",
                DAY_MS + 2 * 3_600_000 + 5 * MINUTE_MS,
            ),
            ("try again in 30 seconds", 30_000),
        ];
        for (line, d) in cases {
            assert_eq!(parse_reset(line, now, &z), Some(now + d), "{line}");
        }
    }

    #[test]
    fn raw_error_bodies() {
        let z = tz(0);
        assert_eq!(
            parse_reset(
                r#"{"error":{"type":"usage_limit_reached","resets_at":1764000000,"resets_in_seconds":5}}"#,
                0,
                &z
            ),
            Some(1_764_000_000_000)
        );
        assert_eq!(
            parse_reset(r#"{"resets_in_seconds": 300}"#, 1000, &z),
            Some(301_000)
        );
    }

    #[test]
    fn nothing_to_parse_or_nonsense() {
        let z = tz(0);
        let now = at(&z, 2026, 11, 24, 6, 0);
        for line in [
            "You’ve hit your usage limit. Try again later.",
            "try again at 13:37 PM",
            "try again at 7:99 AM",
            "try again at Feb 30th, 2026 7:00 AM",
            "try again at noon",
            "the meeting is at 7:37 AM",
            "",
        ] {
            assert_eq!(parse_reset(line, now, &z), None, "{line}");
        }
        // 24-hour clocks are read too.
        assert_eq!(
            parse_reset("try again at 19:05", now, &z),
            Some(at(&z, 2026, 11, 24, 19, 6))
        );
    }

    proptest::proptest! {
        /// Whatever Codex (or anything else) prints, parsing never panics, and a clock time is
        /// never read as more than a year and a day away.
        #[test]
        fn never_panics_and_stays_near(text in "\\PC{0,80}", tail in "[a-z .]{0,40}", h in 0u8..30, m in 0u8..70, now in 0i64..4_000_000_000_000) {
            let z = tz(3);
            let _ = parse_reset(&text, now, &z);
            let line = format!("try again at {h}:{m:02} PM {tail}");
            if let Some(at) = parse_reset(&line, now, &z) {
                proptest::prop_assert!(at >= now - JUST_PASSED_MS && at <= now + 367 * DAY_MS);
            }
        }
    }
}
