//! The broker's token endpoint, for Codex: `POST /oauth/token` shaped like OpenAI's, so
//! `CODEX_REFRESH_TOKEN_URL_OVERRIDE` can point Codex at it. Every refresh Codex asks for goes
//! through cao's custody ([`TokenBroker`]): one spend per refresh token under the account's
//! lease, and a refresh token that was already rotated gets the current tokens back (no spend).
//!
//! `cao run` starts a [`Loopback`] endpoint on 127.0.0.1 for the length of the run; the running
//! gateway serves the same endpoint (its own route `POST /oauth/token`), so a Codex routed through it (the
//! shim sets `CODEX_REFRESH_TOKEN_URL_OVERRIDE`) refreshes a login cao also holds through cao's
//! custodian instead of spending the token on its own. A refresh token cao holds no login for
//! (the person's own, separate login) is [`Stranger::Forward`]ed to the real token URL as is. The answer
//! is what Codex reads (codex-rs `login/src/auth/manager.rs`): `id_token`, `access_token`,
//! `refresh_token` on success; a 401 with `error.code` `refresh_token_invalidated` when the login
//! is dead (Codex then asks the person to log in again, and does not retry); a 503 otherwise
//! (Codex treats it as transient).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::gateway::tokens::broker::{CredError, Endpoint, Presented, TokenBroker, Want};
use crate::store::custody::fingerprint;
use crate::store::{AuthState, Store};

/// Codex's own environment variable for the token URL.
pub use crate::codex::REFRESH_TOKEN_URL_ENV as TOKEN_URL_ENV;

/// The real token URL for refreshes Codex asks cao for: the user's
/// `CODEX_REFRESH_TOKEN_URL_OVERRIDE` (as Codex itself honours it), else the saved gateway
/// `tokenUrl`, else OpenAI's.
pub fn real_token_url(store: &Store) -> String {
    if let Some(u) = std::env::var(TOKEN_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        return u;
    }
    store
        .load_gateway()
        .ok()
        .and_then(|g| g.token_url)
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| crate::gateway::config::options::DEFAULT_TOKEN_URL.to_string())
}

/// The account holding `refresh_token`: as its current login, or in its custody ledger.
fn owner(broker: &TokenBroker, refresh_token: &str) -> Option<String> {
    let store = broker.store();
    let accounts = store.load_registry().ok()?.accounts;
    let fp = fingerprint(refresh_token);
    let holds = |name: &String| match store.load_auth(name) {
        Ok(AuthState::Present(f)) => {
            f.tokens().and_then(|t| t.refresh_token).as_deref() == Some(refresh_token)
        }
        _ => false,
    };
    accounts
        .iter()
        .find(|n| holds(n))
        .or_else(|| accounts.iter().find(|n| broker.ledger(n).knows(&fp)))
        .cloned()
}

fn field(body: &[u8], key: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v.get(key).and_then(Value::as_str).map(str::to_string);
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn reply(status: StatusCode, v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn dead(message: &str) -> Response {
    reply(
        StatusCode::UNAUTHORIZED,
        &json!({"error": {"code": "refresh_token_invalidated", "message": message}}),
    )
}

/// What to do with a refresh token cao holds no login for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stranger {
    /// Say the login is not valid (`cao run`'s broker: its Codex runs in an account dir).
    Refuse,
    /// Send the request on to the real token URL untouched and pass the answer back (the
    /// gateway: a routed Codex with a login of its own refreshes it as it always did).
    Forward,
}

/// Answer one refresh request.
pub async fn answer(
    broker: &Arc<TokenBroker>,
    headers: &HeaderMap,
    body: &[u8],
    stranger: Stranger,
) -> Response {
    let Some(refresh_token) = field(body, "refresh_token").filter(|t| !t.is_empty()) else {
        return reply(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "refresh_token is required"}),
        );
    };
    let b = broker.clone();
    let rt = refresh_token.clone();
    let account = tokio::task::spawn_blocking(move || owner(&b, &rt))
        .await
        .ok()
        .flatten();
    let Some(account) = account else {
        return match stranger {
            Stranger::Forward => forward(broker, headers, body).await,
            Stranger::Refuse => {
                dead("cao holds no login with this refresh token; log in again with `cao add`")
            }
        };
    };
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let want = Want::Presented(Presented {
        refresh_token,
        reason: field(body, "refresh_reason"),
        user_agent: header("user-agent"),
        originator: header("originator"),
    });
    match broker.refresh(&account, want).await {
        Ok(t) => {
            let mut v = json!({"access_token": t.access_token, "token_type": "Bearer"});
            if let Some(id) = t.id_token {
                v["id_token"] = json!(id);
            }
            if let Some(r) = t.refresh_token {
                v["refresh_token"] = json!(r);
            }
            reply(StatusCode::OK, &v)
        }
        Err(CredError::NeedsLogin) => {
            let store = broker.store().clone();
            let name = account.clone();
            let _ = tokio::task::spawn_blocking(move || {
                store.update_account_status(&name, |s| s.needs_login = Some(true))
            })
            .await;
            dead(&format!(
                "the login of account {account} is no longer valid; run `cao add {account}`"
            ))
        }
        Err(CredError::NoLogin | CredError::Unknown) => {
            dead("cao holds no login with this refresh token; log in again with `cao add`")
        }
        Err(CredError::Transient(why)) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": {"code": "temporarily_unavailable", "message": why}}),
        ),
    }
}

/// Most time a forwarded refresh may take.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Send a refresh of a login cao does not hold to the real token URL, as the client sent it
/// (body, content type, user agent, originator), and pass the answer back. Nothing is logged
/// but the status.
async fn forward(broker: &TokenBroker, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut req = http::Request::post(&broker.endpoint.url);
    for name in [
        header::CONTENT_TYPE,
        header::USER_AGENT,
        header::ACCEPT,
        http::HeaderName::from_static("originator"),
    ] {
        if let Some(v) = headers.get(&name) {
            req = req.header(name, v.clone());
        }
    }
    let unavailable = |why: &str| {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": {"code": "temporarily_unavailable", "message": why}}),
        )
    };
    let Ok(req) = req.body(http_body_util::Full::new(Bytes::copy_from_slice(body))) else {
        return unavailable("could not build the token request");
    };
    let resp = match tokio::time::timeout(FORWARD_TIMEOUT, broker.client.request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => return unavailable("the token endpoint could not be reached"),
        Err(_) => return unavailable("the token endpoint did not answer in time"),
    };
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = match tokio::time::timeout(
        FORWARD_TIMEOUT,
        http_body_util::BodyExt::collect(http_body_util::Limited::new(resp.into_body(), 1 << 20)),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        _ => return unavailable("the token endpoint's answer broke off"),
    };
    tracing::debug!(
        status = status.as_u16(),
        "forwarded a refresh of a login cao does not hold"
    );
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn handle(
    State(broker): State<Arc<TokenBroker>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&broker, &headers, &body, Stranger::Refuse).await
}

/// The router serving `POST /oauth/token` (and `POST /` for a bare override URL).
pub fn router(broker: Arc<TokenBroker>) -> Router {
    Router::new()
        .route("/oauth/token", post(handle))
        .route("/", post(handle))
        .with_state(broker)
}

/// A loopback token endpoint for the length of one `cao run`.
pub struct Loopback {
    runtime: tokio::runtime::Runtime,
    broker: Arc<TokenBroker>,
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Loopback {
    /// Bind 127.0.0.1 on a free port and serve custody for every account of `store`.
    pub fn start(store: &Store) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cao-token-broker")
            .enable_all()
            .build()
            .context("could not start the token broker's runtime")?;
        let store = Arc::new(Store::at(store.root()));
        let endpoint = Endpoint {
            url: real_token_url(&store),
            client_id: store
                .load_gateway()
                .ok()
                .and_then(|g| g.oauth_client_id)
                .unwrap_or_else(|| crate::gateway::config::options::DEFAULT_CLIENT_ID.to_string()),
        };
        // The saved gateway's extra upstream CA applies to its token URL here too.
        let ca = store.load_gateway().ok().and_then(|g| g.upstream_ca_file);
        let client =
            crate::net::connector::http_client_trusting(ca.as_deref().map(std::path::Path::new))?;
        let broker = Arc::new(TokenBroker::new(store, client, endpoint));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(broker.clone());
        let (addr, task) = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("the token broker could not listen on 127.0.0.1")?;
            let addr = listener.local_addr()?;
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
            Ok::<_, anyhow::Error>((addr, task))
        })?;
        Ok(Self {
            runtime,
            broker,
            addr,
            stop,
            task,
        })
    }

    /// What `CODEX_REFRESH_TOKEN_URL_OVERRIDE` is set to for Codex.
    pub fn url(&self) -> String {
        format!("http://{}/oauth/token", self.addr)
    }

    /// Stop: wait for refreshes in flight and their saves, save what failed to save, and fail
    /// naming the rescue file if some rotated tokens still could not be saved.
    pub fn stop(self) -> anyhow::Result<()> {
        let Self {
            runtime,
            broker,
            stop,
            task,
            ..
        } = self;
        let _ = stop.send(());
        let finished = runtime.block_on(async {
            let _ = task.await;
            broker.finish().await
        });
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        Ok(finished?)
    }

    /// Refreshes in flight right now.
    pub fn in_flight(&self) -> usize {
        self.broker.in_flight()
    }
}
