//! What the load examples (`sse_load`, `ws_load`) share: one clock for stamps sent by the
//! in-process upstream and read by the clients, and a process's memory from /proc.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the first call (the same clock in upstream and clients).
pub fn micros() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// "VmRSS / VmHWM" of a process in MB.
pub fn rss(pid: u32) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    format!(
        "{:.1} / {:.1}",
        kb("VmRSS:") / 1024.0,
        kb("VmHWM:") / 1024.0
    )
}
