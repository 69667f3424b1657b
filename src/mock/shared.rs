//! What every handler of the mock shares: the scenario, the recorded requests and counters
//! behind one short-held mutex, and the small helpers the HTTP, token and WebSocket handlers
//! all use. The handlers import this room; it imports none of them.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use http::HeaderMap;
use serde_json::{Value, json};

use super::RecordedRequest;
use super::scenario::{QuotaFault, Scenario};

pub(super) struct Shared {
    pub scenario: RwLock<Scenario>,
    pub state: Mutex<MockState>,
    pub started: Instant,
    /// SSE answers still being sent (their stream not yet finished or dropped).
    pub open_streams: AtomicUsize,
    /// Usage-endpoint calls being answered right now, and the most seen at once.
    pub usage_in_flight: AtomicUsize,
    pub usage_max_in_flight: AtomicUsize,
}

/// Mutable bookkeeping, behind one short-held mutex.
#[derive(Default)]
pub(super) struct MockState {
    pub requests: Vec<RecordedRequest>,
    pub counters: HashMap<String, Counters>,
    /// The strict token endpoint's memory.
    pub tokens: super::token_ledger::Ledger,
    pub next_seq: u64,
    /// Every WebSocket request frame (see [`super::RecordedFrame`]).
    pub ws_frames: Vec<super::RecordedFrame>,
    /// Bytes of text frames received / sent on every WebSocket, and sockets opened.
    pub ws_bytes_in: u64,
    pub ws_bytes_out: u64,
    pub ws_sockets: u64,
    /// Every socket accepted, in opening order (see [`super::RecordedSocket`]).
    pub ws_socket_log: Vec<super::RecordedSocket>,
    /// One-shot WebSocket faults already fired (`account/kind/turn`).
    pub ws_fired: std::collections::HashSet<String>,
    /// How each HTTP caller introduced itself (see [`super::ClientIdentity`]).
    pub identities: Vec<super::ClientIdentity>,
}

impl MockState {
    /// A text frame of `len` bytes was read on socket `no`, whose wire count is now `wire`.
    pub fn ws_read(&mut self, no: u64, wire: u64, len: usize) {
        self.ws_bytes_in += len as u64;
        if let Some(r) = self.ws_socket_log.iter_mut().find(|r| r.socket == no) {
            r.wire_bytes_in = wire;
            r.text_bytes_in += len as u64;
        }
    }
}

/// Per-account fault counters.
#[derive(Default)]
pub(super) struct Counters {
    pub served: u32,
    pub server_errors: u32,
    pub rate_limits: u32,
    pub stream_failures: u32,
}

pub(super) fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

pub(super) fn header_str<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The `error` object of a spent account's answer (HTTP body and WebSocket error frame alike).
pub(super) fn usage_limit_error(q: &QuotaFault) -> Value {
    let mut err = json!({
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": q.plan_type.clone().unwrap_or_else(|| "plus".to_string()),
    });
    if !q.omit_reset {
        let now = now_secs();
        let resets_at = q
            .resets_at
            .or(q.resets_in_seconds.map(|s| now + s))
            .unwrap_or(now + 3600);
        err["resets_at"] = json!(resets_at);
        err["resets_in_seconds"] = json!(q.resets_in_seconds.unwrap_or(resets_at - now).max(0));
    }
    err
}
