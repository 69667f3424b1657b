//! A Responses-over-WebSocket client speaking like Codex 0.171: one socket, `response.create`
//! text frames (prewarm, full turns, deltas), answers read as JSON events; permessage-deflate
//! offered, as Codex does (unless [`WsClient::connect_opts`] says not to).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use cao::net::ws::client;
use cao::net::ws::socket::{Msg, Socket};
use cao::policy::ws_deflate::Wants;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::jwt;

pub struct WsClient {
    pub ws: Socket,
    /// The headers of the 101 answer.
    pub headers: http::HeaderMap,
    /// The last completed response id (what a delta continues).
    pub last_id: Option<String>,
    /// Every frame received, in order.
    pub seen: Vec<Value>,
    /// The same frames as the text that arrived.
    pub raw: Vec<String>,
}

/// A bearer of the client's own account (which the gateway must never use for model calls).
pub fn client_bearer() -> String {
    let auth = json!({"chatgpt_account_id": "client-own-account", "chatgpt_plan_type": "plus"});
    jwt(json!({"exp": super::now_secs() + 3600, "https://api.openai.com/auth": auth}))
}

/// What the answer to one request was.
#[derive(Debug)]
pub struct Answer {
    pub events: Vec<Value>,
    /// The text of all `response.output_text.delta` events.
    pub text: String,
    /// The `error` frame, if the answer was one.
    pub error: Option<Value>,
    pub completed_id: Option<String>,
}

impl WsClient {
    /// Open `ws://.../responses` with Codex's headers, logged in as the client's own account.
    pub async fn connect(http_url: &str, session: &str) -> Result<Self, String> {
        Self::connect_with(http_url, session, &[]).await
    }

    pub async fn connect_with(
        http_url: &str,
        session: &str,
        extra: &[(&str, &str)],
    ) -> Result<Self, String> {
        Self::connect_opts(http_url, session, extra, true).await
    }

    /// [`WsClient::connect_with`], offering permessage-deflate or not.
    pub async fn connect_opts(
        http_url: &str,
        session: &str,
        extra: &[(&str, &str)],
        deflate: bool,
    ) -> Result<Self, String> {
        let url = format!("{}/responses", http_url.replacen("http://", "ws://", 1));
        let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
        let mut h = http::HeaderMap::new();
        let bearer = format!("Bearer {}", client_bearer());
        for (k, v) in [
            ("authorization", bearer.as_str()),
            ("chatgpt-account-id", "client-own-account"),
            ("openai-beta", "responses_websockets=2026-02-06"),
            ("originator", "codex_exec"),
            ("session-id", session),
            ("thread-id", session),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let host = uri.authority().unwrap().as_str().to_string();
        let tcp = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
        let wants = deflate.then(Wants::default);
        let opened = client::open(tcp, &uri, h, wants)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            ws: opened.socket,
            headers: opened.headers,
            last_id: None,
            seen: Vec::new(),
            raw: Vec::new(),
        })
    }

    /// Codex's prewarm: `generate: false`, no input.
    pub async fn prewarm(&mut self) -> Answer {
        self.request(
            json!({"type": "response.create", "model": "gpt-test", "instructions": "be brief",
            "input": [], "generate": false}),
        )
        .await
    }

    /// A turn: a delta on the last response when there is one, else a full request with
    /// `history` before the new message.
    pub async fn turn(&mut self, message: &str) -> Answer {
        let item = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": message}]});
        let mut req = json!({"type": "response.create", "model": "gpt-test", "instructions": "be brief",
            "input": [item]});
        if let Some(id) = &self.last_id {
            req["previous_response_id"] = json!(id);
        }
        self.request(req).await
    }

    /// Send one request frame and read until `response.completed` or an error.
    pub async fn request(&mut self, req: Value) -> Answer {
        assert!(self.ws.send_text(req.to_string()).await, "socket closed");
        self.read_answer().await
    }

    pub async fn read_answer(&mut self) -> Answer {
        let mut events = Vec::new();
        let mut text = String::new();
        loop {
            let next =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.ws.recv()).await;
            let msg = match next {
                Ok(Some(m)) => m,
                Ok(_) => {
                    return Answer {
                        events,
                        text,
                        error: Some(json!({"closed": true})),
                        completed_id: None,
                    };
                }
                Err(_) => panic!("no answer within 30 s; seen so far: {events:?}"),
            };
            let Msg::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            self.raw.push(t.to_string());
            self.seen.push(v.clone());
            events.push(v.clone());
            match v["type"].as_str().unwrap_or("") {
                "response.output_text.delta" => text.push_str(v["delta"].as_str().unwrap_or("")),
                "response.completed" => {
                    let id = v["response"]["id"].as_str().map(str::to_string);
                    self.last_id.clone_from(&id);
                    return Answer {
                        events,
                        text,
                        error: None,
                        completed_id: id,
                    };
                }
                "error" | "response.failed" => {
                    return Answer {
                        events,
                        text,
                        error: Some(v),
                        completed_id: None,
                    };
                }
                _ => {}
            }
        }
    }
}
