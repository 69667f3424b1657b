//! Failover before the first byte of an HTTP event stream. Pure: bytes in, a verdict out.
//!
//! The backend can answer a model call `200 text/event-stream` and then fail it in its first
//! events (`response.failed` with `usage_limit_reached` or `server_is_overloaded`, or an
//! `error` event) before any output. Handed on, Codex would end the turn with an error while
//! another account could have served it. So the gateway holds the events that carry nothing
//! Codex acts on (`response.created`, `codex.rate_limits`, ...) until the first one that decides:
//! output (hand everything on), or such a failure (the request goes to the next account, and
//! Codex never sees this stream). The events mean what they mean over WebSocket, so each is
//! classified by [`super::ws::classify`].

use std::borrow::Cow;

use super::upstream::Outcome;
use super::ws::{self, Failure, Meaning};

/// Most bytes held back before deciding; past it the stream is handed on undecided (a
/// preamble that long is not one the gateway knows).
pub const MAX_HELD_BYTES: usize = 256 * 1024;

/// What the first events of a stream say.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Only preamble so far (or an unfinished event): read more.
    Undecided,
    /// Output, a completed response, or a failure that is Codex's to see: hand it all on.
    Deliver,
    /// A failure before any output that another account may not have.
    Fail(Outcome),
}

/// Judge the bytes of a stream received so far (`held`, from its start). `ended`: the stream
/// is over, so an unfinished last event is complete.
pub fn judge(held: &[u8], ended: bool, now_ms: i64) -> Verdict {
    let bytes = normalized(held);
    for data in each_event(&bytes, ended) {
        match ws::classify(&as_text(data), now_ms) {
            Meaning::Preamble => {}
            Meaning::Failed(Failure::Upstream(outcome)) => return Verdict::Fail(outcome),
            _ => return Verdict::Deliver,
        }
    }
    if ended || held.len() > MAX_HELD_BYTES {
        Verdict::Deliver
    } else {
        Verdict::Undecided
    }
}

/// The `data` of every complete event in `bytes` (its `data:` lines joined by newlines), in
/// order; the last one also when `ended`, though no blank line closed it.
pub fn events(bytes: &[u8], ended: bool) -> Vec<String> {
    let bytes = normalized(bytes);
    each_event(&bytes, ended)
        .map(|d| as_text(d).into_owned())
        .collect()
}

/// `bytes` with `\r\n` line ends made `\n` (borrowed when there is nothing to change). Bytes,
/// not text: the scans below are `memchr`'s, and only an event's data is checked as UTF-8.
fn normalized(bytes: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\r', bytes).is_none() {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(i) = memchr::memmem::find(rest, b"\r\n") {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\n');
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

/// An event's data as text (invalid UTF-8 replaced; borrowed when it is valid).
fn as_text(data: Cow<'_, [u8]>) -> Cow<'_, str> {
    match data {
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(b),
        },
        Cow::Owned(v) => Cow::Owned(
            String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()),
        ),
    }
}

/// Where the first blank line (`\n\n`) of `bytes` starts.
fn blank_line(bytes: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', bytes).find(|&i| bytes.get(i + 1) == Some(&b'\n'))
}

/// The lines of `block` (no line end; a last line without one too).
fn lines(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(block);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b'\n', r) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                (!r.is_empty()).then_some(r)
            }
        }
    })
}

/// The events of `bytes` one at a time, so a caller that decides on the first ones reads no
/// further (the data of a one-line event is borrowed, not copied).
fn each_event(bytes: &[u8], ended: bool) -> impl Iterator<Item = Cow<'_, [u8]>> {
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        loop {
            let r = rest?;
            let block = match blank_line(r) {
                Some(i) => {
                    let tail = &r[i + 2..];
                    rest = (!tail.is_empty()).then_some(tail);
                    &r[..i]
                }
                None => {
                    rest = None;
                    if !ended {
                        return None;
                    }
                    r
                }
            };
            let mut data = lines(block)
                .filter_map(|l| l.strip_prefix(b"data:"))
                .map(|d| d.strip_prefix(b" ").unwrap_or(d));
            let Some(first) = data.next() else { continue };
            return Some(match data.next() {
                None => Cow::Borrowed(first),
                Some(second) => {
                    let mut joined = [first, b"\n", second].concat();
                    for more in data {
                        joined.push(b'\n');
                        joined.extend_from_slice(more);
                    }
                    Cow::Owned(joined)
                }
            });
        }
    })
}

/// The body of the failure as the HTTP answer the client would have got for it, so the pass
/// loop treats it like one (a usage limit becomes the backend's 429 `usage_limit_reached`
/// with its reset, and the all-spent answer follows when every account is spent). `None`
/// when the stream itself is the better answer (an overload is left as upstream sent it).
pub fn failure_as_http(held: &[u8], now_ms: i64) -> Option<(u16, String)> {
    for data in events(held, true) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&data) else {
            continue;
        };
        let err = match v.get("type").and_then(serde_json::Value::as_str) {
            Some("error") => v.get("error").cloned(),
            Some("response.failed" | "response.incomplete") => {
                v.pointer("/response/error").cloned()
            }
            _ => continue,
        };
        let Some(err) = err else { continue };
        return match ws::failure_of(None, &err, now_ms) {
            Failure::Upstream(Outcome::UsageLimit { .. } | Outcome::RateLimited) => {
                Some((429, serde_json::json!({ "error": err }).to_string()))
            }
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn ev(kind: &str, data: &str) -> String {
        format!("event: {kind}\ndata: {data}\n\n")
    }

    const CREATED: &str = r#"{"type":"response.created","response":{"id":"r1"}}"#;
    const LIMITS: &str = r#"{"type":"codex.rate_limits","rate_limits":{}}"#;
    const FAILED_LIMIT: &str = r#"{"type":"response.failed","response":{"id":"r1","error":{"code":"usage_limit_reached","message":"spent","resets_at":1800003600}}}"#;
    const FAILED_OVERLOAD: &str = r#"{"type":"response.failed","response":{"id":"r1","error":{"code":"server_is_overloaded","message":"busy"}}}"#;
    const FAILED_CONTEXT: &str = r#"{"type":"response.failed","response":{"id":"r1","error":{"code":"context_length_exceeded","message":"too long"}}}"#;
    const ADDED: &str = r#"{"type":"response.output_item.added","item":{"type":"message"}}"#;

    #[test]
    fn a_usage_limit_before_any_output_moves_the_request() {
        let s = ev("response.created", CREATED)
            + &ev("codex.rate_limits", LIMITS)
            + &ev("response.failed", FAILED_LIMIT);
        assert_eq!(
            judge(s.as_bytes(), false, NOW),
            Verdict::Fail(Outcome::UsageLimit {
                resets_at_ms: Some(1_800_003_600_000)
            })
        );
        let (status, body) = failure_as_http(s.as_bytes(), NOW).unwrap_or_default();
        assert_eq!(status, 429);
        assert!(body.contains("usage_limit_reached"), "{body}");
    }

    #[test]
    fn an_overload_before_output_moves_but_keeps_its_stream_as_the_answer() {
        let s = ev("response.created", CREATED) + &ev("response.failed", FAILED_OVERLOAD);
        assert_eq!(
            judge(s.as_bytes(), false, NOW),
            Verdict::Fail(Outcome::ServerError)
        );
        assert_eq!(failure_as_http(s.as_bytes(), NOW), None);
    }

    #[test]
    fn output_first_is_delivered_even_if_a_failure_follows() {
        let s = ev("response.created", CREATED)
            + &ev("response.output_item.added", ADDED)
            + &ev("response.failed", FAILED_LIMIT);
        assert_eq!(judge(s.as_bytes(), false, NOW), Verdict::Deliver);
    }

    #[test]
    fn a_failure_that_is_not_the_accounts_is_codexs_to_see() {
        let s = ev("response.failed", FAILED_CONTEXT);
        assert_eq!(judge(s.as_bytes(), false, NOW), Verdict::Deliver);
    }

    #[test]
    fn a_preamble_alone_waits_for_more_until_the_stream_ends_or_grows_too_long() {
        let s = ev("response.created", CREATED);
        assert_eq!(judge(s.as_bytes(), false, NOW), Verdict::Undecided);
        assert_eq!(judge(s.as_bytes(), true, NOW), Verdict::Deliver);
        let long = s.repeat(MAX_HELD_BYTES / s.len() + 2);
        assert_eq!(judge(long.as_bytes(), false, NOW), Verdict::Deliver);
    }

    #[test]
    fn an_event_split_across_chunks_is_judged_once_whole() {
        let s = ev("response.failed", FAILED_LIMIT);
        let (a, _) = s.split_at(s.len() / 2);
        assert_eq!(judge(a.as_bytes(), false, NOW), Verdict::Undecided);
        assert!(matches!(
            judge(s.as_bytes(), false, NOW),
            Verdict::Fail(Outcome::UsageLimit { .. })
        ));
        let crlf = s.replace('\n', "\r\n");
        assert!(matches!(
            judge(crlf.as_bytes(), false, NOW),
            Verdict::Fail(Outcome::UsageLimit { .. })
        ));
    }

    #[test]
    fn error_events_and_multi_line_data_are_read() {
        let s = "event: error\ndata: {\"type\":\"error\",\"status\":429,\ndata: \"error\":{\"type\":\"usage_limit_reached\"}}\n\n";
        assert_eq!(events(s.as_bytes(), false).len(), 1);
        assert!(matches!(
            judge(s.as_bytes(), false, NOW),
            Verdict::Fail(Outcome::UsageLimit { .. })
        ));
        assert_eq!(events(b": comment\n\n", false), Vec::<String>::new());
        assert_eq!(events(b"data: x", false), Vec::<String>::new());
        assert_eq!(events(b"data: x", true), vec!["x".to_string()]);
    }

    #[test]
    fn events_keep_their_lines_order_and_text() {
        let s = b"data: a\ndata:b\ndata:  c\n\n\n\ndata: d\r\n\r\ndata: \xff\n\ndata: tail";
        assert_eq!(
            events(s, false),
            vec![
                "a\nb\n c".to_string(),
                "d".to_string(),
                "\u{fffd}".to_string()
            ]
        );
        let bytes = [b"data: ok\n\ndata: ".as_slice(), &[0xe2, 0x82]].concat();
        assert_eq!(events(&bytes, false), vec!["ok".to_string()]);
        assert_eq!(events(b"", true), Vec::<String>::new());
        assert_eq!(events(b"\n\n", true), Vec::<String>::new());
    }
}
