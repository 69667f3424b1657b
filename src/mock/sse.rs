//! The SSE body of a mock `POST /responses`: the Responses API event sequence the Codex CLI
//! (0.169) needs to finish a turn.
//!
//! Codex's SSE reader (codex-rs `codex-api/src/sse/responses.rs`) acts on `response.created`,
//! `response.output_item.added`, `response.output_text.delta`, `response.output_item.done`
//! (a `ResponseItem`, here an assistant `message` with `output_text` content) and
//! `response.completed` (which must carry `response.id`; `usage` is optional). A stream that
//! ends without `response.completed` is an error to Codex ("stream closed before
//! response.completed").

use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::json;

/// How the stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// All events, then a clean end.
    Complete,
    /// After this many events, go silent until the client hangs up.
    StallAfter(u32),
    /// After this many events, drop the connection mid-stream.
    DisconnectAfter(u32),
}

/// The event texts (`event: ...\ndata: {...}\n\n`) of one successful answer.
pub fn response_events(response_no: u64, text: &str, deltas: u32) -> Vec<Bytes> {
    response_values(response_no, text, deltas)
        .into_iter()
        .map(|v| {
            let kind = v["type"].as_str().unwrap_or("message").to_string();
            Bytes::from(format!("event: {kind}\ndata: {v}\n\n"))
        })
        .collect()
}

/// The events of one successful answer as JSON values (the WebSocket mock sends each as a text
/// frame).
pub fn response_values(response_no: u64, text: &str, deltas: u32) -> Vec<serde_json::Value> {
    let resp_id = format!("resp_mock_{response_no}");
    let msg_id = format!("msg_mock_{response_no}");
    let mut out = Vec::new();
    let mut push = |v: serde_json::Value| out.push(v);
    push(json!({"type": "response.created", "sequence_number": 0,
        "response": {"id": resp_id, "object": "response", "status": "in_progress", "output": []}}));
    push(
        json!({"type": "response.output_item.added", "output_index": 0,
        "item": {"type": "message", "id": msg_id, "role": "assistant", "status": "in_progress", "content": []}}),
    );
    for piece in split_text(text, deltas.max(1)) {
        push(
            json!({"type": "response.output_text.delta", "item_id": msg_id, "output_index": 0,
            "content_index": 0, "delta": piece}),
        );
    }
    push(
        json!({"type": "response.output_item.done", "output_index": 0,
        "item": {"type": "message", "id": msg_id, "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": text, "annotations": []}]}}),
    );
    push(json!({"type": "response.completed",
        "response": {"id": resp_id, "object": "response", "status": "completed",
            "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": 18}}}));
    out
}

/// The events of a response that fails before any output: `response.created`, then
/// `response.failed` with `error`.
pub fn failed_events(response_no: u64, error: &serde_json::Value) -> Vec<Bytes> {
    let resp_id = format!("resp_mock_{response_no}");
    [
        json!({"type": "response.created", "sequence_number": 0,
            "response": {"id": resp_id, "object": "response", "status": "in_progress", "output": []}}),
        json!({"type": "response.failed", "sequence_number": 1,
            "response": {"id": resp_id, "object": "response", "status": "failed", "output": [],
                         "error": error}}),
    ]
    .into_iter()
    .map(|v| {
        let kind = v["type"].as_str().unwrap_or("message").to_string();
        Bytes::from(format!("event: {kind}\ndata: {v}\n\n"))
    })
    .collect()
}

/// The status a failed stream's `error` stands for, as the mock records it: 429 for a usage or
/// rate limit, else 503.
pub fn failure_status(error: &serde_json::Value) -> u16 {
    match error.get("code").and_then(serde_json::Value::as_str) {
        Some("usage_limit_reached" | "rate_limit_exceeded") => 429,
        _ => 503,
    }
}

/// Split `text` into `n` pieces on char boundaries (some may be empty for short texts).
fn split_text(text: &str, n: u32) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n as usize;
    let per = chars.len().div_ceil(n).max(1);
    let mut out: Vec<String> = chars.chunks(per).map(|c| c.iter().collect()).collect();
    while out.len() < n {
        out.push(String::new());
    }
    out
}

/// A body stream yielding `events` with `delay` between them and the given ending.
pub fn event_stream(
    events: Vec<Bytes>,
    delay: Duration,
    ending: Ending,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(
        (events.into_iter(), 0u32),
        move |(mut iter, sent)| async move {
            match ending {
                Ending::StallAfter(n) if sent >= n => {
                    futures_util::future::pending::<()>().await;
                }
                Ending::DisconnectAfter(n) if sent >= n => {
                    // Let what was sent reach the wire first, as a real broken stream would.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let err = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "mock upstream: injected disconnect",
                    );
                    return Some((Err(err), (Vec::new().into_iter(), u32::MAX)));
                }
                _ => {}
            }
            if sent == u32::MAX {
                return None;
            }
            let next = iter.next()?;
            if sent > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some((Ok(next), (iter, sent + 1)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_ends_with_completed_and_carries_text() {
        let ev = response_events(7, "hello world", 3);
        let first = String::from_utf8_lossy(&ev[0]).to_string();
        assert!(first.starts_with("event: response.created\ndata: {"));
        let last = String::from_utf8_lossy(ev.last().map(|b| &b[..]).unwrap_or(b"")).to_string();
        assert!(last.contains("\"response.completed\"") && last.contains("resp_mock_7"));
        let deltas: String = ev
            .iter()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .filter(|s| s.starts_with("event: response.output_text.delta"))
            .filter_map(|s| {
                let data = s.split("data: ").nth(1)?.trim().to_string();
                let v: serde_json::Value = serde_json::from_str(&data).ok()?;
                v["delta"].as_str().map(str::to_string)
            })
            .collect();
        assert_eq!(deltas, "hello world");
        assert_eq!(ev.len(), 2 + 3 + 2);
    }

    #[test]
    fn split_handles_short_and_unicode_text() {
        assert_eq!(split_text("ab", 4), vec!["a", "b", "", ""]);
        assert_eq!(split_text("héllo", 2).concat(), "héllo");
    }
}
