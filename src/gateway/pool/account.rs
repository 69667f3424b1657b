//! One account as the gateway holds it: credentials ready for a request, cooldown and login
//! state (atomics, read on every request), and the cookie jar. Token custody (single flight,
//! unsaved tokens) lives in the broker ([`crate::gateway::tokens::broker`]).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::policy::account::{Facts, State, assess};
use crate::policy::route::Candidate;
use crate::policy::strategy::DEFAULT_SWITCH_AT;
use crate::store::auth_file::{TokenSet, decode_claims};

/// The ChatGPT account a bearer belongs to (Codex sends it with every model call).
pub const CHATGPT_ACCOUNT_ID: HeaderName = HeaderName::from_static("chatgpt-account-id");

/// One account's credentials, ready to put on a request.
pub struct Creds {
    pub tokens: TokenSet,
    /// Access token expiry, ms since the epoch.
    pub exp_ms: Option<i64>,
    /// When the access token was issued, ms since the epoch (read once, not per request).
    pub iat_ms: Option<i64>,
    /// `Bearer <access token>`, marked sensitive.
    pub bearer: HeaderValue,
    /// The ChatGPT account id the bearer belongs to.
    pub account_header: Option<HeaderValue>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("account_id", &self.tokens.account_id)
            .field("exp_ms", &self.exp_ms)
            .finish_non_exhaustive()
    }
}

impl Creds {
    /// Build from a token set; `None` if the access token cannot be a header value.
    pub fn new(tokens: TokenSet) -> Option<Self> {
        let claims = decode_claims(&tokens.access_token).unwrap_or_default();
        let mut tokens = tokens;
        if tokens.account_id.is_none() {
            tokens.account_id = claims.chatgpt_account_id.clone();
        }
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", tokens.access_token)).ok()?;
        bearer.set_sensitive(true);
        let account_header = tokens
            .account_id
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok());
        Some(Self {
            exp_ms: claims.exp.map(|e| e.saturating_mul(1000)),
            iat_ms: claims.iat.map(|i| i.saturating_mul(1000)),
            tokens,
            bearer,
            account_header,
        })
    }

    /// Put the bearer and its ChatGPT account id on `headers` (the gateway's model calls and its
    /// usage polls alike).
    pub fn put_on(&self, headers: &mut HeaderMap) {
        headers.insert(header::AUTHORIZATION, self.bearer.clone());
        if let Some(a) = &self.account_header {
            headers.insert(CHATGPT_ACCOUNT_ID, a.clone());
        }
    }

    /// Whether the access token expires within `margin_ms` of `now_ms`.
    pub fn expiring(&self, now_ms: i64, margin_ms: i64) -> bool {
        self.exp_ms.is_some_and(|e| e - margin_ms <= now_ms)
    }
}

/// One account in the pool.
pub struct Account {
    pub name: String,
    creds: RwLock<Option<Arc<Creds>>>,
    /// A background refresh of this account is running (one at a time).
    proactive: AtomicBool,
    /// No background refresh before this time (ms; after a failed one).
    proactive_not_before: AtomicI64,
    pub(super) cooldown_until_ms: AtomicI64,
    /// When the gateway last learnt a cooldown for this account (ms): an answer to a request
    /// sent before then is no evidence that the cooldown is over.
    pub(super) cooldown_learnt_ms: AtomicI64,
    pub(super) needs_login: AtomicBool,
    /// mtime of auth.json when last read or written by us.
    pub(super) auth_mtime: Mutex<Option<SystemTime>>,
    /// Cookies upstream set for this account (e.g. Cloudflare's), sent back on its requests in
    /// place of the client's own: `name=value` pairs and the ready `cookie` header.
    cookies: Mutex<Vec<(String, String)>>,
    cookie_header: RwLock<Option<HeaderValue>>,
}

impl Account {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            creds: RwLock::new(None),
            proactive: AtomicBool::new(false),
            proactive_not_before: AtomicI64::new(0),
            cooldown_until_ms: AtomicI64::new(0),
            cooldown_learnt_ms: AtomicI64::new(0),
            needs_login: AtomicBool::new(false),
            auth_mtime: Mutex::new(None),
            cookies: Mutex::new(Vec::new()),
            cookie_header: RwLock::new(None),
        }
    }

    pub fn creds(&self) -> Option<Arc<Creds>> {
        self.creds.read().ok().and_then(|c| c.clone())
    }

    pub fn set_creds(&self, creds: Option<Arc<Creds>>) {
        if let Ok(mut c) = self.creds.write() {
            *c = creds;
        }
    }

    /// Claim the background refresh of this account at `now_ms` (false when one is running,
    /// or a failed one asked to wait).
    pub fn begin_proactive(&self, now_ms: i64) -> bool {
        self.proactive_not_before.load(Ordering::Relaxed) <= now_ms
            && !self.proactive.swap(true, Ordering::AcqRel)
    }

    /// The background refresh ended; after a failure, wait until `retry_at_ms`.
    pub fn end_proactive(&self, retry_at_ms: Option<i64>) {
        if let Some(t) = retry_at_ms {
            self.proactive_not_before.store(t, Ordering::Relaxed);
        }
        self.proactive.store(false, Ordering::Release);
    }

    pub fn cooldown_until(&self) -> Option<i64> {
        Some(self.cooldown_until_ms.load(Ordering::Relaxed)).filter(|u| *u > 0)
    }

    /// The `cookie` header for this account's upstream requests, if upstream set any.
    pub fn cookie_header(&self) -> Option<HeaderValue> {
        self.cookie_header.read().ok().and_then(|c| c.clone())
    }

    /// Remember the cookies of `Set-Cookie` headers (name and value only; at most 32).
    pub fn store_cookies(&self, headers: &http::HeaderMap) {
        let mut set = headers.get_all(http::header::SET_COOKIE).iter().peekable();
        if set.peek().is_none() {
            return;
        }
        let Ok(mut jar) = self.cookies.lock() else {
            return;
        };
        for v in set {
            let Some((name, value)) = v
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|nv| nv.split_once('='))
            else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            jar.retain(|(n, _)| n != name);
            if !value.is_empty() && jar.len() < 32 {
                jar.push((name.to_string(), value.to_string()));
            }
        }
        let joined: Vec<String> = jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let header = HeaderValue::from_str(&joined.join("; ")).ok().map(|mut h| {
            h.set_sensitive(true);
            h
        });
        if let Ok(mut c) = self.cookie_header.write() {
            *c = header.filter(|_| !jar.is_empty());
        }
    }

    /// Where the account stands at `now_ms` ([`crate::policy::account::assess`]), given its
    /// main window's used percent.
    pub fn state(&self, used_percent: Option<f64>, switch_at: f64, now_ms: i64) -> State {
        let facts = Facts {
            unreadable: false,
            needs_login: self.needs_login() || self.creds().is_none(),
            cooldown_until_ms: self.cooldown_until(),
            used_percent,
        };
        assess(&facts, switch_at, now_ms)
    }

    /// Usable at `now_ms`: logged in, not needing a new login, not cooling.
    pub fn is_ready(&self, now_ms: i64) -> bool {
        // No usage given: full or spent do not arise, and they take requests anyway.
        self.state(None, DEFAULT_SWITCH_AT, now_ms).takes_requests()
    }

    pub fn needs_login(&self) -> bool {
        self.needs_login.load(Ordering::Relaxed)
    }

    /// The account as routing sees it, without usage (the caller adds it) and not tried.
    pub(super) fn candidate(&self) -> Candidate<'_> {
        Candidate {
            name: &self.name,
            cooldown_until_ms: self.cooldown_until(),
            needs_login: self.needs_login() || self.creds().is_none(),
            ..Default::default()
        }
    }
}

/// The accounts in rotation order (default first, then registry order).
#[derive(Default)]
pub struct Pool {
    pub accounts: Vec<Arc<Account>>,
}
