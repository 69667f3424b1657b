//! auth.json as Codex (or a hand edit, or a half-written file) may leave it: parse, read tokens
//! and claims, replace the tokens, write and re-read. Nothing may panic, and a rewrite must keep
//! the tokens it set.
#![no_main]

use cao::store::auth_file::{AuthFile, TokenSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut file) = AuthFile::parse(text) else {
        return;
    };
    let _ = file.tokens();
    let _ = file.api_key();
    let _ = file.last_refresh_ms();
    let _ = file.claims();
    let new = TokenSet {
        id_token: Some("id.x.y".into()),
        access_token: "acc.x.y".into(),
        refresh_token: Some("rt-2".into()),
        account_id: Some("acct".into()),
    };
    file.set_tokens(&new, "2026-11-24T00:00:00Z");
    let again = AuthFile::parse(&file.to_json_pretty()).expect("cao's own output must parse");
    assert_eq!(again.tokens().as_ref(), Some(&new), "set_tokens must stick");
    assert!(again.last_refresh_ms().is_some());
});
