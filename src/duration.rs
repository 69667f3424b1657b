//! How long, in words: the one duration formatter's pure core. A leaf with no imports, so that
//! `policy` (whose doctor messages say "resets in 2h 3m") and every view share it; views call it
//! as [`crate::render::time::duration`], with the other time formats.

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
}
