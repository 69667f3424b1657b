//! How long, in words: the one duration formatter's pure core. A leaf with no imports, so that
//! `policy` (whose doctor messages say "resets in 2h 3m", "expires in 10 day(s)" and name a
//! "5h" window) and every view share it; views call [`words`] as
//! `cao::render::time::duration`, with the other time formats.

/// `45s`, `5m 3s`, `3h 12m`, `2d 4h`: two units at most, zero parts dropped (the TypeScript
/// tool's style). Negative durations count as zero.
pub fn words(ms: i64) -> String {
    let total = (ms.max(0)) / 1000;
    if total < 60 {
        return format!("{total}s");
    }
    let minutes = total / 60;
    if minutes < 60 {
        return two(minutes, "m", total % 60, "s");
    }
    let hours = minutes / 60;
    if hours < 24 {
        return two(hours, "h", minutes % 60, "m");
    }
    two(hours / 24, "d", hours % 24, "h")
}

/// `10 day(s)`: whole days, rounded down, for what is counted in days (a certificate's life).
/// Negative durations count as zero.
pub fn days(ms: i64) -> String {
    format!("{} day(s)", ms.max(0) / DAY_MS)
}

/// `5h`, `1d`, `45m`, `30d`, `90m`: a span in the largest unit it is a whole number of (minutes at
/// least), for a length that names a thing (a usage window), not time left. Negative spans count
/// as zero.
pub fn span(ms: i64) -> String {
    let minutes = ms.max(0) / MINUTE_MS;
    if minutes > 0 && minutes % (DAY_MS / MINUTE_MS) == 0 {
        format!("{}d", minutes / (DAY_MS / MINUTE_MS))
    } else if minutes > 0 && minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

fn two(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small > 0 {
        format!("{big}{big_unit} {small}{small_unit}")
    } else {
        format!("{big}{big_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_the_typescript_tool() {
        assert_eq!(words(-5), "0s");
        assert_eq!(words(59_999), "59s");
        assert_eq!(words(60_000), "1m");
        assert_eq!(words(303_000), "5m 3s");
        assert_eq!(words(3 * 3_600_000 + 12 * 60_000 + 59_000), "3h 12m");
        assert_eq!(words(3_600_000), "1h");
        assert_eq!(words(52 * 3_600_000), "2d 4h");
        assert_eq!(words(48 * 3_600_000), "2d");
    }

    #[test]
    fn whole_days_round_down() {
        assert_eq!(days(10 * DAY_MS), "10 day(s)");
        assert_eq!(days(10 * DAY_MS + DAY_MS - 1), "10 day(s)");
        assert_eq!(days(DAY_MS - 1), "0 day(s)");
        assert_eq!(days(-DAY_MS), "0 day(s)");
    }

    #[test]
    fn spans_in_their_largest_whole_unit() {
        assert_eq!(span(300 * MINUTE_MS), "5h");
        assert_eq!(span(1440 * MINUTE_MS), "1d");
        assert_eq!(span(43_200 * MINUTE_MS), "30d");
        assert_eq!(span(10_080 * MINUTE_MS), "7d");
        assert_eq!(span(45 * MINUTE_MS), "45m");
        assert_eq!(span(90 * MINUTE_MS), "90m");
        assert_eq!(span(0), "0m");
        assert_eq!(span(-MINUTE_MS), "0m");
    }
}
