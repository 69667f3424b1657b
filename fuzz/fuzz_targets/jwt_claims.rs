//! `decode_claims` on arbitrary text (tokens come from auth.json files and token endpoints we do
//! not control), and the round trip through `make_unsigned_jwt` for any JSON object.
#![no_main]

use cao::store::auth_file::{decode_claims, make_unsigned_jwt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = decode_claims(text);
    // Treat the input as a claims object too: whatever JSON object we sign must decode again.
    if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str::<serde_json::Value>(text) {
        let jwt = make_unsigned_jwt(&v);
        assert!(
            decode_claims(&jwt).is_some(),
            "an unsigned JWT of an object must decode"
        );
    }
});
