//! Responses-over-WebSocket frames as the gateway reads them (`cao::policy::ws`): any server
//! frame is classified without a panic, any client frame parsed, and a delta built on a frame
//! expands from the mirror into a full request that keeps every item, in order.
#![no_main]

use cao::policy::ws::{Mirror, Request, classify, error_headers};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = classify(text, 1_800_000_000_000);
    let _ = error_headers(text);
    let Some(req) = Request::parse(text) else {
        return;
    };
    let _ = req.without_encrypted_reasoning();
    let mut m = Mirror::default();
    let Some(full) = m.expand(&req) else {
        return;
    };
    m.record(&full, "resp_f", vec![json!({"type": "message"})]);
    let delta = Request::parse(
        &json!({"type": "response.create", "previous_response_id": "resp_f",
                "input": [{"type": "message", "n": 1}]})
        .to_string(),
    );
    if let (Some(d), Some(_)) = (delta, m.response_id()) {
        let e = m.expand(&d).map(|r| r.input().to_vec()).unwrap_or_default();
        let mut want: Vec<Value> = full.input().to_vec();
        want.push(json!({"type": "message"}));
        want.push(json!({"type": "message", "n": 1}));
        assert_eq!(e, want, "expansion lost or reordered items");
    }
});
