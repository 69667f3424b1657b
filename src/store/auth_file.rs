//! Codex's `auth.json` and the JWT claims cao reads from it.
//!
//! The file is kept as a JSON value so every field cao does not own survives a rewrite
//! (Codex adds fields over time). Only `tokens.*` and `last_refresh` are ever changed by cao.
//! JWTs are decoded without verification: cao only reads expiry, account id, plan and email,
//! and never trusts them for anything security-relevant.

use base64::Engine;
use serde_json::Value;

/// The tokens of a ChatGPT login.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TokenSet {
    pub id_token: Option<String>,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub account_id: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    /// Never prints a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("account_id", &self.account_id)
            .field("access_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A parsed auth.json, all fields preserved.
#[derive(Clone, PartialEq)]
pub struct AuthFile {
    raw: Value,
}

impl std::fmt::Debug for AuthFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFile").finish_non_exhaustive()
    }
}

/// Claims cao reads from Codex's JWTs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Expiry, seconds since the epoch.
    pub exp: Option<i64>,
    /// Issued at, seconds since the epoch (gives the token's lifetime with `exp`).
    pub iat: Option<i64>,
    pub email: Option<String>,
    pub chatgpt_account_id: Option<String>,
    pub plan_type: Option<String>,
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
}

impl AuthFile {
    /// Parse auth.json text. Errors carry serde's message (never the content).
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !raw.is_object() {
            return Err("expected a JSON object".to_string());
        }
        Ok(Self { raw })
    }

    /// A fresh ChatGPT-mode auth.json holding `tokens`.
    pub fn new_chatgpt(tokens: &TokenSet, last_refresh: &str) -> Self {
        let mut f = Self {
            raw: serde_json::json!({"OPENAI_API_KEY": null}),
        };
        f.set_tokens(tokens, last_refresh);
        f
    }

    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.raw).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The ChatGPT tokens, when an access token is present.
    pub fn tokens(&self) -> Option<TokenSet> {
        let t = self.raw.get("tokens")?;
        let s = |k: &str| {
            t.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Some(TokenSet {
            access_token: s("access_token")?,
            id_token: s("id_token"),
            refresh_token: s("refresh_token"),
            account_id: s("account_id"),
        })
    }

    /// Whether an API key (not a ChatGPT login) is stored.
    pub fn api_key(&self) -> Option<&str> {
        self.raw
            .get("OPENAI_API_KEY")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
    }

    /// `last_refresh` as milliseconds since the epoch.
    pub fn last_refresh_ms(&self) -> Option<i64> {
        let s = self.raw.get("last_refresh")?.as_str()?;
        s.parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
            .filter(|ms| *ms > 0)
    }

    /// Replace the tokens (keeping any other key of `tokens` and of the file) and set
    /// `last_refresh` (RFC 3339).
    pub fn set_tokens(&mut self, tokens: &TokenSet, last_refresh: &str) {
        let Some(obj) = self.raw.as_object_mut() else {
            return;
        };
        let entry = obj
            .entry("tokens")
            .or_insert_with(|| Value::Object(Default::default()));
        if !entry.is_object() {
            *entry = Value::Object(Default::default());
        }
        if let Some(t) = entry.as_object_mut() {
            t.insert(
                "access_token".into(),
                Value::String(tokens.access_token.clone()),
            );
            if let Some(v) = &tokens.id_token {
                t.insert("id_token".into(), Value::String(v.clone()));
            }
            if let Some(v) = &tokens.refresh_token {
                t.insert("refresh_token".into(), Value::String(v.clone()));
            }
            if let Some(v) = &tokens.account_id {
                t.insert("account_id".into(), Value::String(v.clone()));
            }
        }
        obj.insert(
            "last_refresh".into(),
            Value::String(last_refresh.to_string()),
        );
    }

    /// Claims of the access token merged with those of the id token (id token wins for email,
    /// access token for expiry).
    pub fn claims(&self) -> Claims {
        let Some(t) = self.tokens() else {
            return Claims::default();
        };
        let access = decode_claims(&t.access_token).unwrap_or_default();
        let id = t
            .id_token
            .as_deref()
            .and_then(decode_claims)
            .unwrap_or_default();
        Claims {
            exp: access.exp.or(id.exp),
            iat: access.iat.or(id.iat),
            email: id.email.or(access.email),
            chatgpt_account_id: t
                .account_id
                .clone()
                .or(access.chatgpt_account_id)
                .or(id.chatgpt_account_id),
            plan_type: access.plan_type.or(id.plan_type),
            user_id: access.user_id.or(id.user_id),
            organization_id: id.organization_id.or(access.organization_id),
        }
    }
}

/// Decode the claims of a JWT without verifying it. `None` if it is not a JWT with a JSON
/// object payload.
pub fn decode_claims(jwt: &str) -> Option<Claims> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let obj = v.as_object()?;
    let auth = obj.get("https://api.openai.com/auth");
    let auth_str = |k: &str| {
        auth.and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let profile_email = obj
        .get("https://api.openai.com/profile")
        .and_then(|p| p.get("email"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let org = auth
        .and_then(|a| a.get("organizations"))
        .and_then(Value::as_array)
        .and_then(|orgs| {
            orgs.iter()
                .find(|o| o.get("is_default").and_then(Value::as_bool) == Some(true))
                .or_else(|| orgs.first())
        })
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| auth_str("organization_id"));
    Some(Claims {
        exp: obj.get("exp").and_then(Value::as_f64).map(|f| f as i64),
        iat: obj.get("iat").and_then(Value::as_f64).map(|f| f as i64),
        email: obj
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(profile_email),
        chatgpt_account_id: auth_str("chatgpt_account_id"),
        plan_type: auth_str("chatgpt_plan_type"),
        user_id: auth_str("chatgpt_user_id").or_else(|| auth_str("user_id")),
        organization_id: org,
    })
}

/// Build an unsigned JWT with the given claims (for tests, `cao demo` and the mock upstream).
pub fn make_unsigned_jwt(claims: &Value) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        e.encode(br#"{"alg":"none","typ":"JWT"}"#),
        e.encode(claims.to_string()),
        e.encode(b"sig")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(v: Value) -> String {
        make_unsigned_jwt(&v)
    }

    #[test]
    fn decodes_codex_claims() {
        let c = decode_claims(&jwt(serde_json::json!({
            "exp": 1_900_000_000,
            "email": "a@example.com",
            "https://api.openai.com/auth": {
                "chatgpt_account_id": "acc-1", "chatgpt_plan_type": "plus", "chatgpt_user_id": "u1",
                "organizations": [{"id": "org-x", "is_default": false}, {"id": "org-d", "is_default": true}]
            }
        })))
        .unwrap_or_default();
        assert_eq!(c.exp, Some(1_900_000_000));
        assert_eq!(c.email.as_deref(), Some("a@example.com"));
        assert_eq!(c.chatgpt_account_id.as_deref(), Some("acc-1"));
        assert_eq!(c.plan_type.as_deref(), Some("plus"));
        assert_eq!(c.organization_id.as_deref(), Some("org-d"));
    }

    #[test]
    fn garbage_is_not_a_jwt() {
        assert!(decode_claims("nope").is_none());
        assert!(decode_claims("a.!!!.c").is_none());
        assert!(decode_claims("a.bnVsbA.c").is_none()); // "null"
    }

    #[test]
    fn set_tokens_keeps_unknown_fields() {
        let mut f = AuthFile::parse(
            r#"{"OPENAI_API_KEY":null,"tokens":{"access_token":"x","extra":1},"other":true}"#,
        )
        .unwrap_or_else(|_| AuthFile::new_chatgpt(&TokenSet::default(), ""));
        f.set_tokens(
            &TokenSet {
                access_token: "new".into(),
                refresh_token: Some("r2".into()),
                ..Default::default()
            },
            "2026-01-01T00:00:00Z",
        );
        let raw = f.raw();
        assert_eq!(raw["other"], true);
        assert_eq!(raw["tokens"]["extra"], 1);
        assert_eq!(raw["tokens"]["access_token"], "new");
        assert_eq!(raw["tokens"]["refresh_token"], "r2");
        assert_eq!(f.last_refresh_ms(), Some(1_767_225_600_000));
    }

    #[test]
    fn debug_never_shows_tokens() {
        let t = TokenSet {
            access_token: "secret-token".into(),
            ..Default::default()
        };
        assert!(!format!("{t:?}").contains("secret-token"));
    }
}
