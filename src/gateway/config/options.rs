//! Gateway options: overrides > `gateway.json` > defaults, validated (never clamped).
//!
//! Two layers, as in ripgrep's low-args/high-args split: [`Overrides`] is what a caller asks
//! for (the command line of `cao gateway start`, or a fixed set such as `cao run --gateway`'s
//! loopback-and-free-port), [`SavedGateway`] is what `gateway.json` holds (read and written
//! only through [`crate::store`]), and [`GatewayConfig::resolve`] turns the two into the one
//! resolved, checked set the gateway runs with. A new option is a field in each of the three.

use std::net::IpAddr;

use anyhow::{Context, bail};

use crate::gateway::config::overrides::Overrides;
use crate::gateway::config::perimeter_options;
use crate::policy::strategy::{DEFAULT_SWITCH_AT, Strategy};
use crate::policy::upstream::DEFAULT_COOLDOWN_S;
use crate::store::{SavedGateway, Store};

pub const DEFAULT_BIND: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 4319;
/// `--ws-keepalive-ms`: while a WebSocket turn has nothing to show Codex yet (switching
/// accounts, refreshing, backing off, waiting for the first output) a keepalive text frame goes
/// to Codex this often. Codex's idle timer (300 s, codex-rs `DEFAULT_STREAM_IDLE_TIMEOUT_MS`)
/// is reset by text frames, not by pings.
pub const DEFAULT_WS_KEEPALIVE_MS: u64 = 10_000;
/// `--idle-timeout-ms`: a stream silent for 5 minutes is ended. The same as Codex's own stream
/// idle timeout (codex-rs `DEFAULT_STREAM_IDLE_TIMEOUT_MS`), so the gateway never cuts a stream
/// Codex is still willing to wait for.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 300_000;
pub const DEFAULT_BASE_URL: &str = "https://chatgpt.com/backend-api/codex";
pub const DEFAULT_TOKEN_URL: &str = "https://auth.openai.com/oauth/token";
/// The Codex CLI's OAuth client id (codex-rs `login/src/auth/manager.rs`, `CLIENT_ID`).
pub const DEFAULT_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

/// Resolved gateway options.
#[derive(Clone, PartialEq)]
pub struct GatewayConfig {
    pub bind: IpAddr,
    pub port: u16,
    /// Upstream base URL without a trailing slash.
    pub base_url: String,
    pub cooldown_seconds: u64,
    pub max_retry_passes: u32,
    pub timeout_ms: u64,
    pub upstream_retries: u32,
    pub upstream_retry_base_ms: u64,
    pub upstream_retry_max_ms: u64,
    pub upstream_retry_jitter_ms: u64,
    /// Keep the client's own Authorization (the TypeScript `overrideAuth: false`).
    pub passthrough_auth: bool,
    pub no_app_env: bool,
    pub token_url: String,
    pub client_id: String,
    /// Access key clients must send (`x-cao-key`, or the bearer without passthrough).
    pub access_key: Option<String>,
    pub max_body_bytes: u64,
    pub idle_timeout_ms: u64,
    pub strategy: Strategy,
    pub switch_at: f64,
    /// Host allow-list extras, timeouts and the buffered-bytes budget ([`crate::gateway::front::perimeter`]).
    pub perimeter: perimeter_options::Options,
    /// The shared state of several replicas (`redis://…`); `None`: the data dir alone.
    pub state_url: Option<String>,
    /// The key sealing token sets in the shared state (required with `state_url`).
    pub state_key_file: Option<std::path::PathBuf>,
    /// CA certificates (PEM) a `rediss://` state URL is checked against instead of the web PKI
    /// roots (`--state-ca-file`).
    pub state_ca_file: Option<std::path::PathBuf>,
    /// Seconds between usage-endpoint polls of idle accounts; 0 = off (`--usage-poll`).
    pub usage_poll_seconds: u64,
    /// Answer WebSocket upgrades 426 (Codex then uses HTTP) instead of proxying them.
    pub no_websocket: bool,
    /// Keepalive frame interval of a WebSocket turn that has nothing to show Codex yet.
    pub ws_keepalive_ms: u64,
    /// A PEM file of CA certificates trusted for the upstream besides the public roots
    /// ([`crate::net::connector`]).
    pub upstream_ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for GatewayConfig {
    /// Never prints the access key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("base_url", &self.base_url)
            .field("access_key", &self.access_key.as_ref().map(|_| "<set>"))
            .field(
                "state_url",
                &self
                    .state_url
                    .as_deref()
                    .map(crate::shared::connect::redact_url),
            )
            .finish_non_exhaustive()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_PORT,
            base_url: DEFAULT_BASE_URL.to_string(),
            cooldown_seconds: DEFAULT_COOLDOWN_S,
            max_retry_passes: 1,
            timeout_ms: 120_000,
            upstream_retries: 2,
            upstream_retry_base_ms: 200,
            upstream_retry_max_ms: 2_000,
            upstream_retry_jitter_ms: 120,
            passthrough_auth: false,
            no_app_env: false,
            token_url: DEFAULT_TOKEN_URL.to_string(),
            client_id: DEFAULT_CLIENT_ID.to_string(),
            access_key: None,
            max_body_bytes: 64 * 1024 * 1024,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            strategy: Strategy::FillFirst,
            switch_at: DEFAULT_SWITCH_AT,
            perimeter: perimeter_options::Options::default(),
            state_url: None,
            state_key_file: None,
            state_ca_file: None,
            usage_poll_seconds: crate::policy::usage_poll::DEFAULT_INTERVAL_SECONDS,
            no_websocket: false,
            ws_keepalive_ms: DEFAULT_WS_KEEPALIVE_MS,
            upstream_ca_file: None,
        }
    }
}

impl GatewayConfig {
    /// `http://<bind>:<port>` as clients reach it.
    pub fn local_url(&self) -> String {
        match self.bind {
            IpAddr::V6(a) => format!("http://[{a}]:{}", self.port),
            IpAddr::V4(a) => format!("http://{a}:{}", self.port),
        }
    }

    /// Resolve `overrides`, then `saved`, then the defaults, and validate.
    pub fn resolve(saved: &SavedGateway, o: &Overrides) -> anyhow::Result<Self> {
        let d = Self::default();
        let text = |o: &Option<String>, s: &Option<String>| {
            o.as_deref().or(s.as_deref()).map(|t| t.trim().to_string())
        };
        let cfg = Self {
            bind: parse_bind(&text(&o.bind, &saved.bind_address).unwrap_or(DEFAULT_BIND.into()))?,
            port: o.port.or(saved.port).unwrap_or(d.port),
            base_url: text(&o.base_url, &saved.base_url).unwrap_or(d.base_url),
            cooldown_seconds: o
                .cooldown_seconds
                .or(saved.cooldown_seconds)
                .unwrap_or(d.cooldown_seconds),
            max_retry_passes: o
                .max_retry_passes
                .or(saved.max_retry_passes)
                .unwrap_or(d.max_retry_passes),
            timeout_ms: o
                .timeout_ms
                .or(saved.request_timeout_ms)
                .unwrap_or(d.timeout_ms),
            upstream_retries: o
                .upstream_retries
                .or(saved.upstream_max_retries)
                .unwrap_or(d.upstream_retries),
            upstream_retry_base_ms: o
                .upstream_retry_base_ms
                .or(saved.upstream_retry_base_ms)
                .unwrap_or(d.upstream_retry_base_ms),
            upstream_retry_max_ms: o
                .upstream_retry_max_ms
                .or(saved.upstream_retry_max_ms)
                .unwrap_or(d.upstream_retry_max_ms),
            upstream_retry_jitter_ms: o
                .upstream_retry_jitter_ms
                .or(saved.upstream_retry_jitter_ms)
                .unwrap_or(d.upstream_retry_jitter_ms),
            passthrough_auth: o.passthrough_auth || saved.override_auth == Some(false),
            no_app_env: o.no_app_env,
            no_websocket: o.no_websocket,
            token_url: text(&o.token_url, &saved.token_url).unwrap_or(d.token_url),
            client_id: text(&o.client_id, &saved.oauth_client_id).unwrap_or(d.client_id),
            access_key: crate::gateway::config::key_source::resolve(o)?,
            max_body_bytes: o
                .max_body_bytes
                .or(saved.max_body_bytes)
                .unwrap_or(d.max_body_bytes),
            idle_timeout_ms: o
                .idle_timeout_ms
                .or(saved.idle_timeout_ms)
                .unwrap_or(d.idle_timeout_ms),
            strategy: o.strategy.or(saved.strategy).unwrap_or(d.strategy),
            switch_at: o.switch_at.or(saved.switch_at).unwrap_or(d.switch_at),
            perimeter: perimeter_options::Options::resolve(o, saved),
            state_url: text(&o.state_url, &saved.state_url).filter(|u| !u.is_empty()),
            state_key_file: text(&o.state_key_file, &saved.state_key_file)
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from),
            state_ca_file: text(&o.state_ca_file, &saved.state_ca_file)
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from),
            usage_poll_seconds: o
                .usage_poll_seconds
                .or(saved.usage_poll_seconds)
                .unwrap_or(d.usage_poll_seconds),
            ws_keepalive_ms: o
                .ws_keepalive_ms
                .or(saved.ws_keepalive_ms)
                .unwrap_or(d.ws_keepalive_ms),
            upstream_ca_file: text(&o.upstream_ca_file, &saved.upstream_ca_file)
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// [`Self::resolve`] with the data dir's `gateway.json`.
    pub fn load(store: &Store, overrides: &Overrides) -> anyhow::Result<Self> {
        Self::resolve(&store.load_gateway()?, overrides)
    }

    /// Refuse values that make no sense, naming the option.
    pub fn validate(&self) -> anyhow::Result<()> {
        let url_ok = |u: &str| {
            url::Url::parse(u)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
                .is_some()
        };
        if let Some(state) = &self.state_url {
            let scheme = url::Url::parse(state)
                .ok()
                .filter(|u| u.host().is_some())
                .map(|u| u.scheme().to_string());
            let ok = matches!(scheme.as_deref(), Some("redis" | "rediss"));
            if !ok {
                bail!(
                    "--state {:?} is not a redis:// or rediss:// URL (for example redis://127.0.0.1:6379/0)",
                    crate::shared::connect::redact_url(state)
                );
            }
            if let Some(ca) = &self.state_ca_file
                && scheme.as_deref() != Some("rediss")
            {
                bail!(
                    "--state-ca-file {} is for a TLS connection to Redis; use a rediss:// --state URL",
                    ca.display()
                );
            }
            if self.state_key_file.is_none() {
                bail!(
                    "--state needs --state-key-file PATH: the same 0600 key file on every replica (make one with `cao gateway state-key PATH`)"
                );
            }
        }
        if self.state_url.is_none()
            && let Some(ca) = &self.state_ca_file
        {
            bail!(
                "--state-ca-file {} needs --state rediss://HOST:PORT/DB",
                ca.display()
            );
        }
        if !url_ok(&self.base_url) {
            bail!(
                "--base-url {:?} is not an http(s) URL (for example https://chatgpt.com/backend-api/codex)",
                self.base_url
            );
        }
        if !url_ok(&self.token_url) {
            bail!("--token-url {:?} is not an http(s) URL", self.token_url);
        }
        if self.client_id.trim().is_empty() {
            bail!("--client-id must not be empty");
        }
        if self.timeout_ms == 0 {
            bail!("--timeout-ms must be at least 1");
        }
        if self.idle_timeout_ms == 0 {
            bail!("--idle-timeout-ms must be at least 1");
        }
        if self.ws_keepalive_ms == 0 {
            bail!("--ws-keepalive-ms must be at least 1");
        }
        if self.max_body_bytes == 0 {
            bail!("--max-body-bytes must be at least 1");
        }
        if self.upstream_retry_max_ms < self.upstream_retry_base_ms {
            bail!(
                "--upstream-retry-max-ms ({}) is below --upstream-retry-base-ms ({}); raise the maximum or lower the base",
                self.upstream_retry_max_ms,
                self.upstream_retry_base_ms
            );
        }
        if !(self.switch_at.is_finite() && (0.0..=100.0).contains(&self.switch_at)) {
            bail!(
                "--switch-at must be a percentage between 0 and 100, got {}",
                self.switch_at
            );
        }
        if let Some(problem) = self
            .access_key
            .as_deref()
            .and_then(crate::policy::perimeter::access_key_problem)
        {
            bail!("{problem}");
        }
        self.perimeter.validate()?;
        if !self.bind.is_loopback() && self.access_key.is_none() {
            bail!(
                "refusing to bind {} without an access key: anyone on the network could use your accounts. Set --access-key or CAO_GATEWAY_KEY, or bind 127.0.0.1",
                self.bind
            );
        }
        Ok(())
    }

    /// These options as `gateway.json` keeps them (every key written; the access key is left
    /// out on purpose).
    pub fn to_saved(&self) -> SavedGateway {
        let mut saved = SavedGateway {
            bind_address: Some(self.bind.to_string()),
            port: Some(self.port),
            base_url: Some(self.base_url.clone()),
            oauth_client_id: Some(self.client_id.clone()),
            cooldown_seconds: Some(self.cooldown_seconds),
            max_retry_passes: Some(self.max_retry_passes),
            request_timeout_ms: Some(self.timeout_ms),
            upstream_max_retries: Some(self.upstream_retries),
            upstream_retry_base_ms: Some(self.upstream_retry_base_ms),
            upstream_retry_max_ms: Some(self.upstream_retry_max_ms),
            upstream_retry_jitter_ms: Some(self.upstream_retry_jitter_ms),
            override_auth: Some(!self.passthrough_auth),
            token_url: Some(self.token_url.clone()),
            max_body_bytes: Some(self.max_body_bytes),
            idle_timeout_ms: Some(self.idle_timeout_ms),
            strategy: Some(self.strategy),
            switch_at: Some(self.switch_at),
            state_url: self.state_url.clone(),
            state_key_file: self
                .state_key_file
                .as_ref()
                .map(|p| p.display().to_string()),
            state_ca_file: self.state_ca_file.as_ref().map(|p| p.display().to_string()),
            usage_poll_seconds: Some(self.usage_poll_seconds),
            ws_keepalive_ms: Some(self.ws_keepalive_ms),
            upstream_ca_file: self
                .upstream_ca_file
                .as_ref()
                .map(|p| p.display().to_string()),
            ..SavedGateway::default()
        };
        self.perimeter.save_into(&mut saved);
        saved
    }

    /// These options as `cao gateway status --json` shows them: [`Self::to_saved`] with the
    /// state URL's password hidden.
    pub fn to_shown(&self) -> SavedGateway {
        let mut shown = self.to_saved();
        shown.state_url = shown
            .state_url
            .as_deref()
            .map(crate::shared::connect::redact_url);
        shown
    }

    /// Write these options to `gateway.json` (under the state lock, keeping keys cao does not
    /// know).
    pub fn save(&self, store: &Store) -> anyhow::Result<()> {
        store.update_gateway(|saved| {
            let other = std::mem::take(&mut saved.other);
            *saved = SavedGateway {
                other,
                ..self.to_saved()
            };
        })?;
        Ok(())
    }
}

/// `127.0.0.1`, `::1`, `[::1]` or `localhost` as an address.
pub(crate) fn parse_bind(text: &str) -> anyhow::Result<IpAddr> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    t.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
        .with_context(|| format!("--bind {text:?} is not an IP address (for example 127.0.0.1)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(json: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::abort());
        let store = Store::at(dir.path());
        let _ = std::fs::write(store.gateway_path(), json);
        (dir, store)
    }

    #[test]
    fn cli_beats_file_beats_defaults() {
        let (_d, store) =
            store_with(r#"{"port": 5000, "cooldownSeconds": 60, "overrideAuth": false}"#);
        let args = Overrides {
            port: Some(6000),
            ..Default::default()
        };
        let c = GatewayConfig::load(&store, &args).unwrap_or_default();
        assert_eq!(c.port, 6000);
        assert_eq!(c.cooldown_seconds, 60);
        assert!(c.passthrough_auth);
        assert_eq!(c.upstream_retries, 2);
    }

    #[test]
    fn invalid_values_are_errors_not_clamps() {
        let (_d, store) = store_with(r#"{"port": "x"}"#);
        let e = GatewayConfig::load(&store, &Overrides::default());
        assert!(
            format!("{:#}", e.err().map(|e| e.to_string()).unwrap_or_default()).contains("port")
        );
        let (_d, store) = store_with("{}");
        let bad = Overrides {
            upstream_retry_base_ms: Some(500),
            upstream_retry_max_ms: Some(100),
            ..Default::default()
        };
        assert!(GatewayConfig::load(&store, &bad).is_err());
        let open = Overrides {
            bind: Some("0.0.0.0".into()),
            ..Default::default()
        };
        assert!(GatewayConfig::load(&store, &open).is_err());
        let keyed = Overrides {
            bind: Some("0.0.0.0".into()),
            access_key: Some("a-long-enough-key-0123".into()),
            ..Default::default()
        };
        assert!(GatewayConfig::load(&store, &keyed).is_ok());
        let url = Overrides {
            base_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(GatewayConfig::load(&store, &url).is_err());
    }

    #[test]
    fn saved_json_uses_typescript_keys_without_the_key() {
        let c = GatewayConfig {
            access_key: Some("secret".into()),
            ..Default::default()
        };
        let v = serde_json::to_value(c.to_saved()).unwrap_or_default();
        assert_eq!(v["bindAddress"], "127.0.0.1");
        assert_eq!(v["overrideAuth"], true);
        assert_eq!(v["upstreamMaxRetries"], 2);
        assert!(!v.to_string().contains("secret"));
    }
}
