//! The wall clock, read in one place. A leaf: every room above `policy` may read it, `policy`
//! never does (time is passed in).

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
