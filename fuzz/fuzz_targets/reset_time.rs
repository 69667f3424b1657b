//! The Codex reset-time parser ("try again at 7:37 AM", "resets in 2h", JSON resets_at) on
//! arbitrary lines, at any plausible "now", in UTC and in a zone with DST.
#![no_main]

use cao::policy::reset_time::parse_reset;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    // now: somewhere between 1970 and ~2096, from the first 4 bytes.
    let now_ms = i64::from(u32::from_le_bytes([data[0], data[1], data[2], data[3]])) * 1000;
    let Ok(line) = std::str::from_utf8(&data[4..]) else {
        return;
    };
    let _ = parse_reset(line, now_ms, &TimeZone::UTC);
    if let Ok(tz) = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3") {
        let _ = parse_reset(line, now_ms, &tz);
    }
});
