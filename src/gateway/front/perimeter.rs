//! The gateway's perimeter: only Codex and its user get through.
//!
//! [`admit`] runs first on every request (own pages, forwarding, the WebSocket upgrade), before
//! any upstream I/O: the Host allow-list, the Origin / Sec-Fetch rules, the path allow-list, the
//! model call's content type, OPTIONS answered locally, and on the way back ([`finish`]) the upstream's
//! `Access-Control-*`, `Set-Cookie` and off-host redirects held back. The decisions themselves
//! are pure functions in [`crate::policy::perimeter`]; [`check_request`] is the one call a
//! handler needs (the WebSocket proxy calls it too). [`buffer`] reads request bodies under
//! a global byte budget and a deadline. The access key is checked in between
//! ([`crate::gateway::front::access_key`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use tokio::sync::Semaphore;

use crate::gateway::config::perimeter_options::Options;
use crate::gateway::error::json_error;
use crate::gateway::pool::state::GatewayState;
use crate::policy::perimeter::{
    self as rules, AllowedHosts, FetchMeta, MAX_SESSION_KEY_LEN, PathClass, Refusal,
};

/// The perimeter's shared state.
pub struct Perimeter {
    pub hosts: AllowedHosts,
    pub options: Options,
    /// Permits are bytes of request body held in memory.
    budget: Arc<Semaphore>,
    budget_bytes: u32,
    /// Failed access-key attempts per address.
    pub attempts: FailedAttempts,
}

impl Perimeter {
    /// For a gateway bound to `bind:port` (the real port, after binding), whose single bodies
    /// may be `max_body_bytes` long.
    pub fn new(bind: IpAddr, port: u16, options: Options, max_body_bytes: u64) -> Self {
        let budget = options
            .max_buffered_bytes
            .max(max_body_bytes)
            .min(u64::from(u32::MAX));
        let budget_bytes = u32::try_from(budget).unwrap_or(u32::MAX);
        Self {
            hosts: AllowedHosts {
                port,
                bind,
                extras: options
                    .allowed_hosts
                    .iter()
                    .map(|h| h.trim().to_ascii_lowercase())
                    .collect(),
            },
            options,
            budget: Arc::new(Semaphore::new(budget_bytes as usize)),
            budget_bytes,
            attempts: Default::default(),
        }
    }
}

/// Failed access-key attempts remembered per address (forgotten wholesale beyond this).
const MAX_TRACKED_PEERS: usize = 4096;
/// A run of failures from one address is forgotten after this long without another.
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);

/// Failed attempts per address: (failures in a row, last one).
#[derive(Default)]
pub struct FailedAttempts(Mutex<HashMap<IpAddr, (u32, Instant)>>);

impl FailedAttempts {
    /// Count one more failure from `ip`; returns the failures in the current run.
    pub fn note(&self, ip: IpAddr) -> u32 {
        let Ok(mut f) = self.0.lock() else {
            return 1;
        };
        let now = Instant::now();
        if f.len() >= MAX_TRACKED_PEERS && !f.contains_key(&ip) {
            f.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_MEMORY);
            if f.len() >= MAX_TRACKED_PEERS {
                f.clear();
            }
        }
        let entry = f.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        entry.0
    }

    /// A good key from `ip` ends its run of failures.
    pub fn clear(&self, ip: IpAddr) {
        if let Ok(mut f) = self.0.lock() {
            f.remove(&ip);
        }
    }
}

// Names, not strings: a lookup by `&str` parses the name on every request.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
const SEC_FETCH_DEST: HeaderName = HeaderName::from_static("sec-fetch-dest");

fn header(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn refusal_response(r: &Refusal) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
    json_error(status, r.kind, &r.message)
}

/// Every rule that looks only at a request's head, in order. `Ok` carries the path's class.
/// Handlers that take over a request themselves (the WebSocket upgrade) call this first.
pub fn check_request(p: &Perimeter, parts: &http::request::Parts) -> Result<PathClass, Refusal> {
    let h = &parts.headers;
    // HTTP/2 carries the host as `:authority` (in the URI); HTTP/1.1 in `Host`, with the URI's
    // authority only in absolute form (`GET http://host/path`), which is checked too.
    // Two `Host` headers would let the check read one while something else reads the other.
    if h.get_all(header::HOST).iter().nth(1).is_some() {
        return Err(Refusal {
            status: 400,
            kind: "bad_request",
            message: "a request may carry one Host header".into(),
        });
    }
    let host = header(h, header::HOST).or(parts.uri.authority().map(|a| a.as_str()));
    rules::check_host(host, parts.uri.authority().map(|a| a.as_str()), &p.hosts)?;
    let path = parts.uri.path();
    rules::check_path(path)?;
    let class = rules::classify(path);
    let meta = FetchMeta {
        method: parts.method.as_str(),
        path,
        origin: header(h, header::ORIGIN),
        sec_fetch_site: header(h, &SEC_FETCH_SITE),
        sec_fetch_mode: header(h, &SEC_FETCH_MODE),
        sec_fetch_dest: header(h, &SEC_FETCH_DEST),
        host,
    };
    rules::check_origin(class, &meta)?;
    if class == PathClass::NotForwarded && parts.method != Method::OPTIONS {
        return Err(Refusal {
            status: 404,
            kind: "not_forwarded",
            message: format!(
                "cao gateway forwards only the paths Codex uses; {path} is not one of them"
            ),
        });
    }
    if let Some(e) = header(h, header::EXPECT)
        && !e.trim().eq_ignore_ascii_case("100-continue")
    {
        return Err(Refusal {
            status: 417,
            kind: "expectation_failed",
            message: format!("cao gateway does not support Expect: {e}"),
        });
    }
    if class == PathClass::Model
        && parts.method == Method::POST
        && !rules::model_call_content_ok(
            header(h, header::CONTENT_TYPE),
            header(h, header::CONTENT_ENCODING),
        )
    {
        return Err(Refusal {
            status: 415,
            kind: "unsupported_media_type",
            message: "a model call must be JSON (content-type: application/json, optionally zstd-encoded)".into(),
        });
    }
    // One pass over the values (only a long one's name is looked at).
    if let Some(name) = h.iter().find_map(|(k, v)| {
        (v.len() > MAX_SESSION_KEY_LEN
            && crate::policy::route::SESSION_KEY_HEADERS.contains(&k.as_str()))
        .then_some(k)
    }) {
        return Err(Refusal {
            status: 400,
            kind: "bad_request",
            message: format!("{name} is longer than {MAX_SESSION_KEY_LEN} bytes"),
        });
    }
    Ok(class)
}

/// Browser headers that are not forwarded.
const BROWSER_HEADERS: [HeaderName; 3] = [header::ORIGIN, header::REFERER, header::EXPECT];

/// The first step of every request ([`crate::gateway::front::door`] composes the steps): [`check_request`],
/// OPTIONS answered locally, browser headers dropped before forwarding. The request goes on
/// with its path class, for [`finish`]; a refused one is answered here.
pub fn admit(
    p: &Perimeter,
    req: Request,
    peer: SocketAddr,
) -> Result<(Request, PathClass), Box<Response>> {
    let (mut parts, body) = req.into_parts();
    let class = match check_request(p, &parts) {
        Ok(c) => c,
        Err(r) => {
            tracing::info!(
                peer = %peer,
                method = %parts.method,
                path = %parts.uri.path(),
                status = r.status,
                kind = r.kind,
                "refused"
            );
            return Err(Box::new(refusal_response(&r)));
        }
    };
    if parts.method == Method::OPTIONS {
        // Never forwarded (upstream would answer with its own CORS headers); no
        // Access-Control-* here, so every browser preflight fails.
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return Err(Box::new(r));
    }
    if parts.headers.keys().any(|k| BROWSER_HEADERS.contains(k)) {
        for name in &BROWSER_HEADERS {
            parts.headers.remove(name);
        }
    }
    Ok((Request::from_parts(parts, body), class))
}

/// The last step: an upstream answer (any path not the gateway's own) is cleaned on its way
/// back.
pub fn finish(class: PathClass, resp: Response) -> Response {
    if class == PathClass::Own {
        resp
    } else {
        clean_upstream_answer(resp)
    }
}

/// Headers of an upstream answer that must not reach the client as they are: CORS grants meant
/// for chatgpt.com, cookies for the upstream origin (the gateway keeps those per account), and
/// redirects off the gateway.
fn clean_upstream_answer(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let cors: Vec<_> = h
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for k in cors {
        h.remove(k);
    }
    h.remove(header::SET_COOKIE);
    if resp.status().is_redirection()
        && let Some(loc) = resp.headers().get(header::LOCATION)
    {
        let relative = loc
            .to_str()
            .is_ok_and(|l| l.starts_with('/') && !l.starts_with("//"));
        if !relative {
            return json_error(
                StatusCode::BAD_GATEWAY,
                "upstream_redirect",
                &format!(
                    "upstream answered {} with a redirect to another host; cao gateway does not follow or pass it on",
                    resp.status().as_u16()
                ),
            );
        }
    }
    resp
}

/// Read a request body into memory before the handler sees it: at most `max_body_bytes`, within
/// the body deadline, and only while the global budget of buffered bytes allows (waiting for
/// room up to the same deadline, then 503). Bodiless requests pass untouched. The permit that
/// comes back is held while the handler holds the body (it keeps it to replay on another
/// account), which ends when the answer's head is ready.
pub async fn buffer(
    state: &GatewayState,
    p: &Perimeter,
    req: Request,
) -> Result<(Request, Option<tokio::sync::OwnedSemaphorePermit>), Box<Response>> {
    if req.body().size_hint().exact() == Some(0) {
        return Ok((req, None));
    }
    let max_body = state.config.max_body_bytes;
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            &format!(
                "request body is larger than the gateway limit of {max_body} bytes (--max-body-bytes)"
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(Box::new(too_large()));
    }
    let want = declared
        .unwrap_or(max_body)
        .min(u64::from(p.budget_bytes))
        .max(1);
    let want = u32::try_from(want).unwrap_or(p.budget_bytes);
    let deadline = tokio::time::Instant::now() + p.options.body_timeout;
    let permit =
        match tokio::time::timeout_at(deadline, p.budget.clone().acquire_many_owned(want)).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(Box::new(json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "gateway_busy",
                    "cao gateway is holding too many request bodies at once; try again",
                )));
            }
        };
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
    let bytes = match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Box::new(too_large()));
        }
        Ok(Err(e)) => {
            return Err(Box::new(json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("could not read the request body: {e}"),
            )));
        }
        Err(_) => {
            return Err(Box::new(json_error(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                &format!(
                    "the request body did not arrive within {} s",
                    p.options.body_timeout.as_secs_f32()
                ),
            )));
        }
    };
    Ok((Request::from_parts(parts, Body::from(bytes)), Some(permit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_per_address_and_a_good_key_resets_them() {
        let f = FailedAttempts::default();
        let a = IpAddr::from([127, 0, 0, 1]);
        let b = IpAddr::from([127, 0, 0, 2]);
        assert_eq!(f.note(a), 1);
        assert_eq!(f.note(a), 2);
        assert_eq!(f.note(b), 1);
        f.clear(a);
        assert_eq!(f.note(a), 1);
    }

    fn perimeter() -> Perimeter {
        Perimeter::new(IpAddr::from([127, 0, 0, 1]), 4319, Options::default(), 1024)
    }

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap_or_default().into_parts().0
    }

    #[test]
    fn requests_are_checked_in_order() {
        let p = perimeter();
        let host = ("host", "127.0.0.1:4319");
        let json = ("content-type", "application/json");
        let ok = check_request(&p, &parts("POST", "/responses", &[host, json]));
        assert_eq!(ok, Ok(PathClass::Model));
        let status = |m: &str, u: &str, h: &[(&str, &str)]| {
            check_request(&p, &parts(m, u, h)).map_err(|r| r.status)
        };
        assert_eq!(status("POST", "/responses", &[json]), Err(421));
        assert_eq!(
            status("GET", "/health", &[host, ("host", "evil.example:4319")]),
            Err(400)
        );
        assert_eq!(
            status("GET", "/health", &[("host", "[::1]:4319")]),
            Ok(PathClass::Own)
        );
        assert_eq!(
            status("GET", "/health", &[("host", "LocalHost:4319")]),
            Ok(PathClass::Own)
        );
        assert_eq!(
            status("POST", "http://evil.example/responses", &[host, json]),
            Err(421)
        );
        assert_eq!(
            status(
                "POST",
                "/responses",
                &[host, ("content-type", "text/plain")]
            ),
            Err(415)
        );
        assert_eq!(
            status("POST", "/responses", &[host, json, ("origin", "http://x")]),
            Err(403)
        );
        assert_eq!(
            status("GET", "/backend-api/conversations", &[host]),
            Err(404)
        );
        assert_eq!(status("GET", "/backend-api/%2e%2e/x", &[host]), Err(400));
        assert_eq!(
            status("OPTIONS", "/anything", &[host]),
            Ok(PathClass::NotForwarded)
        );
        assert_eq!(
            status("POST", "/responses", &[host, json, ("expect", "magic")]),
            Err(417)
        );
        let long = "s".repeat(MAX_SESSION_KEY_LEN + 1);
        assert_eq!(
            status("GET", "/models", &[host, ("session-id", long.as_str())]),
            Err(400)
        );
        assert_eq!(status("GET", "/status", &[host]), Ok(PathClass::Own));
    }

    #[test]
    fn upstream_cors_cookies_and_off_host_redirects_are_held_back() {
        let mut r = Response::new(Body::empty());
        let h = r.headers_mut();
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
        h.insert("set-cookie", HeaderValue::from_static("a=b"));
        h.insert(
            "x-codex-primary-used-percent",
            HeaderValue::from_static("1"),
        );
        let r = clean_upstream_answer(r);
        assert_eq!(r.headers().len(), 1);
        let redirect = |loc: &'static str| {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::FOUND;
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static(loc));
            clean_upstream_answer(r).status()
        };
        assert_eq!(redirect("https://evil.example/x"), StatusCode::BAD_GATEWAY);
        assert_eq!(redirect("//evil.example/x"), StatusCode::BAD_GATEWAY);
        assert_eq!(redirect("/backend-api/x"), StatusCode::FOUND);
    }
}
