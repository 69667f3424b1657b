//! What the load examples (`sse_load`, `ws_load`) share: their common options, one clock for
//! stamps sent by the in-process upstream and read by the clients, and a process's memory from
//! /proc.

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

/// The options both load examples take: the port of the in-process upstream, the target
/// (default: that upstream itself, the direct baseline), the answer's shape (`--events` frames or
/// events, one every `--interval-ms`) and whose memory to read (`--rss-pid`).
pub struct LoadArgs {
    pub upstream_port: u16,
    pub target: Option<String>,
    pub events: u32,
    pub interval_ms: u64,
    pub rss_pid: Option<u32>,
}

/// Read `--KEY VALUE` options: the shared ones into a [`LoadArgs`], the others (and the bare
/// `flags`, with an empty value) handed to `own`, which panics on one it does not know.
pub fn parse(
    mut args: impl Iterator<Item = String>,
    flags: &[&str],
    mut own: impl FnMut(&str, String),
) -> LoadArgs {
    let mut a = LoadArgs {
        upstream_port: 0,
        target: None,
        events: 20,
        interval_ms: 500,
        rss_pid: None,
    };
    while let Some(k) = args.next() {
        if flags.contains(&k.as_str()) {
            own(&k, String::new());
            continue;
        }
        let v = args.next().unwrap_or_default();
        match k.as_str() {
            "--upstream-port" => a.upstream_port = v.parse().expect("port"),
            "--target" => a.target = Some(v),
            "--events" => a.events = v.parse().expect("events"),
            "--interval-ms" => a.interval_ms = v.parse().expect("interval"),
            "--rss-pid" => a.rss_pid = Some(v.parse().expect("pid")),
            _ => own(&k, v),
        }
    }
    a
}
