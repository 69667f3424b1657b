//! registry.json (shared with the TypeScript tool and hand edits): parse through the tolerant
//! raw shape; the result must already be normalized (valid, unique names; default in the list).
#![no_main]

use cao::policy::names;
use cao::store::Registry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reg) = Registry::from_json(text) else {
        return;
    };
    assert!(reg.accounts.iter().all(|a| names::is_valid(a)));
    for (i, a) in reg.accounts.iter().enumerate() {
        assert!(!reg.accounts[..i].contains(a), "duplicate {a:?}");
    }
    match &reg.default_account {
        Some(d) => assert!(reg.accounts.contains(d)),
        None => assert!(reg.accounts.is_empty()),
    }
    // What cao writes back reads as the same registry.
    let text = serde_json::to_string(&reg).expect("serialize");
    assert_eq!(Registry::from_json(&text).ok().as_ref(), Some(&reg));
});
