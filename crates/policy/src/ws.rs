//! Responses over WebSocket as the gateway sees it. Pure: frames in, decisions out.
//!
//! Codex (codex-rs `codex-api/src/endpoint/responses_websocket.rs`, 0.171) sends one kind of
//! frame, a JSON text `{"type":"response.create", model, instructions, input[],
//! previous_response_id?, generate?, ...}`, and reads the backend's SSE events as JSON text
//! frames. A follow-up turn is a *delta*: `previous_response_id` plus only the new input items;
//! the backend resolves it from what that same socket produced. So a delta can go to another
//! account only after it is expanded back into a full request, from a [`Mirror`] of the last
//! full request and its output on that downstream socket.

use serde_json::{Map, Value, json};

use super::upstream::{self, Outcome};

/// The event type of Codex's request frames.
pub const CREATE: &str = "response.create";

/// A keepalive text frame: an event type Codex ignores, which resets its idle timer (pings do
/// not).
pub const KEEPALIVE: &str = r#"{"type":"codex.keepalive"}"#;

/// Largest conversation kept per downstream socket to expand deltas (input plus output, as
/// JSON). Beyond it a delta that must move to another account is answered
/// `previous_response_not_found` instead.
pub const MAX_MIRROR_BYTES: usize = 16 * 1024 * 1024;

/// One request frame from Codex.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The whole frame as a JSON object.
    pub body: Map<String, Value>,
}

impl Request {
    /// Parse a text frame. `None` when it is not a JSON object with a `type` (forwarded as is).
    pub fn parse(text: &str) -> Option<Self> {
        match serde_json::from_str::<Value>(text).ok()? {
            Value::Object(body) if body.get("type").and_then(Value::as_str).is_some() => {
                Some(Self { body })
            }
            _ => None,
        }
    }

    pub fn kind(&self) -> &str {
        self.body.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// A `response.create` (the only frame that starts a response).
    pub fn is_create(&self) -> bool {
        self.kind() == CREATE
    }

    pub fn previous_response_id(&self) -> Option<&str> {
        self.body
            .get("previous_response_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// `generate: false` is Codex's prewarm: the backend sets the request up and answers
    /// `response.created` + `response.completed` without output.
    pub fn is_prewarm(&self) -> bool {
        self.body.get("generate").and_then(Value::as_bool) == Some(false)
    }

    pub fn input(&self) -> &[Value] {
        self.body
            .get("input")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn to_text(&self) -> String {
        Value::Object(self.body.clone()).to_string()
    }

    /// The same request with every reasoning item that carries `encrypted_content` removed from
    /// its input (see [`Meaning::InvalidEncryptedContent`]). `None` if there was none.
    pub fn without_encrypted_reasoning(&self) -> Option<Self> {
        let input = self.input();
        let kept: Vec<Value> = input
            .iter()
            .filter(|i| !is_encrypted_reasoning(i))
            .cloned()
            .collect();
        if kept.len() == input.len() {
            return None;
        }
        let mut body = self.body.clone();
        body.insert("input".into(), Value::Array(kept));
        Some(Self { body })
    }
}

fn is_encrypted_reasoning(item: &Value) -> bool {
    item.get("type").and_then(Value::as_str) == Some("reasoning")
        && item.get("encrypted_content").is_some_and(|c| !c.is_null())
}

/// The last completed response on one downstream socket, enough to expand the next delta.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mirror {
    last: Option<Baseline>,
}

#[derive(Debug, Clone, PartialEq)]
struct Baseline {
    response_id: String,
    /// The request as a full request (no `previous_response_id`).
    request: Map<String, Value>,
    output: Vec<Value>,
}

impl Mirror {
    /// The full form of `req`: itself when it has no `previous_response_id`; the previous full
    /// input + the previous output + its own input when it continues the last response; `None`
    /// when it continues a response this mirror does not hold.
    pub fn expand(&self, req: &Request) -> Option<Request> {
        let Some(prev) = req.previous_response_id() else {
            return Some(req.clone());
        };
        let base = self.last.as_ref().filter(|b| b.response_id == prev)?;
        let mut input: Vec<Value> = base
            .request
            .get("input")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        input.extend(base.output.iter().cloned());
        input.extend(req.input().iter().cloned());
        let mut body = req.body.clone();
        body.remove("previous_response_id");
        body.insert("input".into(), Value::Array(input));
        Some(Request { body })
    }

    /// Remember a completed response: `full` is the full form of the request that produced it
    /// (from [`Mirror::expand`]). Too big a conversation is forgotten rather than kept.
    pub fn record(&mut self, full: &Request, response_id: &str, output: Vec<Value>) {
        let size = full.to_text().len() + output.iter().map(|o| o.to_string().len()).sum::<usize>();
        self.last = (size <= MAX_MIRROR_BYTES).then(|| Baseline {
            response_id: response_id.to_string(),
            request: full.body.clone(),
            output,
        });
    }

    /// Forget (after a response that did not complete).
    pub fn clear(&mut self) {
        self.last = None;
    }

    pub fn response_id(&self) -> Option<&str> {
        self.last.as_ref().map(|b| b.response_id.as_str())
    }
}

/// What one server frame means to the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Meaning {
    /// Before any output: `response.created`, `response.in_progress`, `codex.rate_limits`,
    /// unknown types. Held back until the response is sure to stay on this account.
    Preamble,
    /// Output Codex acts on (items, deltas): from here on the response cannot move.
    Output,
    /// `response.output_item.done`: output, and an item of the response's output.
    Item(Value),
    /// `response.completed` (or `response.done`) with the response id.
    Completed { id: Option<String> },
    /// `response.failed` / `response.incomplete`, or an `error` frame.
    Failed(Failure),
}

/// A failed response, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Spent account (`usage_limit_reached`), or a short rate limit / auth / overload failure
    /// another account may not have: try the next account.
    Upstream(Outcome),
    /// `websocket_connection_limit_reached`: the backend's socket age limit; reconnect.
    ConnectionLimit,
    /// `previous_response_not_found`: the upstream socket does not know the delta's parent.
    PreviousNotFound,
    /// `invalid_encrypted_content`: reasoning from another account refused.
    InvalidEncryptedContent,
    /// Anything else: Codex's to see.
    Other,
}

/// Classify a server text frame. Cheap for the common case (a delta): one substring check
/// before any JSON is parsed.
pub fn classify(text: &str, now_ms: i64) -> Meaning {
    let Some(kind) = event_type(text) else {
        return Meaning::Preamble;
    };
    match kind.as_ref() {
        "response.created" | "response.in_progress" | "response.queued" | "codex.rate_limits" => {
            Meaning::Preamble
        }
        "response.output_item.done" => serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|mut v| v.get_mut("item").map(Value::take))
            .map_or(Meaning::Output, Meaning::Item),
        "response.completed" | "response.done" => Meaning::Completed {
            id: serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.pointer("/response/id")?.as_str().map(str::to_string)),
        },
        "response.failed" | "response.incomplete" => {
            let v = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
            let err = v.pointer("/response/error").cloned().unwrap_or(Value::Null);
            Meaning::Failed(failure_of(None, &err, now_ms))
        }
        "error" => {
            let v = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
            let status = v
                .get("status")
                .or_else(|| v.get("status_code"))
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok());
            let err = v.get("error").cloned().unwrap_or(Value::Null);
            Meaning::Failed(failure_of(status, &err, now_ms))
        }
        k if k.starts_with("response.") => Meaning::Output,
        _ => Meaning::Preamble,
    }
}

/// The `type` of an event frame; read from the frame's start when it comes first (as the
/// backend writes it), else from a parse that skips everything else.
fn event_type(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    if let Some(rest) = text.trim_start().strip_prefix("{\"type\":\"")
        && let Some(end) = rest.find('"')
        && !rest[..end].contains('\\')
    {
        return Some(std::borrow::Cow::Borrowed(&rest[..end]));
    }
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(borrow, rename = "type")]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Typed<'_>>(text).ok().map(|t| t.kind)
}

/// Classify an error object (`{"type"?, "code"?, "message", "resets_at"?}`) with its status.
pub fn failure_of(status: Option<u16>, err: &Value, now_ms: i64) -> Failure {
    let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("");
    let (kind, code) = (field("type"), field("code"));
    let is = |name: &str| kind == name || code == name;
    if is("websocket_connection_limit_reached") {
        return Failure::ConnectionLimit;
    }
    if is("previous_response_not_found") {
        return Failure::PreviousNotFound;
    }
    if is("invalid_encrypted_content") {
        return Failure::InvalidEncryptedContent;
    }
    let status = match status {
        Some(s) => s,
        // `response.failed` carries no status: map the backend's codes onto one.
        None if is("usage_limit_reached") || is("rate_limit_exceeded") => 429,
        None if is("server_is_overloaded") || is("slow_down") || is("server_error") => 503,
        None => return Failure::Other,
    };
    let body = json!({ "error": err }).to_string();
    match upstream::classify(status, Some(body.as_bytes()), now_ms) {
        Outcome::Pass => Failure::Other,
        o => Failure::Upstream(o),
    }
}

/// An error frame for a failure of the gateway itself (never a 401: Codex would spend its own
/// refresh token on it).
pub fn gateway_error_frame(status: u16, kind: &str, message: &str) -> String {
    json!({"type": "error", "status": status,
           "error": {"type": kind, "code": kind, "message": message}})
    .to_string()
}

/// What Codex gets for a delta the gateway cannot serve where its parent lives (the account is
/// spent or its socket is gone) and cannot expand: the backend's `previous_response_not_found`,
/// on which Codex 0.171 opens a new socket and sends the full input.
pub fn previous_not_found_frame() -> String {
    json!({"type": "error", "status": 400, "error": {
        "type": "invalid_request_error", "code": "previous_response_not_found",
        "param": "previous_response_id",
        "message": "Previous response not found: the gateway moved this session to another account."}})
    .to_string()
}

/// The `headers` object of an error frame, as (name, value) pairs (numbers and booleans as
/// text), for the usage model.
pub fn error_headers(text: &str) -> Vec<(String, String)> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let Some(Value::Object(h)) = v.get("headers") else {
        return Vec::new();
    };
    h.iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect()
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
