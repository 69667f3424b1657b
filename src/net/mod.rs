//! What the gateway and the mock upstream both stand on: the HTTP client (a pool of hyper
//! connections) and its TLS roots, the accept loop that serves plain HTTP and HTTPS on one port,
//! response bodies with an idle deadline, and the WebSocket wire with both handshakes.
pub mod body;
pub mod client;
pub mod connector;
pub mod server;
pub mod ws;

pub use client::HttpClient;
pub use connector::{http_client, http_client_trusting};
