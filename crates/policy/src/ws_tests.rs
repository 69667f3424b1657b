use super::*;

const NOW: i64 = 1_800_000_000_000;

fn req(v: Value) -> Request {
    Request::parse(&v.to_string()).unwrap_or_else(|| Request { body: Map::new() })
}

#[test]
fn a_delta_expands_from_the_last_request_and_its_output() {
    let mut m = Mirror::default();
    let first = req(json!({"type": CREATE, "model": "m", "input": [{"n": 1}]}));
    assert_eq!(
        m.expand(&first),
        Some(first.clone()),
        "a full request is its own full form"
    );
    m.record(&first, "resp_1", vec![json!({"out": 1})]);
    let delta = req(
        json!({"type": CREATE, "model": "m", "previous_response_id": "resp_1",
                           "input": [{"n": 2}]}),
    );
    let full = m.expand(&delta).unwrap_or_else(|| req(json!({})));
    assert_eq!(full.previous_response_id(), None);
    assert_eq!(
        full.input(),
        &[json!({"n": 1}), json!({"out": 1}), json!({"n": 2})]
    );
    assert_eq!(full.body["model"], "m");
    m.record(&full, "resp_2", vec![]);
    let next = req(json!({"type": CREATE, "previous_response_id": "resp_2", "input": [{"n": 3}]}));
    assert_eq!(m.expand(&next).map(|r| r.input().len()), Some(4));
    let unknown = req(json!({"type": CREATE, "previous_response_id": "resp_1", "input": []}));
    assert_eq!(
        m.expand(&unknown),
        None,
        "only the last response can be continued"
    );
    m.clear();
    assert_eq!(m.expand(&next), None);
}

#[test]
fn the_prewarm_is_a_baseline_like_any_other() {
    let mut m = Mirror::default();
    let warm = req(json!({"type": CREATE, "generate": false, "input": []}));
    assert!(warm.is_prewarm());
    m.record(&warm, "resp_w", vec![]);
    let turn = req(json!({"type": CREATE, "previous_response_id": "resp_w", "input": [{"n": 1}]}));
    assert!(!turn.is_prewarm());
    let full = m.expand(&turn).unwrap_or_else(|| req(json!({})));
    assert_eq!(full.input(), &[json!({"n": 1})]);
}

#[test]
fn too_big_a_conversation_is_not_kept() {
    let mut m = Mirror::default();
    let big = "x".repeat(MAX_MIRROR_BYTES + 1);
    let r = req(json!({"type": CREATE, "input": [{"text": big}]}));
    m.record(&r, "resp_1", vec![]);
    assert_eq!(m.response_id(), None);
}

#[test]
fn frames_are_classified_by_their_meaning() {
    assert_eq!(
        classify(r#"{"type":"response.created","response":{"id":"r"}}"#, NOW),
        Meaning::Preamble
    );
    assert_eq!(
        classify(r#"{"type":"response.output_text.delta","delta":"hi"}"#, NOW),
        Meaning::Output
    );
    assert_eq!(
        classify(
            r#"{"type":"response.output_item.done","item":{"type":"message"}}"#,
            NOW
        ),
        Meaning::Item(json!({"type": "message"}))
    );
    assert_eq!(
        classify(
            r#"{"type":"response.completed","response":{"id":"resp_9"}}"#,
            NOW
        ),
        Meaning::Completed {
            id: Some("resp_9".into())
        }
    );
    assert_eq!(
        classify(r#"{"type":"codex.rate_limits"}"#, NOW),
        Meaning::Preamble
    );
    assert_eq!(classify("not json", NOW), Meaning::Preamble);
    // "type" not first: still understood.
    assert_eq!(
        classify(
            r#"{"response":{"id":"r"},"type":"response.completed"}"#,
            NOW
        ),
        Meaning::Completed {
            id: Some("r".into())
        }
    );
}

#[test]
fn error_frames_say_what_to_do() {
    let limit = r#"{"type":"error","status":429,"error":{"type":"usage_limit_reached","resets_at":1800000600}}"#;
    assert_eq!(
        classify(limit, NOW),
        Meaning::Failed(Failure::Upstream(Outcome::UsageLimit {
            resets_at_ms: Some(1_800_000_600_000)
        }))
    );
    let age = r#"{"type":"error","error":{"code":"websocket_connection_limit_reached"}}"#;
    assert_eq!(
        classify(age, NOW),
        Meaning::Failed(Failure::ConnectionLimit)
    );
    let lost = r#"{"type":"error","status":400,"error":{"code":"previous_response_not_found"}}"#;
    assert_eq!(
        classify(lost, NOW),
        Meaning::Failed(Failure::PreviousNotFound)
    );
    let enc = r#"{"type":"error","status":400,"error":{"code":"invalid_encrypted_content"}}"#;
    assert_eq!(
        classify(enc, NOW),
        Meaning::Failed(Failure::InvalidEncryptedContent)
    );
    let auth = r#"{"type":"error","status":401,"error":{"message":"bad token"}}"#;
    assert_eq!(
        classify(auth, NOW),
        Meaning::Failed(Failure::Upstream(Outcome::AuthFailed))
    );
    let ctx = r#"{"type":"error","status":400,"error":{"code":"context_length_exceeded"}}"#;
    assert_eq!(classify(ctx, NOW), Meaning::Failed(Failure::Other));
    let failed =
        r#"{"type":"response.failed","response":{"error":{"code":"server_is_overloaded"}}}"#;
    assert_eq!(
        classify(failed, NOW),
        Meaning::Failed(Failure::Upstream(Outcome::ServerError))
    );
    let failed_other =
        r#"{"type":"response.failed","response":{"error":{"code":"invalid_prompt"}}}"#;
    assert_eq!(classify(failed_other, NOW), Meaning::Failed(Failure::Other));
}

#[test]
fn error_headers_are_read_as_text() {
    let f =
        r#"{"type":"error","headers":{"x-codex-primary-used-percent":100,"x-a":"b","x-n":null}}"#;
    let h = error_headers(f);
    assert!(h.contains(&("x-codex-primary-used-percent".into(), "100".into())));
    assert!(h.contains(&("x-a".into(), "b".into())));
    assert_eq!(h.len(), 2);
    assert!(error_headers("[]").is_empty());
}

#[test]
fn encrypted_reasoning_can_be_stripped() {
    let r = req(json!({"type": CREATE, "input": [
        {"type": "message"},
        {"type": "reasoning", "encrypted_content": "enc"},
        {"type": "reasoning", "summary": []}
    ]}));
    let s = r
        .without_encrypted_reasoning()
        .unwrap_or_else(|| req(json!({})));
    assert_eq!(s.input().len(), 2);
    assert_eq!(s.without_encrypted_reasoning(), None);
}
