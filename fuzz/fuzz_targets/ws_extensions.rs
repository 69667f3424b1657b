//! `Sec-WebSocket-Extensions` values as both sides of the gateway read them
//! (`cao::policy::ws_deflate`): any offer is answered or declined without a panic, an answer
//! is one the gateway's own client accepts (rendered and read back the same), and any answer
//! from a server is accepted or refused without a panic.
#![no_main]

use cao::policy::ws_deflate::{Wants, accept_answer, answer, offer, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let values: Vec<&str> = text.split('\n').collect();
    for wants in [
        Wants::default(),
        Wants {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        },
    ] {
        if let Some(a) = answer(&values, wants) {
            let back = accept_answer(&[render(&a).as_str()], &offer(Wants::default()));
            assert_eq!(back, Ok(Some(a)), "an answer the client cannot read back");
        }
        let _ = accept_answer(&values, &offer(wants));
    }
});
