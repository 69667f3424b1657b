//! Token custody: refresh access tokens shortly before they expire and after a 401, one refresh
//! at a time per account, without ever losing a rotated refresh token.
//!
//! The refresh request is what the Codex CLI sends (codex-rs `login/src/auth/manager.rs`):
//! `POST <token url>` with JSON `{"client_id", "grant_type": "refresh_token", "refresh_token"}`;
//! the answer carries `access_token`, `id_token` and `refresh_token` (each optional). A 401, or an
//! error code `refresh_token_expired` / `refresh_token_reused` / `refresh_token_invalidated`
//! (in `error.code`, `error` or `code`), or `invalid_grant`, is permanent: the account needs a
//! new login.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::state::{Account, Creds, GatewayState};
use crate::codex::auth::{AuthFile, TokenSet};
use crate::store::AuthState;

/// Refresh this long before the access token expires (Codex itself uses 5 minutes).
pub const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

/// Most time a token refresh may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no credentials could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredError {
    #[error("account has no usable login")]
    NoLogin,
    #[error("the refresh token was rejected; the account needs `cao add` (codex login) again")]
    NeedsLogin,
    #[error("token refresh failed: {0}")]
    Transient(String),
}

/// Credentials for a request: the cached ones, refreshed first if they expire soon.
pub async fn credentials(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    now_ms: i64,
) -> Result<Arc<Creds>, CredError> {
    match acct.creds() {
        Some(c) if !c.expiring(now_ms, REFRESH_MARGIN_MS) => Ok(c),
        Some(c) => {
            let stale = c.tokens.access_token.clone();
            match refresh(state, acct, Some(&stale)).await {
                Ok(c) => Ok(c),
                // Still valid for a bit: serve with it rather than fail.
                Err(CredError::Transient(_)) if !c.expiring(now_ms, 0) => Ok(c),
                Err(e) => Err(e),
            }
        }
        None => Err(CredError::NoLogin),
    }
}

/// Refresh the account's tokens unless someone already did since `stale` (the access token the
/// caller saw fail or expire). Single flight: concurrent callers wait for one refresh.
///
/// The refresh runs in its own task: a client that hangs up mid-refresh must not cancel it
/// between "the token endpoint rotated the refresh token" and "the new one is saved", or the
/// login would be lost.
pub async fn refresh(
    state: &Arc<GatewayState>,
    acct: &Arc<Account>,
    stale: Option<&str>,
) -> Result<Arc<Creds>, CredError> {
    let (state, acct, stale) = (state.clone(), acct.clone(), stale.map(str::to_string));
    tokio::spawn(async move { refresh_detached(&state, &acct, stale.as_deref()).await })
        .await
        .unwrap_or_else(|e| Err(CredError::Transient(format!("refresh task failed: {e}"))))
}

async fn refresh_detached(
    state: &GatewayState,
    acct: &Account,
    stale: Option<&str>,
) -> Result<Arc<Creds>, CredError> {
    let _flight = acct.refresh_lock.lock().await;
    let now = crate::store::now_ms();
    let fresh = |c: &Creds| {
        Some(c.tokens.access_token.as_str()) != stale && !c.expiring(now, REFRESH_MARGIN_MS)
    };
    if let Some(c) = acct.creds().filter(|c| fresh(c)) {
        return Ok(c);
    }
    if acct.needs_login() {
        return Err(CredError::NeedsLogin);
    }
    // Take the account's file lock and re-read auth.json: Codex or another cao may have rotated
    // the tokens already; then use theirs and do not spend the refresh token again.
    let store = state.store.clone();
    let name = acct.name.clone();
    let locked = tokio::task::spawn_blocking(move || {
        let lock = store.lock_auth(&name)?;
        let auth = store.load_auth(&name)?;
        Ok::<_, crate::store::StoreError>((lock, auth))
    })
    .await
    .map_err(|e| CredError::Transient(e.to_string()))?;
    let (lock, disk) = locked.map_err(|e| CredError::Transient(e.to_string()))?;
    let mut file = match disk {
        AuthState::Present(f) => f,
        _ => return Err(CredError::NoLogin),
    };
    let on_disk = file.tokens();
    if let Some(c) = on_disk.clone().and_then(Creds::new).filter(|c| fresh(c)) {
        let c = Arc::new(c);
        acct.set_creds(Some(c.clone()));
        return Ok(c);
    }
    let memory = acct.creds().map(|c| c.tokens.clone());
    let spent = |t: &TokenSet| {
        t.refresh_token.as_ref().is_some_and(|r| {
            acct.used_refresh_tokens
                .lock()
                .map(|u| u.contains(r))
                .unwrap_or(false)
        })
    };
    // Disk wins when it holds a refresh token we have not spent (someone else rotated). When it
    // still holds one we spent, our rotated tokens could not be saved yet: use those from memory
    // (the pending write retries in the background) rather than declare the login lost.
    let current = match (on_disk, memory) {
        (Some(disk), Some(mem)) if spent(&disk) && !spent(&mem) => mem,
        (disk, mem) => disk.or(mem).ok_or(CredError::NoLogin)?,
    };
    let Some(refresh_token) = current.refresh_token.clone() else {
        state.set_needs_login(acct, true);
        return Err(CredError::NeedsLogin);
    };
    let already_used = spent(&current);
    if already_used {
        tracing::warn!(account = %acct.name, "refresh token was already spent; not sending it again");
        state.set_needs_login(acct, true);
        return Err(CredError::NeedsLogin);
    }
    let answer = request_refresh(state, &refresh_token).await;
    // A rotation spends the old refresh token: it is never sent again. A transient error (5xx,
    // no answer) most likely did not spend it, so it may be retried later (as Codex does).
    if answer.is_ok()
        && let Ok(mut used) = acct.used_refresh_tokens.lock()
    {
        used.insert(refresh_token.clone());
    }
    state
        .counters
        .refreshes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let new = match answer {
        Ok(v) => v,
        Err(RefreshFailure::Permanent(why)) => {
            state
                .counters
                .refresh_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(account = %acct.name, "token refresh rejected ({why}); the account needs a new login");
            state.set_needs_login(acct, true);
            return Err(CredError::NeedsLogin);
        }
        Err(RefreshFailure::Transient(why) | RefreshFailure::Unreachable(why)) => {
            state
                .counters
                .refresh_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(account = %acct.name, "token refresh failed: {why}");
            return Err(CredError::Transient(why));
        }
    };
    let tokens = TokenSet {
        access_token: new.access_token,
        id_token: new.id_token.or(current.id_token),
        refresh_token: new.refresh_token.or(Some(refresh_token)),
        account_id: current.account_id,
    };
    let creds = Arc::new(Creds::new(tokens.clone()).ok_or_else(|| {
        CredError::Transient(
            "token endpoint returned an access token that is not a valid header".into(),
        )
    })?);
    acct.set_creds(Some(creds.clone()));
    let stamp = jiff::Timestamp::now().to_string();
    file.set_tokens(&tokens, &stamp);
    save(state, acct, file, lock).await;
    tracing::info!(account = %acct.name, "access token refreshed");
    Ok(creds)
}

/// Write rotated tokens (caller holds the account's auth lock). On failure they stay in memory
/// and the background task retries: a lost rotated refresh token would lock the user out.
async fn save(state: &GatewayState, acct: &Account, file: AuthFile, lock: crate::store::FileLock) {
    let (store, name, copy) = (state.store.clone(), acct.name.clone(), file.clone());
    // The mtime is read before the lock is released, so a later write by someone else is
    // never mistaken for ours.
    let written = tokio::task::spawn_blocking(move || {
        let r = store.save_auth(&name, &copy).map(|()| {
            std::fs::metadata(store.auth_path(&name))
                .and_then(|m| m.modified())
                .ok()
        });
        drop(lock);
        r.map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match written {
        Ok(mtime) => {
            if let Ok(mut am) = acct.auth_mtime.lock() {
                *am = mtime;
            }
            if let Ok(mut u) = acct.unsaved.lock() {
                *u = None;
            }
        }
        Err(e) => {
            tracing::error!(account = %acct.name, "could not save refreshed tokens ({e}); keeping them in memory and retrying");
            if let Ok(mut u) = acct.unsaved.lock() {
                *u = Some(file);
            }
        }
    }
}

fn note_written(state: &GatewayState, acct: &Account) {
    let m = std::fs::metadata(state.store.auth_path(&acct.name))
        .and_then(|m| m.modified())
        .ok();
    if let Ok(mut am) = acct.auth_mtime.lock() {
        *am = m;
    }
}

/// Retry a failed auth.json write (background task).
pub fn retry_unsaved(state: &GatewayState, acct: &Account) {
    let pending = acct.unsaved.lock().ok().and_then(|u| u.clone());
    let Some(file) = pending else {
        return;
    };
    let Ok(_lock) = state.store.lock_auth(&acct.name) else {
        return;
    };
    if state.store.save_auth(&acct.name, &file).is_ok() {
        note_written(state, acct);
        if let Ok(mut u) = acct.unsaved.lock() {
            *u = None;
        }
        tracing::info!(account = %acct.name, "saved the refreshed tokens");
    }
}

struct NewTokens {
    access_token: String,
    id_token: Option<String>,
    refresh_token: Option<String>,
}

enum RefreshFailure {
    /// The login is dead (needs `codex login`).
    Permanent(String),
    /// The endpoint answered with a retryable error (the token may have been spent).
    Transient(String),
    /// No answer at all (the token was not spent).
    Unreachable(String),
}

async fn request_refresh(
    state: &GatewayState,
    refresh_token: &str,
) -> Result<NewTokens, RefreshFailure> {
    let body = json!({
        "client_id": state.config.client_id,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    })
    .to_string();
    let req = http::Request::post(&state.config.token_url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| RefreshFailure::Unreachable(e.to_string()))?;
    let resp = tokio::time::timeout(REFRESH_TIMEOUT, state.client.request(req))
        .await
        .map_err(|_| RefreshFailure::Unreachable("token endpoint timed out".into()))?
        .map_err(|e| RefreshFailure::Unreachable(format!("token endpoint unreachable: {e}")))?;
    let status = resp.status().as_u16();
    let bytes = tokio::time::timeout(REFRESH_TIMEOUT, resp.into_body().collect())
        .await
        .map_err(|_| RefreshFailure::Transient("token endpoint stalled".into()))?
        .map_err(|e| RefreshFailure::Transient(e.to_string()))?
        .to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        return match s("access_token") {
            Some(access_token) => Ok(NewTokens {
                access_token,
                id_token: s("id_token"),
                refresh_token: s("refresh_token"),
            }),
            None => Err(RefreshFailure::Transient(
                "token endpoint answered without an access_token".into(),
            )),
        };
    }
    let code = refresh_error_code(&v);
    if status == 401 || is_permanent_refresh_code(code.as_deref()) {
        return Err(RefreshFailure::Permanent(
            code.unwrap_or_else(|| format!("HTTP {status}")),
        ));
    }
    Err(RefreshFailure::Transient(format!(
        "token endpoint answered HTTP {status}{}",
        code.map(|c| format!(" ({c})")).unwrap_or_default()
    )))
}

/// The error code of a token-endpoint error body: `error.code`, `error` (string), or `code`.
pub fn refresh_error_code(v: &Value) -> Option<String> {
    match v.get("error") {
        Some(Value::Object(o)) => o.get("code").and_then(Value::as_str).map(str::to_string),
        Some(Value::String(s)) => Some(s.clone()),
        _ => v.get("code").and_then(Value::as_str).map(str::to_string),
    }
}

/// Codes that mean the refresh token is dead for good.
pub fn is_permanent_refresh_code(code: Option<&str>) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_from_every_shape() {
        assert_eq!(
            refresh_error_code(&json!({"error": {"code": "refresh_token_reused"}})).as_deref(),
            Some("refresh_token_reused")
        );
        assert_eq!(
            refresh_error_code(&json!({"error": "invalid_grant"})).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(
            refresh_error_code(&json!({"code": "x"})).as_deref(),
            Some("x")
        );
        assert!(is_permanent_refresh_code(Some("REFRESH_TOKEN_EXPIRED")));
        assert!(!is_permanent_refresh_code(Some("server_error")));
        assert!(!is_permanent_refresh_code(None));
    }
}
