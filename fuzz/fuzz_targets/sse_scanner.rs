//! The gateway's SSE scanner (finds `codex.rate_limits` events in an upstream stream that
//! arrives in arbitrary frames). Differential: feeding the same bytes split at any points must
//! find exactly what feeding them in one frame finds, and every payload found must be
//! something `from_event` can be asked about without a panic.
#![no_main]

use cao::gateway::pool::usage_tracker::SseScanner;
use cao::policy::usage_event::from_event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // The first two bytes pick the frame sizes (1..=64 bytes, cycling), the rest is the stream.
    let (sizes, stream) = data.split_at(2);
    let whole = SseScanner::default().feed(stream);

    let mut split = SseScanner::default();
    let mut found = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (usize::from(sizes[i % 2]) % 64 + 1).min(rest.len());
        let (frame, tail) = rest.split_at(n);
        found.extend(split.feed(frame));
        rest = tail;
        i += 1;
    }
    // Both ways keep an unfinished last line back; lines here are far below the scanner's limit.
    assert_eq!(found, whole, "frame boundaries changed what was found");
    for payload in &whole {
        let _ = from_event(payload, 1_800_000_000_000);
    }
});
