//! An upstream answer held back to decide on ([`Held`]): an error the gateway may retry, move
//! past, or hand back as it came ([`super::attempt`] and [`super::sse_first`] hold it, the pass
//! loop and the WebSocket transport fall back to it).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// An answer held back to decide on (its body is small: an error).
#[derive(Debug)]
pub struct Held {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Held {
    /// A copy (the body is shared, not copied).
    pub fn duplicate(&self) -> Self {
        Self {
            status: self.status,
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }
}

impl IntoResponse for Held {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() = self.status;
        *r.headers_mut() = self.headers;
        r
    }
}
