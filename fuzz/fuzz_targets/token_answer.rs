//! The token endpoint's answer, as any server (or a broken connection) may send it: whatever
//! the bytes, nothing panics, every 2xx counts the refresh token as spent, and a token cao
//! would save or put on a request is a valid header value.
#![no_main]

use cao::policy::token_answer::{TokenAnswer, interpret, is_header_safe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let status = 100 + u16::from(head) * 2;
    let complete = head & 1 == 0;
    match interpret(status, body, complete) {
        TokenAnswer::Spent(r) => {
            assert!((200..300).contains(&status), "only a 2xx spends");
            for t in [&r.access_token, &r.refresh_token, &r.id_token]
                .into_iter()
                .flatten()
            {
                assert!(is_header_safe(t));
            }
            if r.flaw.is_none() {
                assert!(r.access_token.is_some() && r.refresh_token.is_some() && complete);
            }
        }
        TokenAnswer::Rejected(_) | TokenAnswer::Transient(_) => {
            assert!(!(200..300).contains(&status), "a 2xx is always spent");
        }
    }
});
