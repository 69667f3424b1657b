//! Time formatting shared by every view: durations ("3h 12m"), relative times ("in 3h 12m",
//! "5m ago"), ISO 8601 (as JavaScript's `toISOString`, for JSON and reports) and local wall-clock
//! times for people.

use jiff::tz::TimeZone;

/// A duration in the TypeScript tool's style: `45s`, `5m 3s`, `3h 12m`, `2d 4h` (two units at most,
/// zero parts dropped). Negative durations count as zero. The one duration formatter: its body
/// is the leaf [`crate::duration::words`], so that `policy`'s messages, which may not import
/// `render`, say a duration the same way.
pub fn duration(ms: i64) -> String {
    crate::duration::words(ms)
}

/// `in 3h 12m`, `5m ago`, or `now` within five seconds.
pub fn relative(ts_ms: i64, now_ms: i64) -> String {
    let diff = ts_ms.saturating_sub(now_ms);
    if diff.abs() < 5_000 {
        "now".to_string()
    } else if diff > 0 {
        format!("in {}", duration(diff))
    } else {
        format!("{} ago", duration(-diff))
    }
}

/// `2026-11-24T21:30:00.000Z`, exactly like JavaScript's `Date.prototype.toISOString`.
pub fn iso(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!(
            "{}.{:03}Z",
            t.strftime("%Y-%m-%dT%H:%M:%S"),
            ms.rem_euclid(1000)
        ),
        Err(_) => ms.to_string(),
    }
}

/// `2026-11-24 21:30 UTC` in the given time zone (the user's, for human views).
pub fn local(ms: i64, tz: &TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => "(out of range)".to_string(),
    }
}

/// `at 14:05 (in 2h 3m)` in `tz`; the date is added when it is not today there.
pub fn clock_with_relative(ms: i64, now_ms: i64, tz: &TimeZone) -> String {
    let (Ok(t), Ok(n)) = (
        jiff::Timestamp::from_millisecond(ms),
        jiff::Timestamp::from_millisecond(now_ms),
    ) else {
        return "at an unknown time".into();
    };
    let t = t.to_zoned(tz.clone());
    let clock = if t.date() == n.to_zoned(tz.clone()).date() {
        t.strftime("%H:%M").to_string()
    } else {
        t.strftime("%b %-d %H:%M").to_string()
    };
    format!("at {clock} ({})", relative(ms, now_ms))
}

/// `2026-11-24T21:30:00.000Z (in 3h 12m)`, or `(unknown)`.
pub fn iso_with_relative(ts_ms: Option<i64>, now_ms: i64) -> String {
    match ts_ms {
        None => "(unknown)".to_string(),
        Some(ts) => format!("{} ({})", iso(ts), relative(ts, now_ms)),
    }
}

/// `in 3h 12m (2026-11-24 21:30 UTC)`, or `fallback`.
pub fn relative_with_local(
    ts_ms: Option<i64>,
    now_ms: i64,
    tz: &TimeZone,
    fallback: &str,
) -> String {
    match ts_ms {
        None => fallback.to_string(),
        Some(ts) => format!("{} ({})", relative(ts, now_ms), local(ts, tz)),
    }
}

/// `2026-11-24 21:30 UTC (in 3h 12m)`: the wall-clock time first, for a moment people wait for.
pub fn local_with_relative(ts_ms: i64, now_ms: i64, tz: &TimeZone) -> String {
    format!("{} ({})", local(ts_ms, tz), relative(ts_ms, now_ms))
}

/// `2026-11-24 21:30 UTC (in 3h 12m)` against the clock now, in the user's zone: for log lines
/// and live summaries, which have no render options.
pub fn moment_from_now(ts_ms: i64) -> String {
    local_with_relative(ts_ms, crate::clock::now_ms(), &super::local_tz())
}

/// Token expiry in few words: `unknown`, `expired`, or `in 3h 12m`.
pub fn expiry_short(ts_ms: Option<i64>, now_ms: i64) -> String {
    match ts_ms {
        None => "unknown".to_string(),
        Some(ts) if ts <= now_ms => "expired".to_string(),
        Some(ts) => format!("in {}", duration(ts - now_ms)),
    }
}

/// An active cooldown in few words: `none` or `in 12m`.
pub fn cooldown_short(ts_ms: Option<i64>, now_ms: i64) -> String {
    match ts_ms {
        Some(ts) if ts > now_ms => format!("in {}", duration(ts - now_ms)),
        _ => "none".to_string(),
    }
}

/// A past (or future) event in few words: `none`, `5m ago` or `in 5m`.
pub fn event_short(ts_ms: Option<i64>, now_ms: i64) -> String {
    match ts_ms {
        None => "none".to_string(),
        Some(ts) if ts <= now_ms => format!("{} ago", duration(now_ms - ts)),
        Some(ts) => format!("in {}", duration(ts - now_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_carry_the_date_only_when_it_is_not_today() {
        let now = 1_764_590_400_000; // 2025-12-01 12:00 UTC
        let tz = TimeZone::UTC;
        assert_eq!(
            clock_with_relative(now + 2 * 3_600_000 + 3 * 60_000, now, &tz),
            "at 14:03 (in 2h 3m)"
        );
        assert_eq!(
            clock_with_relative(now + 30 * 3_600_000, now, &tz),
            "at Dec 2 18:00 (in 1d 6h)"
        );
        assert_eq!(
            clock_with_relative(i64::MAX, now, &tz),
            "at an unknown time"
        );
    }

    #[test]
    fn relative_times() {
        let now = 1_800_000_000_000;
        assert_eq!(relative(now + 4_999, now), "now");
        assert_eq!(relative(now - 4_999, now), "now");
        assert_eq!(relative(now + 11_520_000, now), "in 3h 12m");
        assert_eq!(relative(now - 300_000, now), "5m ago");
    }

    #[test]
    fn iso_matches_javascript() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
    }

    #[test]
    fn local_time_in_a_zone() {
        assert_eq!(
            local(1_767_225_600_000, &TimeZone::UTC),
            "2026-01-01 00:00 UTC"
        );
    }

    #[test]
    fn short_forms() {
        let now = 1_000_000_000;
        assert_eq!(expiry_short(None, now), "unknown");
        assert_eq!(expiry_short(Some(now), now), "expired");
        assert_eq!(expiry_short(Some(now + 90_000), now), "in 1m 30s");
        assert_eq!(cooldown_short(Some(now - 1), now), "none");
        assert_eq!(cooldown_short(Some(now + 60_000), now), "in 1m");
        assert_eq!(event_short(None, now), "none");
        assert_eq!(event_short(Some(now - 120_000), now), "2m ago");
        assert_eq!(iso_with_relative(None, now), "(unknown)");
    }
}
