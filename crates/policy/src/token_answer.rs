//! What an answer of the OAuth token endpoint means for the refresh token that was sent, and
//! when to refresh at all. Pure: the caller passes the status, the bytes that arrived, whether
//! the body arrived whole, and the time.
//!
//! The one rule custody is built on: **any 2xx means the refresh token was spent**, whatever
//! the body looks like. A 2xx the caller cannot fully use still tells it to save the refresh
//! token that came back (if one could be read) and never to send the old one again.
//!
//! Codex itself (codex-rs `login/src/auth/manager.rs`) reads `id_token`, `access_token` and
//! `refresh_token` (each optional) from a 2xx, treats a 401 or an error code
//! `refresh_token_expired` / `refresh_token_reused` / `refresh_token_invalidated` as permanent,
//! and everything else as transient. cao adds `invalid_grant` (what OAuth servers answer for a
//! dead grant) to the permanent codes.

use serde_json::Value;

/// Codex's own refresh margin before `exp` (and cao's cap for traffic-time refreshes).
pub const REQUEST_MARGIN_CAP_MS: i64 = 5 * 60 * 1000;
/// Cap of the gateway's background (proactive) refresh margin.
pub const PROACTIVE_MARGIN_CAP_MS: i64 = 10 * 60 * 1000;

/// A 2xx body, as far as it could be read.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Rotated {
    /// A usable access token (present, and a valid HTTP header value as `Bearer <token>`).
    pub access_token: Option<String>,
    pub id_token: Option<String>,
    /// The new refresh token, if one could be read.
    pub refresh_token: Option<String>,
    /// Why the answer is not fully usable (never contains a token).
    pub flaw: Option<&'static str>,
}

impl std::fmt::Debug for Rotated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotated")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("flaw", &self.flaw)
            .finish_non_exhaustive()
    }
}

/// What a token-endpoint answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAnswer {
    /// 2xx: the refresh token sent is spent.
    Spent(Rotated),
    /// The login is dead (401, or a permanent error code): the token is not spent by us, but
    /// must never be sent again either.
    Rejected(String),
    /// Any other error answer: the token was not spent (Codex retries these too).
    Transient(String),
}

/// Read one answer. `complete` is false when the body broke off before its end.
pub fn interpret(status: u16, body: &[u8], complete: bool) -> TokenAnswer {
    if (200..300).contains(&status) {
        return TokenAnswer::Spent(read_rotated(body, complete));
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = error_code(&v);
    if status == 401 || is_permanent_code(code.as_deref()) {
        return TokenAnswer::Rejected(code.unwrap_or_else(|| format!("HTTP {status}")));
    }
    TokenAnswer::Transient(format!(
        "token endpoint answered HTTP {status}{}",
        code.map(|c| format!(" ({c})")).unwrap_or_default()
    ))
}

fn read_rotated(body: &[u8], complete: bool) -> Rotated {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return Rotated {
                flaw: Some(if complete {
                    "the answer is not JSON"
                } else {
                    "the answer broke off"
                }),
                ..Rotated::default()
            };
        }
    };
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let refresh_token = s("refresh_token").filter(|t| is_header_safe(t));
    let raw_access = s("access_token");
    let access_token = raw_access.clone().filter(|t| is_header_safe(t));
    let flaw = match (&raw_access, &access_token, &refresh_token) {
        (None, _, _) => Some("the answer has no access_token"),
        (Some(_), None, _) => Some("the access token is not a valid header value"),
        (_, _, None) => Some("the answer has no usable refresh_token"),
        _ if !complete => Some("the answer broke off"),
        _ => None,
    };
    Rotated {
        access_token,
        id_token: s("id_token").filter(|t| is_header_safe(t)),
        refresh_token,
        flaw,
    }
}

/// Whether `Bearer <token>` is a valid HTTP header value (visible ASCII, space, tab).
pub fn is_header_safe(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The error code of a token-endpoint error body: `error.code`, `error` (string), or `code`.
pub fn error_code(v: &Value) -> Option<String> {
    match v.get("error") {
        Some(Value::Object(o)) => o.get("code").and_then(Value::as_str).map(str::to_string),
        Some(Value::String(s)) => Some(s.clone()),
        _ => v.get("code").and_then(Value::as_str).map(str::to_string),
    }
}

/// Codes that mean the refresh token is dead for good.
pub fn is_permanent_code(code: Option<&str>) -> bool {
    matches!(
        code.map(str::to_ascii_lowercase).as_deref(),
        Some(
            "refresh_token_expired"
                | "refresh_token_reused"
                | "refresh_token_invalidated"
                | "invalid_grant"
        )
    )
}

/// How long before `exp` to refresh: `min(cap, ttl / 2)`, so a short-lived access token (a
/// lifetime under the cap) is not refreshed on every use. Unknown lifetime: the cap.
pub fn margin_ms(ttl_ms: Option<i64>, cap_ms: i64) -> i64 {
    match ttl_ms {
        Some(ttl) if ttl > 0 => cap_ms.min(ttl / 2),
        _ => cap_ms,
    }
}

/// Whether an access token expiring at `exp_ms` (issued at `iat_ms`) is due for a refresh at
/// `now_ms` with the margin cap `cap_ms`. No expiry known: never due.
pub fn due(now_ms: i64, exp_ms: Option<i64>, iat_ms: Option<i64>, cap_ms: i64) -> bool {
    let Some(exp) = exp_ms else {
        return false;
    };
    let ttl = iat_ms.map(|i| exp.saturating_sub(i));
    exp.saturating_sub(margin_ms(ttl, cap_ms)) <= now_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value) -> TokenAnswer {
        interpret(200, v.to_string().as_bytes(), true)
    }

    #[test]
    fn a_whole_answer_is_usable() {
        let TokenAnswer::Spent(r) =
            ok(json!({"access_token": "a", "refresh_token": "r", "id_token": "i"}))
        else {
            panic!("2xx is spent")
        };
        assert_eq!(r.flaw, None);
        assert_eq!(r.refresh_token.as_deref(), Some("r"));
    }

    #[test]
    fn every_2xx_is_spent_even_when_unusable() {
        for (body, complete) in [
            (&b"{\"access_token\":\"a\",\"refr"[..], false),
            (&b"<html>"[..], true),
            (&b""[..], true),
        ] {
            match interpret(204, body, complete) {
                TokenAnswer::Spent(r) => {
                    assert!(r.flaw.is_some());
                    assert_eq!(r.refresh_token, None);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_new_refresh_token_is_kept_even_without_a_usable_access_token() {
        let TokenAnswer::Spent(r) = ok(json!({"refresh_token": "r2"})) else {
            panic!()
        };
        assert_eq!(r.refresh_token.as_deref(), Some("r2"));
        assert_eq!(r.access_token, None);
        assert_eq!(r.flaw, Some("the answer has no access_token"));
        let TokenAnswer::Spent(r) =
            ok(json!({"access_token": "bad\nvalue", "refresh_token": "r3"}))
        else {
            panic!()
        };
        assert_eq!(r.access_token, None);
        assert_eq!(r.refresh_token.as_deref(), Some("r3"));
    }

    #[test]
    fn errors_are_permanent_or_transient_like_codex() {
        let body = json!({"error": {"code": "refresh_token_reused"}}).to_string();
        assert_eq!(
            interpret(400, body.as_bytes(), true),
            TokenAnswer::Rejected("refresh_token_reused".into())
        );
        assert!(matches!(
            interpret(401, b"", true),
            TokenAnswer::Rejected(_)
        ));
        assert!(matches!(
            interpret(400, br#"{"error":"invalid_grant"}"#, true),
            TokenAnswer::Rejected(_)
        ));
        assert!(matches!(
            interpret(503, br#"{"code":"server_error"}"#, true),
            TokenAnswer::Transient(_)
        ));
        assert!(is_permanent_code(Some("REFRESH_TOKEN_EXPIRED")));
        assert!(!is_permanent_code(None));
    }

    #[test]
    fn short_lived_tokens_get_half_their_life_as_margin() {
        let min = 60_000;
        // A 2-minute token: refreshed after 1 minute, not on every request.
        assert_eq!(margin_ms(Some(2 * min), REQUEST_MARGIN_CAP_MS), min);
        assert!(!due(0, Some(2 * min), Some(0), REQUEST_MARGIN_CAP_MS));
        assert!(due(min, Some(2 * min), Some(0), REQUEST_MARGIN_CAP_MS));
        // A 10-day token: 10 minutes before expiry in the background.
        let day = 24 * 60 * min;
        assert_eq!(margin_ms(Some(10 * day), PROACTIVE_MARGIN_CAP_MS), 10 * min);
        assert_eq!(margin_ms(None, PROACTIVE_MARGIN_CAP_MS), 10 * min);
        assert!(!due(0, None, None, PROACTIVE_MARGIN_CAP_MS));
    }
}
