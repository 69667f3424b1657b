//! `GET /`: a small self-contained status page (no external assets) that polls `GET /status`
//! every two seconds and draws every account with a bar per usage window.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page, compiled into the binary.
pub(crate) const PAGE_HTML: &str = include_str!("page.html");

/// Inline script and style only; the page may talk to its own origin and nothing else.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The axum handler for `GET /`.
pub async fn handler() -> Response {
    let mut res = axum::response::Html(PAGE_HTML).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained() {
        for external in ["http://", "https://", "src=\"//", "@import"] {
            assert!(
                !PAGE_HTML.contains(external),
                "page references an external asset: {external}"
            );
        }
        assert!(PAGE_HTML.contains("fetch(\"status\""));
    }
}
