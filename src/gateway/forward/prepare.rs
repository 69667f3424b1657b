//! Phase 1, prepare: everything about a request that does not depend on the account. The body
//! limit, the upstream URL, header hygiene (hop-by-hop headers, host, the access key, and the
//! client's own credentials), and the session key. The result is a [`Replay`]: the request as
//! it is sent, and if need be sent again, to each account in turn.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Uri, header};
use http_body_util::{BodyExt, Limited};

use crate::gateway::config::options::GatewayConfig;
use crate::gateway::error::GatewayError;
use crate::gateway::pool::account::CHATGPT_ACCOUNT_ID;
use crate::policy::route;

/// Headers that identify the client's own account; replaced unless `--passthrough-auth`.
const CREDENTIAL_HEADERS: [HeaderName; 3] =
    [header::AUTHORIZATION, header::COOKIE, CHATGPT_ACCOUNT_ID];

/// The header clients send the access key in.
pub const ACCESS_KEY_HEADER: &str = "x-cao-key";
/// [`ACCESS_KEY_HEADER`] as a header name.
pub const ACCESS_KEY: HeaderName = HeaderName::from_static(ACCESS_KEY_HEADER);

/// A request ready to be sent upstream on any account: cleaned headers (no hop-by-hop headers,
/// host, content-length or access key; no client credentials unless `--passthrough-auth`), the
/// whole body (kept so it can be replayed on another account), and the session it belongs to.
#[derive(Debug)]
pub struct Replay {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The session key ([`route::session_key`]), if the client sent one.
    pub session: Option<String>,
}

/// What to do with a prepared request.
#[derive(Debug)]
pub enum Prepared {
    /// Route it to an account.
    Route(Replay),
    /// Send it once with the client's own credentials, still in its headers
    /// ([`route::is_client_identity_call`]); no account is chosen or charged.
    AsClient(Replay),
}

/// Check the limits, build the upstream URL and clean the headers.
pub async fn prepare(
    cfg: &GatewayConfig,
    parts: http::request::Parts,
    body: Body,
) -> Result<Prepared, GatewayError> {
    let too_large = || GatewayError::RequestTooLarge {
        limit: cfg.max_body_bytes,
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes) {
        return Err(too_large());
    }
    let limit = usize::try_from(cfg.max_body_bytes).unwrap_or(usize::MAX);
    let body = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => return Err(GatewayError::BadBody(e.to_string())),
    };
    let path_q = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .ok_or(GatewayError::NoPath)?;
    let uri: Uri = upstream_url(&cfg.base_url, path_q)
        .parse()
        .map_err(|_| GatewayError::BadUri)?;
    let session = route::session_key(|h| parts.headers.get(h).and_then(|v| v.to_str().ok()))
        .map(str::to_string);
    let as_client = route::is_client_identity_call(parts.method.as_str(), parts.uri.path())
        && !cfg.passthrough_auth
        && cfg.access_key.is_none()
        && parts.headers.contains_key(header::AUTHORIZATION);
    let mut headers = parts.headers;
    strip_for_upstream(&mut headers);
    let mut replay = Replay {
        method: parts.method,
        uri,
        headers,
        body,
        session,
    };
    if as_client {
        // The client's credentials stay in the headers, on purpose.
        return Ok(Prepared::AsClient(replay));
    }
    if !cfg.passthrough_auth {
        strip_client_credentials(&mut replay.headers);
    }
    Ok(Prepared::Route(replay))
}

/// What no request carries upstream, on any transport: hop-by-hop headers, `host`,
/// `content-length` (the body is re-framed) and the access key.
pub fn strip_for_upstream(h: &mut HeaderMap) {
    strip_hop_by_hop(h);
    h.remove(header::HOST);
    h.remove(header::CONTENT_LENGTH);
    h.remove(&ACCESS_KEY);
}

/// Drop the client's own credentials (the account's go on instead).
pub fn strip_client_credentials(h: &mut HeaderMap) {
    for name in &CREDENTIAL_HEADERS {
        h.remove(name);
    }
}

/// Where a request path goes upstream: `base_url + path`, except that a path under
/// `/backend-api/` goes to the same path on the base URL's origin when the base URL itself lives
/// under `/backend-api` (the default `https://chatgpt.com/backend-api/codex`). So Codex can keep
/// its own ChatGPT paths (`chatgpt_base_url = <gateway>/backend-api` makes it call
/// `/backend-api/wham/usage` and friends) while model calls (`/responses`, `/models`) go under
/// `/backend-api/codex`.
pub fn upstream_url(base_url: &str, path_and_query: &str) -> String {
    if path_and_query.starts_with("/backend-api/")
        && let Some(at) = base_url.find("/backend-api")
    {
        return [&base_url[..at], path_and_query].concat();
    }
    [base_url, path_and_query].concat()
}

/// Drop hop-by-hop headers: the fixed list and the names listed in `Connection`. One pass over
/// the names present (a handful) rather than a lookup of each name on the list.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    if h.contains_key(header::CONNECTION) {
        // Looked up by `&str` (parsed on the stack); only a listed name that is present is
        // copied, so `Connection: keep-alive` on every answer costs no allocation.
        let listed: Vec<String> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // A listed hop-by-hop name goes below anyway: not looked up here.
            .filter(|n| !n.is_empty() && !is_hop_by_hop_name(n) && h.contains_key(*n))
            .map(str::to_owned)
            .collect();
        for n in listed {
            h.remove(n.as_str());
        }
        h.remove(header::CONNECTION);
    }
    // Most requests carry none of the others: look before collecting anything.
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    let doomed: Vec<HeaderName> = h.keys().filter(|k| is_hop_by_hop(k)).cloned().collect();
    for n in doomed {
        h.remove(n);
    }
}

/// Whether `name` is a hop-by-hop header (RFC 9110 7.6.1, and `keep-alive`,
/// `proxy-connection`, `proxy-authenticate`/`-authorization` of older proxies).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    is_hop_by_hop_lower(name.as_str())
}

/// [`is_hop_by_hop`] of a name as written in `Connection` (any case; lower-cased on the stack).
fn is_hop_by_hop_name(name: &str) -> bool {
    let mut buf = [0u8; 19];
    let Some(lower) = buf.get_mut(..name.len()) else {
        return false; // longer than the longest hop-by-hop name
    };
    for (l, b) in lower.iter_mut().zip(name.bytes()) {
        *l = b.to_ascii_lowercase();
    }
    std::str::from_utf8(lower).is_ok_and(is_hop_by_hop_lower)
}

fn is_hop_by_hop_lower(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_hop_by_hop_match_is_the_list() {
        for name in [
            "connection",
            "keep-alive",
            "proxy-authenticate",
            "proxy-authorization",
            "proxy-connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
            assert!(is_hop_by_hop_name(&name.to_ascii_uppercase()), "{name}");
        }
        assert!(!is_hop_by_hop_name("x-private") && !is_hop_by_hop_name(&"k".repeat(40)));
        for name in [header::HOST, header::CONTENT_TYPE, header::AUTHORIZATION] {
            assert!(!is_hop_by_hop(&name), "{name}");
        }
    }

    #[test]
    fn upstream_urls_keep_codex_and_chatgpt_paths_apart() {
        let base = "https://chatgpt.com/backend-api/codex";
        assert_eq!(
            upstream_url(base, "/responses"),
            "https://chatgpt.com/backend-api/codex/responses"
        );
        assert_eq!(
            upstream_url(base, "/models?client_version=1"),
            "https://chatgpt.com/backend-api/codex/models?client_version=1"
        );
        assert_eq!(
            upstream_url(base, "/backend-api/wham/usage"),
            "https://chatgpt.com/backend-api/wham/usage"
        );
        assert_eq!(
            upstream_url("http://127.0.0.1:9", "/backend-api/wham/usage"),
            "http://127.0.0.1:9/backend-api/wham/usage"
        );
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("session-id", HeaderValue::from_static("s"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("session-id"));
        // Listed in any case; a listed hop-by-hop name goes with the others.
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("Keep-Alive, X-Private"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["content-type"]
        );
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method("GET").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|_| http::Request::new(()).into_parts().0)
    }

    #[tokio::test]
    async fn prepare_cleans_headers_and_keeps_the_session() {
        let cfg = GatewayConfig::default();
        let p = parts(
            "/responses",
            &[
                ("authorization", "Bearer client"),
                ("chatgpt-account-id", "client-acc"),
                ("x-cao-key", "k"),
                ("host", "127.0.0.1"),
                ("connection", "keep-alive"),
                ("thread-id", "t1"),
            ],
        );
        let Ok(Prepared::Route(r)) = prepare(&cfg, p, Body::empty()).await else {
            panic!("not routed");
        };
        assert_eq!(r.session.as_deref(), Some("t1"));
        let mut names: Vec<_> = r.headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["thread-id"]);
        assert!(r.uri.to_string().ends_with("/responses"));
    }

    #[tokio::test]
    async fn the_workspace_check_keeps_the_client_credentials() {
        let cfg = GatewayConfig::default();
        let p = parts(
            "/backend-api/wham/accounts/check",
            &[("authorization", "Bearer client")],
        );
        let Ok(Prepared::AsClient(r)) = prepare(&cfg, p, Body::empty()).await else {
            panic!("not as the client");
        };
        assert!(r.headers.contains_key(header::AUTHORIZATION));
    }

    #[tokio::test]
    async fn a_declared_body_over_the_limit_is_refused_before_reading() {
        let cfg = GatewayConfig {
            max_body_bytes: 4,
            ..GatewayConfig::default()
        };
        let p = parts("/responses", &[("content-length", "5")]);
        let r = prepare(&cfg, p, Body::from("hello")).await;
        assert!(matches!(r, Err(GatewayError::RequestTooLarge { limit: 4 })));
        let p = parts("/responses", &[]);
        let r = prepare(&cfg, p, Body::from("hello")).await;
        assert!(matches!(r, Err(GatewayError::RequestTooLarge { limit: 4 })));
    }
}
