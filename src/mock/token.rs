//! The mock's STRICT OAuth token endpoint (`POST .../oauth/token`), shaped like OpenAI's:
//!
//! - every refresh token works exactly once; the answer carries a new one (rotation);
//! - a spent refresh token presented again is answered 401 `refresh_token_reused` and revokes
//!   the whole login (the family): every later refresh of it, even with the newest refresh
//!   token, is answered 401 `refresh_token_invalidated`;
//! - the rotation happens when the request arrives; `refresh_delay_ms` then holds the answer
//!   back, so a client that dies meanwhile has spent its token without learning the new one;
//! - faulty 2xx answers on demand ([`RefreshFault::CutOff`], [`RefreshFault::NoAccessToken`],
//!   [`RefreshFault::BadAccessToken`]): each one spends the presented token too.
//!
//! Every refresh token presented is recorded ([`Presented`]), so a test can assert "no spent
//! refresh token was ever presented" ([`super::MockUpstream::spent_tokens_presented`]).
//!
//! Refresh tokens look like `rt-<account id>-<n>`: the account (the family) is read from the
//! token, so tests can write fresh logins without registering them first.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::RecordedRequest;
use super::scenario::RefreshFault;
use super::shared::Shared;
use super::token_ledger::Ledger;
pub use super::token_ledger::{Presented, Verdict};
use crate::store::auth_file::make_unsigned_jwt;

/// How the 2xx body is delivered.
enum Body2xx {
    Whole(Value),
    /// The head and half the JSON, then the connection breaks.
    CutOff(Value),
}

/// The account a refresh token belongs to: tokens look like `rt-<account id>-<n>` (this mock
/// issues them so; tests write them so).
pub(super) fn refresh_token_account(token: &str) -> Option<String> {
    let rest = token.strip_prefix("rt-")?;
    let (acct, n) = rest.rsplit_once('-')?;
    (!acct.is_empty() && n.chars().all(|c| c.is_ascii_digit())).then(|| acct.to_string())
}

/// Read a string field from a JSON body (what Codex sends) or a form body (what the
/// TypeScript tool sends).
pub(super) fn body_field(body: &[u8], key: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v.get(key).and_then(Value::as_str).map(str::to_string);
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Answer one `POST .../oauth/token`.
pub(super) async fn handle(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Response {
    let headers = &parts.headers;
    let token = body_field(body, "refresh_token");
    let account = token.as_deref().and_then(refresh_token_account);
    let (faults, ttl, record) = shared
        .scenario
        .read()
        .map(|s| {
            (
                s.faults_for(account.as_deref()).clone(),
                s.access_token_ttl_seconds,
                s.record_requests,
            )
        })
        .unwrap_or_default();
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, answer, verdict) = {
        let mut st = match shared.state.lock() {
            Ok(st) => st,
            Err(p) => p.into_inner(),
        };
        let ledger = &mut st.tokens;
        let (status, answer, verdict) =
            decide(ledger, token.as_deref(), account.as_deref(), &faults, ttl);
        ledger.presented.push(Presented {
            token: token.clone().unwrap_or_default(),
            account: account.clone(),
            verdict,
            status: status.as_u16(),
            user_agent: header("user-agent"),
            originator: header("originator"),
            refresh_reason: body_field(body, "refresh_reason"),
        });
        if record {
            let at_ms = shared.started.elapsed().as_millis() as u64;
            st.requests.push(RecordedRequest {
                method: "POST".into(),
                path: "/oauth/token".into(),
                bearer_account: account.clone(),
                header_account: None,
                session_id: None,
                had_cookie: false,
                cookie: None,
                body_len: body.len(),
                status: status.as_u16(),
                at_ms,
                version: parts.version,
            });
        }
        (status, answer, verdict)
    };
    let _ = verdict;
    // The rotation is done: a client that dies during this delay has spent its token.
    if faults.refresh_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.refresh_delay_ms)).await;
    }
    respond(status, answer)
}

fn decide(
    ledger: &mut Ledger,
    token: Option<&str>,
    account: Option<&str>,
    faults: &super::AccountFaults,
    ttl: i64,
) -> (StatusCode, Body2xx, Verdict) {
    let err = |status: StatusCode, v: Value, verdict| (status, Body2xx::Whole(v), verdict);
    let (Some(token), Some(account)) = (token, account) else {
        return err(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "missing or unknown refresh_token"}),
            Verdict::Unknown,
        );
    };
    if ledger.spent.contains(token) {
        ledger.revoked.insert(account.to_string());
        return err(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "refresh_token_reused",
                "message": "Your refresh token has already been used to generate a new access token. Please try signing in again."}}),
            Verdict::Reused,
        );
    }
    if ledger.revoked.contains(account) {
        return err(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "refresh_token_invalidated",
                "message": "Your refresh token has been invalidated. Please try signing in again."}}),
            Verdict::Revoked,
        );
    }
    let fired = ledger.faults_fired.get(account).copied().unwrap_or(0);
    let fault = if faults.refresh_fault_times.is_none_or(|t| fired < t) {
        faults.refresh
    } else {
        RefreshFault::Ok
    };
    if fault != RefreshFault::Ok {
        *ledger.faults_fired.entry(account.to_string()).or_default() += 1;
    }
    match fault {
        RefreshFault::Reused => {
            return err(
                StatusCode::UNAUTHORIZED,
                json!({"error": {"code": "refresh_token_reused", "message": "injected"}}),
                Verdict::Refused,
            );
        }
        RefreshFault::InvalidGrant => {
            return err(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_grant", "error_description": "refresh token is invalid"}),
                Verdict::Refused,
            );
        }
        RefreshFault::Error => {
            return err(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "server_error"}),
                Verdict::Refused,
            );
        }
        _ => {}
    }
    // Rotate: the presented token is spent from here on, whatever the answer looks like.
    ledger.spent.insert(token.to_string());
    ledger.next_seq += 1;
    let seq = ledger.next_seq;
    let iat = now_secs();
    let exp = iat + ttl;
    let auth = json!({"chatgpt_account_id": account, "chatgpt_plan_type": "plus",
                      "chatgpt_user_id": format!("user-{account}")});
    let access = make_unsigned_jwt(
        &json!({"exp": exp, "iat": iat, "mock_seq": seq, "https://api.openai.com/auth": auth}),
    );
    let id = make_unsigned_jwt(
        &json!({"exp": exp, "email": format!("{account}@example.com"),
                                       "https://api.openai.com/auth": auth}),
    );
    ledger.issued_access_tokens.insert(access.clone());
    *ledger.refreshes.entry(account.to_string()).or_default() += 1;
    let mut v = json!({"access_token": access, "id_token": id,
                       "refresh_token": format!("rt-{account}-{seq}"),
                       "token_type": "Bearer", "expires_in": ttl});
    let body = match fault {
        RefreshFault::CutOff => Body2xx::CutOff(v),
        RefreshFault::NoAccessToken => {
            if let Some(o) = v.as_object_mut() {
                o.remove("access_token");
            }
            Body2xx::Whole(v)
        }
        RefreshFault::BadAccessToken => {
            v["access_token"] = json!("not a header\nvalue");
            Body2xx::Whole(v)
        }
        _ => Body2xx::Whole(v),
    };
    (StatusCode::OK, body, Verdict::Rotated)
}

fn respond(status: StatusCode, body: Body2xx) -> Response {
    let (text, cut) = match body {
        Body2xx::Whole(v) => (v.to_string(), false),
        Body2xx::CutOff(v) => (v.to_string(), true),
    };
    let len = text.len();
    let body = if cut {
        // Announce the whole length, send half, then break the connection.
        let half = Bytes::from(text.into_bytes()).slice(..len / 2);
        let parts: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(half),
            Err(std::io::Error::other("mock: connection cut mid-answer")),
        ];
        Body::from_stream(futures_util::stream::iter(parts))
    } else {
        Body::from(text)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if cut && let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        r.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::AccountFaults;

    #[test]
    fn refresh_tokens_name_their_account() {
        assert_eq!(
            refresh_token_account("rt-acc-1-0").as_deref(),
            Some("acc-1")
        );
        assert_eq!(refresh_token_account("rt-a-12").as_deref(), Some("a"));
        assert_eq!(refresh_token_account("rt--1"), None);
        assert_eq!(refresh_token_account("rt-abc-x"), None);
        assert_eq!(refresh_token_account("other"), None);
    }

    #[test]
    fn reads_refresh_token_from_json_or_form() {
        assert_eq!(
            body_field(
                br#"{"client_id":"c","grant_type":"refresh_token","refresh_token":"rt-a-1"}"#,
                "refresh_token"
            )
            .as_deref(),
            Some("rt-a-1")
        );
        assert_eq!(
            body_field(
                b"grant_type=refresh_token&refresh_token=rt-b-2",
                "refresh_token"
            )
            .as_deref(),
            Some("rt-b-2")
        );
    }

    #[test]
    fn each_token_works_once_and_reuse_revokes_the_family() {
        let mut l = Ledger::default();
        let f = AccountFaults::default();
        let (s, body, v) = decide(&mut l, Some("rt-a-0"), Some("a"), &f, 60);
        assert_eq!((s, v), (StatusCode::OK, Verdict::Rotated));
        let Body2xx::Whole(body) = body else {
            panic!("whole body expected")
        };
        let next = body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // The old token again: reuse, and the family dies...
        let (s, _, v) = decide(&mut l, Some("rt-a-0"), Some("a"), &f, 60);
        assert_eq!((s, v), (StatusCode::UNAUTHORIZED, Verdict::Reused));
        // ...so even the newest token no longer works.
        let (s, _, v) = decide(&mut l, Some(&next), Some("a"), &f, 60);
        assert_eq!((s, v), (StatusCode::UNAUTHORIZED, Verdict::Revoked));
    }

    #[test]
    fn faulty_2xx_answers_spend_the_token_and_fire_only_as_often_as_asked() {
        let mut l = Ledger::default();
        let f = AccountFaults {
            refresh: RefreshFault::NoAccessToken,
            refresh_fault_times: Some(1),
            ..Default::default()
        };
        let (s, body, _) = decide(&mut l, Some("rt-a-0"), Some("a"), &f, 60);
        assert_eq!(s, StatusCode::OK);
        let Body2xx::Whole(body) = body else {
            panic!("whole body expected")
        };
        assert!(body.get("access_token").is_none());
        let next = body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (_, _, v) = decide(&mut l, Some("rt-a-0"), Some("a"), &f, 60);
        assert_eq!(v, Verdict::Reused, "the faulty 2xx spent the token");
        let mut l = Ledger::default();
        let (_, _, _) = decide(&mut l, Some("rt-a-0"), Some("a"), &f, 60);
        let (s, body, v) = decide(&mut l, Some(&next), Some("a"), &f, 60);
        assert_eq!((s, v), (StatusCode::OK, Verdict::Rotated));
        assert!(matches!(body, Body2xx::Whole(b) if b.get("access_token").is_some()));
    }
}
