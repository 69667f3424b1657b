//! Rate-limit headers and `codex.rate_limits` SSE events as upstream sends them: input lines
//! `name: value` are headers, lines `data: ...` are event payloads. The snapshots must also
//! survive every query and merge the gateway and the dashboard make.
#![no_main]

use cao::policy::usage::from_headers;
use cao::policy::usage_event::from_event;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut headers = Vec::new();
    let mut snaps = Vec::new();
    for line in text.lines() {
        if let Some(payload) = line.strip_prefix("data:") {
            snaps.extend(from_event(payload.trim_start(), NOW));
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k, v));
        }
    }
    snaps.extend(from_headers(headers.iter().copied(), NOW));
    let mut merged: Option<cao::policy::usage::UsageSnapshot> = None;
    for s in snaps {
        for now in [NOW, NOW + 3_600_000, 0] {
            let _ = s.fullness(now);
            let _ = s.next_reset_ms(now);
            let _ = s.spent_until_ms(now);
            for w in s.routing_windows() {
                let _ = w.used_at(now);
                let _ = w.reset_in_secs(now);
                let _ = w.display_name();
            }
        }
        match &mut merged {
            Some(m) => m.merge(s),
            None => merged = Some(s),
        }
    }
});
