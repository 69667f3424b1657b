//! Live usage per account, learned from every upstream answer: rate-limit headers, and
//! `codex.rate_limits` events seen while an SSE stream passes through (never delayed: each
//! frame is handed on as it arrives; only lines that can be a rate-limit event are looked at).
//!
//! Only tracking: which account to use is decided by [`crate::policy::route::choose`], which
//! reads these snapshots through [`UsageTracker::with_snapshots`].

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::policy::usage::{self, RATE_LIMIT_EVENT, UsageSnapshot};
use crate::policy::usage_event;
use crate::store::StatusFile;
use crate::store::now_ms;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body::Frame;

/// Longest SSE line kept across frames while looking for a rate-limit event.
const MAX_LINE: usize = 256 * 1024;

#[derive(Debug, Default)]
struct Inner {
    snapshots: HashMap<String, UsageSnapshot>,
    dirty: BTreeSet<String>,
}

/// Per-account usage snapshots. Cheap to clone (shared inside).
#[derive(Debug, Clone, Default)]
pub struct UsageTracker {
    inner: Arc<Mutex<Inner>>,
}

impl UsageTracker {
    /// Start from what account_status.json remembers.
    pub fn from_statuses(file: &StatusFile) -> Self {
        let t = Self::default();
        if let Ok(mut i) = t.inner.lock() {
            for (name, st) in &file.statuses {
                if let Some(u) = &st.usage {
                    i.snapshots.insert(name.clone(), u.clone());
                }
            }
        }
        t
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
        self.inner.lock().ok().map(|mut i| f(&mut i))
    }

    /// Fold a new observation into `account`'s snapshot.
    pub fn observe(&self, account: &str, snap: UsageSnapshot) {
        self.with(|i| {
            let mut known = i.snapshots.remove(account);
            usage::newest_wins(&mut known, snap);
            if let Some(k) = known {
                i.snapshots.insert(account.to_string(), k);
            }
            i.dirty.insert(account.to_string());
        });
    }

    /// Read the rate-limit headers of an upstream answer.
    pub fn observe_headers(&self, account: &str, headers: &HeaderMap, now_ms: i64) {
        // Only `x-` names can carry usage (names are lower case): their values alone are read.
        let pairs = headers
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("x-"))
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)));
        if let Some(s) = usage::from_headers(pairs, now_ms) {
            tracing::debug!(account, windows = s.windows.len(), "usage from headers");
            self.observe(account, s);
        }
    }

    /// Observe an answer served by `account` at `now_ms`: its headers now, its SSE events as
    /// they pass.
    pub fn observe_response(&self, account: &str, resp: Response, now_ms: i64) -> Response {
        self.observe_headers(account, resp.headers(), now_ms);
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let body = Body::new(ObservedBody {
            inner: body,
            scanner: SseScanner::default(),
            tracker: self.clone(),
            account: account.to_string(),
        });
        Response::from_parts(parts, body)
    }

    /// The snapshot of one account.
    pub fn get(&self, account: &str) -> Option<UsageSnapshot> {
        self.with(|i| i.snapshots.get(account).cloned()).flatten()
    }

    /// Every snapshot, by account.
    pub fn all(&self) -> HashMap<String, UsageSnapshot> {
        self.with(|i| i.snapshots.clone()).unwrap_or_default()
    }

    /// Snapshots changed since the last call, for the batched status write.
    pub fn take_dirty(&self) -> Vec<(String, UsageSnapshot)> {
        self.with(|i| {
            let names = std::mem::take(&mut i.dirty);
            names
                .into_iter()
                .filter_map(|n| i.snapshots.get(&n).cloned().map(|s| (n, s)))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Put back what [`Self::take_dirty`] returned when the write failed.
    pub fn restore_dirty(&self, taken: &[(String, UsageSnapshot)]) {
        self.with(|i| i.dirty.extend(taken.iter().map(|(n, _)| n.clone())));
    }

    /// Write `taken` into the status file being rewritten.
    pub fn apply(file: &mut StatusFile, taken: &[(String, UsageSnapshot)]) {
        for (name, snap) in taken {
            file.statuses.entry(name.clone()).or_default().usage = Some(snap.clone());
        }
    }

    /// Run `f` on every snapshot, by account, without copying them (the router reads them
    /// on every request). `f` must be quick: observations wait for it.
    pub fn with_snapshots<R>(&self, f: impl FnOnce(&HashMap<String, UsageSnapshot>) -> R) -> R {
        match self.inner.lock() {
            Ok(i) => f(&i.snapshots),
            Err(_) => f(&HashMap::new()),
        }
    }
}

/// The event name, searched with SIMD.
static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(RATE_LIMIT_EVENT));

/// Finds `data:` lines that carry a rate-limit event in an SSE byte stream split into
/// arbitrary frames. Only the unfinished tail line is kept between frames.
#[derive(Debug, Default)]
pub struct SseScanner {
    carry: Vec<u8>,
    /// The current line grew past [`MAX_LINE`]: ignore it until its end.
    skipping: bool,
}

impl SseScanner {
    /// Feed one frame; returns the payloads of complete `data:` lines naming the event.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        if self.carry.is_empty() && !self.skipping && FINDER.find(chunk).is_none() {
            // The common case: nothing in this frame can be an event (one SIMD pass); keep
            // only its unfinished last line, which the next frame may complete.
            let tail = memchr::memrchr(b'\n', chunk).map_or(chunk, |i| &chunk[i + 1..]);
            self.keep_tail(tail);
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(nl);
            rest = &tail[1..];
            if self.skipping {
                self.skipping = false;
                self.carry.clear();
                continue;
            }
            if self.carry.is_empty() {
                Self::check(line, &mut out);
            } else {
                self.carry.extend_from_slice(line);
                let full = std::mem::take(&mut self.carry);
                Self::check(&full, &mut out);
            }
        }
        self.keep_tail(rest);
        out
    }

    /// Remember the start of an unfinished line (dropping lines past [`MAX_LINE`]).
    fn keep_tail(&mut self, rest: &[u8]) {
        if !rest.is_empty() && !self.skipping {
            if self.carry.len() + rest.len() > MAX_LINE {
                self.carry.clear();
                self.skipping = true;
            } else {
                self.carry.extend_from_slice(rest);
            }
        }
    }

    fn check(line: &[u8], out: &mut Vec<String>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        if FINDER.find(data).is_some()
            && let Ok(s) = std::str::from_utf8(data)
        {
            out.push(s.trim_start().to_string());
        }
    }
}

/// A response body that hands every frame on untouched and reports rate-limit events.
struct ObservedBody {
    inner: Body,
    scanner: SseScanner,
    tracker: UsageTracker,
    account: String,
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            for payload in this.scanner.feed(data) {
                if let Some(s) = usage_event::from_event(&payload, now_ms()) {
                    tracing::debug!(account = %this.account, "usage from stream event");
                    this.tracker.observe(&this.account, s);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &str = r#"{"type":"codex.rate_limits","rate_limits":{"primary":{"used_percent":55,"window_minutes":300}}}"#;

    #[test]
    fn scanner_finds_events_split_across_frames() {
        let text = format!(
            "event: response.created\ndata: {{\"type\":\"response.created\"}}\n\nevent: codex.rate_limits\r\ndata: {EV}\r\n\n"
        );
        let bytes = text.as_bytes();
        for split in 0..bytes.len() {
            let mut s = SseScanner::default();
            let mut got = s.feed(&bytes[..split]);
            got.extend(s.feed(&bytes[split..]));
            assert_eq!(got, vec![EV.to_string()], "split at {split}");
        }
        let mut s = SseScanner::default();
        let got: Vec<String> = bytes.iter().flat_map(|b| s.feed(&[*b])).collect();
        assert_eq!(got, vec![EV.to_string()]);
    }

    proptest::proptest! {
        /// Where upstream splits its frames never changes what is found, and nothing panics.
        #[test]
        fn scanner_is_split_invariant(
            body in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Just(b"data: ".to_vec()),
                proptest::strategy::Just(EV.as_bytes().to_vec()),
                proptest::strategy::Just(b"\n".to_vec()),
                proptest::strategy::Just(b"\r\n".to_vec()),
                proptest::collection::vec(proptest::num::u8::ANY, 0..8),
            ], 0..12),
            split in 0usize..400,
        ) {
            let bytes: Vec<u8> = body.concat();
            let split = split.min(bytes.len());
            let whole = SseScanner::default().feed(&bytes);
            let mut s = SseScanner::default();
            let mut parts = s.feed(&bytes[..split]);
            parts.extend(s.feed(&bytes[split..]));
            proptest::prop_assert_eq!(&whole, &parts);
            for p in &whole {
                let _ = usage_event::from_event(p, 0);
            }
        }
    }

    #[test]
    fn scanner_skips_overlong_lines_and_recovers() {
        let mut s = SseScanner::default();
        let big = vec![b'x'; MAX_LINE + 10];
        assert!(s.feed(b"data: codex.rate_limits ").is_empty());
        assert!(s.feed(&big).is_empty());
        assert!(s.feed(b"still the same line\n").is_empty());
        assert_eq!(s.feed(format!("data: {EV}\n").as_bytes()), vec![EV]);
    }

    #[tokio::test]
    async fn observed_body_passes_frames_and_records_usage() {
        use http_body_util::BodyExt;
        let t = UsageTracker::default();
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from("event: codex.rate_limits\ndata: {\"type\":\"codex.rate")),
            Ok(Bytes::from(&b"_limits\",\"rate_limits\":{\"primary\":{\"used_percent\":55,\"window_minutes\":300}}}\n\n"[..])),
            Ok(Bytes::from("data: {\"type\":\"response.completed\"}\n\n")),
        ];
        let mut resp = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/event-stream"),
        );
        resp.headers_mut().insert(
            "x-codex-secondary-used-percent",
            http::HeaderValue::from_static("12"),
        );
        let resp = t.observe_response("work", resp, now_ms());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body.ends_with(b"response.completed\"}\n\n"));
        let s = t.get("work").unwrap();
        let got: Vec<_> = s
            .windows
            .iter()
            .map(|w| (w.slot.as_str(), w.used_percent))
            .collect();
        assert_eq!(
            got,
            [("primary", 55.0)],
            "the event replaced the header family"
        );
        assert_eq!(t.take_dirty().len(), 1);
        assert!(t.take_dirty().is_empty());
    }

    #[test]
    fn dirty_snapshots_are_written_into_the_status_file() {
        let t = UsageTracker::default();
        let u = usage::from_headers(vec![("x-codex-primary-used-percent", "42")], 7).unwrap();
        t.observe("work", u.clone());
        let u = t.get("work").unwrap(); // with its history started
        assert_eq!(u.history.len(), 1);
        let taken = t.take_dirty();
        let mut f = StatusFile::default();
        UsageTracker::apply(&mut f, &taken);
        assert_eq!(f.statuses["work"].usage.as_ref(), Some(&u));
        t.restore_dirty(&taken);
        assert_eq!(t.take_dirty().len(), 1);
        let back = UsageTracker::from_statuses(&f);
        assert_eq!(back.get("work"), Some(u));
    }
}
