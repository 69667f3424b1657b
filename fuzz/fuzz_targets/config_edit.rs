//! Routing a user's Codex config.toml through the gateway and back. For any text that parses,
//! `disable(enable(x))` must give back exactly `x`, enabling twice must not stack, and a file
//! the user edited after `enable` must still be handled without a panic.
#![no_main]

use cao::codex::config_edit::{disable, enable};
use libfuzzer_sys::fuzz_target;

const URL: &str = "http://127.0.0.1:4319";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The input may carry a user edit after a NUL: "original\0appended after enable".
    let (original, edit) = text.split_once('\0').unwrap_or((text, ""));
    let Ok(on) = enable(Some(original), None, URL) else {
        return;
    };
    let off = disable(Some(&on.text), &on.record).expect("undoing our own edit");
    assert!(off.exact);
    assert_eq!(off.text.as_deref(), Some(original));

    // Enable again on top of the first (new port): still one level to undo.
    let again = enable(Some(&on.text), Some(&on.record), "http://127.0.0.1:5000")
        .expect("re-enabling our own output");
    let off2 = disable(Some(&again.text), &again.record).expect("undo re-enable");
    assert_eq!(off2.text.as_deref(), Some(original));

    // The user edits the routed file; disable must cope (error or text), not panic.
    if !edit.is_empty() {
        let edited = format!("{}{}", on.text, edit);
        let _ = disable(Some(&edited), &on.record);
    }
    let _ = disable(None, &on.record);
});
