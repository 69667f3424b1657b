//! account_status.json (shared with the TypeScript tool): parse leniently, and what cao writes
//! back must read as the same value (no field lost or changed by a rewrite).
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
    assert_eq!(again, file, "a rewrite changed the status file");
});
