//! Who may use the gateway, decided from a request's head alone. Pure.
//!
//! The gateway holds every account's token and listens on loopback, which any web page the user
//! visits can reach. These checks are the fixes Vite, webpack-dev-server, Jupyter, mitmweb and
//! Ollama converged on for that class of bug:
//! - the `Host` must name the gateway itself ([`check_host`]), which defeats DNS rebinding;
//! - browsers announce themselves with `Origin` and `Sec-Fetch-Site`; Codex never sends either,
//!   so a forwarded request that carries them is refused, and the gateway's own pages answer
//!   only their own origin ([`check_origin`]);
//! - only the paths Codex calls are forwarded ([`classify`], [`FORWARDED_FAMILIES`]), after dot
//!   segments, raw or encoded, are refused ([`check_path`]);
//! - a model call must be JSON ([`model_call_content_ok`]), which no HTML form and no
//!   `fetch(..., {mode: "no-cors"})` can send.
//!
//! The gateway applies them in `gateway::front::perimeter`, before any upstream I/O.

use std::net::IpAddr;

/// What the gateway answers itself, at one of its [`OWN_ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnAnswer {
    /// `GET /health`: is this a cao gateway, and is it up.
    Health,
    /// `GET /`: the status page.
    Page,
    /// `GET /status`: the pool as JSON.
    Status,
    /// `GET /metrics`: Prometheus text.
    Metrics,
    /// Codex's usage call, answered with the whole pool's usage (`gateway::usage::pooled`).
    PooledUsage,
    /// `POST /oauth/token`: the token endpoint of cao's custody (`gateway::tokens::endpoint`).
    Token,
}

/// One path the gateway answers itself: what it answers there, and how the perimeter checks a
/// request for it (its own pages answer only their own origin; the pooled usage answer at the
/// backend's usage path is checked like the backend call it stands in for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnRoute {
    pub path: &'static str,
    pub answer: OwnAnswer,
    pub checked_as: PathClass,
}

/// The gateway's own routes, never forwarded: the one table the router, the perimeter
/// ([`classify`]) and the door read. `/api/codex/usage` is Codex's usage call without
/// `/backend-api` in its `chatgpt_base_url`, answered like `/backend-api/wham/usage`.
pub const OWN_ROUTES: [OwnRoute; 7] = [
    own("/health", OwnAnswer::Health, PathClass::Own),
    own("/", OwnAnswer::Page, PathClass::Own),
    own("/status", OwnAnswer::Status, PathClass::Own),
    own("/metrics", OwnAnswer::Metrics, PathClass::Own),
    own(
        "/backend-api/wham/usage",
        OwnAnswer::PooledUsage,
        PathClass::Backend,
    ),
    own("/api/codex/usage", OwnAnswer::PooledUsage, PathClass::Own),
    own("/oauth/token", OwnAnswer::Token, PathClass::Own),
];

const fn own(path: &'static str, answer: OwnAnswer, checked_as: PathClass) -> OwnRoute {
    OwnRoute {
        path,
        answer,
        checked_as,
    }
}

/// The own route at `path` (without its query), if the gateway answers it itself.
pub fn own_route(path: &str) -> Option<&'static OwnRoute> {
    OWN_ROUTES.iter().find(|r| r.path == path)
}

/// Model calls Codex makes under its `openai_base_url` (`{base}/responses`, ...), checked with
/// the real Codex 0.169.0 and 0.171.0 and the codex-rs source: the Responses call (HTTP POST, or
/// a WebSocket upgrade on GET), remote compaction, the model list, and memory summaries.
pub const MODEL_PATHS: [&str; 5] = [
    "/responses",
    "/responses/compact",
    "/models",
    "/memories/trace_summarize",
    "/memories/summarize",
];

/// The ChatGPT backend families Codex calls under `chatgpt_base_url = <gateway>/backend-api`:
/// `wham` (accounts/check, usage, settings, tasks), `ps` (plugins, MCP), `codex` (analytics
/// events, ...), `connectors` (the apps directory). Seen from Codex 0.169.0 and 0.171.0 through a
/// gateway, and in the 0.171.0 binary's strings. Anything else under the ChatGPT origin (the
/// web app's `/backend-api/conversations`, ...) is not forwarded.
pub const FORWARDED_FAMILIES: [&str; 4] = ["wham", "ps", "codex", "connectors"];

/// Longest `session-id` / `thread-id` / `x-session-id` accepted (Codex sends UUIDs).
pub const MAX_SESSION_KEY_LEN: usize = 128;

/// Why a request is refused: an HTTP status, a machine-readable type, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }
}

/// The names the gateway answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// The port the gateway listens on.
    pub port: u16,
    /// The bound address (`0.0.0.0`/`::` mean every address of the machine).
    pub bind: IpAddr,
    /// `--allowed-host` extras, lower-cased: `name` (any port, or none: a reverse proxy in
    /// front) or `name:port` (that port only).
    pub extras: Vec<String>,
}

/// A `Host` (or absolute-form authority) split into a lower-case host and an optional port.
/// IPv6 literals keep their brackets (`[::1]`). `None` for anything that is not a plain
/// `host[:port]` (user info, paths, bad ports, empty host, odd characters).
pub fn parse_authority(raw: &str) -> Option<(String, Option<u16>)> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 255 {
        return None;
    }
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
        let inner = &rest[..end];
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        let (h, p) = match raw.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (raw, None),
        };
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
        if h.is_empty() || !h.chars().all(ok) {
            return None;
        }
        (h.trim_end_matches('.').to_ascii_lowercase(), p)
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// The host as an IP address, if it is a literal (`127.0.0.1`, `[::1]`).
fn ip_of(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

impl AllowedHosts {
    /// Whether `host[:port]` names this gateway.
    pub fn allows(&self, authority: &str) -> bool {
        self.is_plain_loopback(authority) || self.allows_parsed(authority)
    }

    /// `127.0.0.1:PORT` or `localhost:PORT` as Codex and the page write them: told without
    /// parsing or allocating (every forwarded request asks). Never true where
    /// [`AllowedHosts::allows_parsed`] is not.
    fn is_plain_loopback(&self, authority: &str) -> bool {
        authority
            .strip_prefix("127.0.0.1:")
            .or_else(|| authority.strip_prefix("localhost:"))
            .is_some_and(|p| {
                !p.is_empty()
                    && p.len() <= 5
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && p.parse::<u16>() == Ok(self.port)
            })
    }

    /// [`AllowedHosts::allows`] the long way: parsed, the extras, then the address.
    fn allows_parsed(&self, authority: &str) -> bool {
        let Some((host, port)) = parse_authority(authority) else {
            return false;
        };
        for extra in &self.extras {
            match parse_authority(extra) {
                Some((h, None)) if h == host => return true,
                Some((h, Some(p))) if h == host && port == Some(p) => return true,
                _ => {}
            }
        }
        if port != Some(self.port) {
            return false;
        }
        if host == "localhost" {
            return true;
        }
        // An IP literal cannot come from DNS rebinding (the browser connected to that very
        // address): loopback, the bound address, or any address for a wildcard bind.
        match ip_of(&host) {
            Some(ip) => ip.is_loopback() || ip == self.bind || self.bind.is_unspecified(),
            None => false,
        }
    }
}

/// The Host check, before anything else: the `Host` header (HTTP/1.1; `:authority` for HTTP/2)
/// must be present and name the gateway; an absolute-form target's authority is held to the
/// same rule. 421 Misdirected Request otherwise.
pub fn check_host(
    host: Option<&str>,
    target_authority: Option<&str>,
    allowed: &AllowedHosts,
) -> Result<(), Refusal> {
    let refuse = |what: &str| {
        Refusal::new(
            421,
            "host_not_allowed",
            format!(
                "this cao gateway answers only to 127.0.0.1:{p}, localhost:{p}, [::1]:{p} and --allowed-host names, not {what}",
                p = allowed.port
            ),
        )
    };
    match host.map(str::trim).filter(|h| !h.is_empty()) {
        None => return Err(refuse("a request without a Host")),
        Some(h) if !allowed.allows(h) => return Err(refuse(&format!("Host {h:?}"))),
        Some(_) => {}
    }
    if let Some(a) = target_authority
        && !allowed.allows(a)
    {
        return Err(refuse(&format!("the target {a:?}")));
    }
    Ok(())
}

/// What a path is to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    /// One of the gateway's own pages and endpoints ([`OWN_ROUTES`]).
    Own,
    /// A model call (must be JSON when POSTed).
    Model,
    /// A ChatGPT backend call of a [`FORWARDED_FAMILIES`] family.
    Backend,
    /// Not something Codex calls: answered 404, never forwarded.
    NotForwarded,
}

/// Classify a (checked, see [`check_path`]) path without its query.
pub fn classify(path: &str) -> PathClass {
    if let Some(route) = own_route(path) {
        return route.checked_as;
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if MODEL_PATHS.contains(&trimmed) {
        return PathClass::Model;
    }
    if let Some(rest) = path.strip_prefix("/backend-api/") {
        let family = rest.split('/').next().unwrap_or("");
        if FORWARDED_FAMILIES.contains(&family) && rest.len() > family.len() + 1 {
            // `/backend-api/codex/responses` is the model call on the ChatGPT origin.
            let tail = &rest[family.len()..];
            if family == "codex" && MODEL_PATHS.contains(&tail.strip_suffix('/').unwrap_or(tail)) {
                return PathClass::Model;
            }
            return PathClass::Backend;
        }
    }
    PathClass::NotForwarded
}

/// Refuse paths that could climb out of the upstream base: dot segments (`.`, `..`) raw or
/// percent-encoded (also double-encoded), encoded slashes or backslashes, backslashes, empty
/// segments, control characters and anything not starting with `/`. Checked after
/// percent-decoding, so `%2e%2E/` is caught like `../`.
pub fn check_path(path: &str) -> Result<(), Refusal> {
    let bad = |why: &str| {
        Err(Refusal::new(
            400,
            "bad_path",
            format!("cao gateway refuses this path: {why}"),
        ))
    };
    if !path.starts_with('/') {
        return bad("it does not start with /");
    }
    if path.len() > 2048 {
        return bad("it is longer than 2048 bytes");
    }
    let decoded = percent_decode(path);
    // A `%` left after one decoding is double encoding (`%252e`): refuse rather than guess how
    // the upstream decodes it.
    if decoded.contains(&b'%') {
        return bad("it is percent-encoded twice");
    }
    if decoded
        .iter()
        .any(|b| *b < 0x20 || *b == 0x7f || *b == b'\\')
    {
        return bad("it holds a control character or a backslash");
    }
    let encoded_slash = path
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f'));
    if encoded_slash {
        return bad("it holds an encoded slash");
    }
    let mut segments = decoded[1..].split(|b| *b == b'/').peekable();
    while let Some(seg) = segments.next() {
        if seg == b"." || seg == b".." {
            return bad("it holds a dot segment (. or ..)");
        }
        // One trailing slash is fine (`/models/`); `//` inside is not.
        let last = segments.peek().is_none();
        if seg.is_empty() && !last && path != "/" {
            return bad("it holds an empty segment (//)");
        }
    }
    Ok(())
}

/// Decode `%XX` escapes (invalid escapes stay as they are).
fn percent_decode(s: &str) -> std::borrow::Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return std::borrow::Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// What the browser told about where a request comes from.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchMeta<'a> {
    pub method: &'a str,
    /// The path without its query.
    pub path: &'a str,
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub sec_fetch_mode: Option<&'a str>,
    pub sec_fetch_dest: Option<&'a str>,
    /// The (already allowed) `Host`, to recognise the gateway's own origin.
    pub host: Option<&'a str>,
}

/// The Origin / Sec-Fetch rules. Forwarded requests (and the WebSocket upgrade) must carry no
/// `Origin` and no cross-site `Sec-Fetch-Site`: Codex sends neither, browsers always do for
/// requests a page makes. The gateway's own pages accept their own origin only; a top-level
/// navigation to `GET /` (a link, a bookmark) is allowed from anywhere, as the page holds no
/// data and may not be framed.
pub fn check_origin(class: PathClass, meta: &FetchMeta<'_>) -> Result<(), Refusal> {
    let site = meta.sec_fetch_site.map(str::trim);
    let navigation = class == PathClass::Own
        && meta.method.eq_ignore_ascii_case("GET")
        && meta
            .sec_fetch_mode
            .is_some_and(|m| m.eq_ignore_ascii_case("navigate"))
        && meta
            .sec_fetch_dest
            .is_none_or(|d| d.eq_ignore_ascii_case("document"));
    let refuse = |what: String| Err(Refusal::new(403, "cross_origin_refused", what));
    if class != PathClass::Own {
        if let Some(o) = meta.origin {
            return refuse(format!(
                "cao gateway does not forward requests from web pages (Origin {o:?}); Codex sends no Origin"
            ));
        }
        if let Some(s) = site.filter(|s| !s.eq_ignore_ascii_case("none")) {
            return refuse(format!(
                "cao gateway does not forward requests from web pages (Sec-Fetch-Site {s:?})"
            ));
        }
        return Ok(());
    }
    if navigation && meta.path == "/" {
        return Ok(());
    }
    if let Some(s) = site
        && !s.eq_ignore_ascii_case("same-origin")
        && !s.eq_ignore_ascii_case("none")
    {
        return refuse(format!(
            "the gateway's pages answer only their own origin (Sec-Fetch-Site {s:?})"
        ));
    }
    if let Some(o) = meta.origin
        && !is_own_origin(o, meta.host)
    {
        return refuse(format!(
            "the gateway's pages answer only their own origin, not {o:?}"
        ));
    }
    Ok(())
}

/// The port a URL of `scheme` means when it names none: 80 for `http` and `ws`, 443 for
/// `https` and `wss` (any case); `None` for any other scheme.
pub fn default_port(scheme: &str) -> Option<u16> {
    let is = |s: &str| scheme.eq_ignore_ascii_case(s);
    if is("http") || is("ws") {
        Some(80)
    } else if is("https") || is("wss") {
        Some(443)
    } else {
        None
    }
}

/// Whether `origin` (`scheme://host[:port]`) is the gateway's own, reached as `host`.
pub fn is_own_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host.and_then(parse_authority) else {
        return false;
    };
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        return false;
    };
    // A page's origin is http(s); `ws://` is no origin a browser sends.
    let scheme = scheme.to_ascii_lowercase();
    let Some(default_port) = default_port(&scheme).filter(|_| scheme.starts_with("http")) else {
        return false;
    };
    match parse_authority(authority) {
        Some((h, p)) => h == host.0 && p.unwrap_or(default_port) == host.1.unwrap_or(default_port),
        None => false,
    }
}

/// A model call's body must be JSON (`application/json`, optionally zstd-compressed as Codex
/// sends it), which no HTML form and no `no-cors` fetch can produce.
pub fn model_call_content_ok(content_type: Option<&str>, content_encoding: Option<&str>) -> bool {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    let json = media.is_some_and(|m| {
        m.eq_ignore_ascii_case("application/json") || m.eq_ignore_ascii_case("application/zstd")
    });
    let enc_ok = content_encoding.map(str::trim).is_none_or(|e| {
        e.is_empty() || e.eq_ignore_ascii_case("identity") || e.eq_ignore_ascii_case("zstd")
    });
    json && enc_ok
}

/// How long to hold back the answer to the `n`-th failed access-key attempt in a row from one
/// address: nothing for the first, then doubling from 250 ms up to 8 s.
pub fn failure_delay_ms(consecutive_failures: u32) -> u64 {
    match consecutive_failures {
        0 | 1 => 0,
        n => (125u64 << (n - 1).min(6)).min(8_000),
    }
}

/// Why an access key is not acceptable, if it is not.
pub fn access_key_problem(key: &str) -> Option<String> {
    let n = key.chars().count();
    if n < 16 {
        return Some(format!(
            "the access key is {n} characters long; use at least 16 (or `--access-key generate`)"
        ));
    }
    if key.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Some("the access key holds spaces or control characters".to_string());
    }
    None
}

#[cfg(test)]
#[path = "perimeter_tests.rs"]
mod tests;
