//! The quota classifier on arbitrary Codex output lines, with an arbitrary user pattern from
//! config.toml (first line of the input): a bad or huge pattern must be refused, never panic.
#![no_main]

use cao::policy::quota::QuotaClassifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, lines) = text.split_once('\n').unwrap_or((text, ""));
    let builtin = QuotaClassifier::builtin();
    let user = QuotaClassifier::new(&[pattern.to_string()]);
    for line in lines.lines() {
        let b = builtin.is_quota(line);
        if let Ok(u) = &user {
            // Extra patterns only add matches.
            assert!(!b || u.is_quota(line));
        }
    }
});
