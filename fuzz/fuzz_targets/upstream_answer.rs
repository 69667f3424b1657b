//! Classifying an upstream answer (status + 429 body from the ChatGPT backend, or from anything
//! answering on the configured base URL), and the cooldown the gateway derives from it.
#![no_main]

use cao::policy::upstream::{Outcome, classify, usage_cooldown_until};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let body = &data[2..];
    let outcome = classify(status, Some(body), NOW);
    let _ = classify(429, Some(body), NOW);
    if let Outcome::UsageLimit { resets_at_ms } = classify(429, Some(body), NOW) {
        let until = usage_cooldown_until(resets_at_ms, NOW, 900);
        assert!(until > NOW);
    }
    if status != 429 {
        assert!(!matches!(outcome, Outcome::UsageLimit { .. }));
    }
});
