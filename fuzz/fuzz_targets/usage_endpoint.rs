//! The usage endpoint's answer (`GET /backend-api/wham/usage`) as the backend sends it: any bytes
//! must parse or be refused without a panic, and what parses must survive the forecast, the
//! answer written back for Codex (integers, read back again) and the merge into known usage.
#![no_main]

use cao::policy::forecast::{account_forecast, pool_forecast};
use cao::policy::usage::newest_wins;
use cao::policy::usage_endpoint::{endpoint_body, from_endpoint, spent_body};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(snap) = from_endpoint(data, NOW) else {
        return;
    };
    for now in [NOW, NOW + 3_600_000, 0, i64::MAX / 2] {
        let body = endpoint_body(Some(&snap), now);
        for k in ["primary_window", "secondary_window"] {
            let w = &body["rate_limit"][k];
            if !w.is_null() {
                for f in ["used_percent", "limit_window_seconds", "reset_after_seconds", "reset_at"] {
                    assert!(w[f].is_i64(), "{f} is not an integer: {}", w[f]);
                }
            }
        }
        assert!(from_endpoint(body.to_string().as_bytes(), now).is_ok());
        let _ = spent_body(Some(&snap), Some(now.saturating_add(1)), now);
        let _ = account_forecast(&snap, now);
    }
    let mut known = None;
    newest_wins(&mut known, snap.clone());
    let mut later = snap;
    later.seen_at_ms = NOW + 120_000;
    newest_wins(&mut known, later);
    if let Some(k) = &known {
        let _ = pool_forecast(&[k, k], NOW + 120_000);
    }
});
