//! Gateway options: command line > `gateway.json` > defaults, validated (never clamped).
//!
//! `gateway.json` uses the TypeScript tool's camelCase keys (`bindAddress`, `port`, `baseUrl`,
//! `oauthClientId`, `cooldownSeconds`, `maxRetryPasses`, `requestTimeoutMs`,
//! `upstreamMaxRetries`, `upstreamRetryBaseMs`, `upstreamRetryMaxMs`, `upstreamRetryJitterMs`,
//! `overrideAuth`) plus cao's own (`tokenUrl`, `maxBodyBytes`, `idleTimeoutMs`, `strategy`,
//! `switchAt`). The access key is never saved: it is a secret, pass it by `CAO_GATEWAY_KEY`.

use std::net::IpAddr;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::cli::{GatewayStartArgs, Strategy};
use crate::store::Store;

pub const DEFAULT_BIND: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 4319;
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
}

impl std::fmt::Debug for GatewayConfig {
    /// Never prints the access key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("base_url", &self.base_url)
            .field("access_key", &self.access_key.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_PORT,
            base_url: DEFAULT_BASE_URL.to_string(),
            cooldown_seconds: 900,
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
            idle_timeout_ms: 300_000,
            strategy: Strategy::FillFirst,
            switch_at: 98.0,
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

    /// Resolve from the command line, then `gateway.json`, then the defaults, and validate.
    pub fn resolve(store: &Store, args: &GatewayStartArgs) -> anyhow::Result<Self> {
        let path = store.gateway_path();
        let saved: Map<String, Value> = match store.read_json_or_back_up::<Value>(&path)? {
            Some(Value::Object(m)) => m,
            Some(_) => bail!(
                "{} must hold a JSON object; fix or remove it",
                path.display()
            ),
            None => Map::new(),
        };
        let file = FileValues {
            map: &saved,
            path: &path,
        };
        let d = Self::default();
        let bind_text = match &args.bind {
            Some(b) => b.clone(),
            None => file.string("bindAddress")?.unwrap_or(DEFAULT_BIND.into()),
        };
        let cfg = Self {
            bind: parse_bind(&bind_text)?,
            port: match args.port {
                Some(p) => p,
                None => match file.uint("port")? {
                    Some(p) => u16::try_from(p).ok().with_context(|| {
                        format!("port {p} in {} is above 65535", path.display())
                    })?,
                    None => d.port,
                },
            },
            base_url: args
                .base_url
                .clone()
                .or(file.string("baseUrl")?)
                .unwrap_or(d.base_url),
            cooldown_seconds: pick(args.cooldown_seconds, file.uint("cooldownSeconds")?, d.cooldown_seconds),
            max_retry_passes: pick_u32(args.max_retry_passes, file.uint("maxRetryPasses")?, d.max_retry_passes, "maxRetryPasses")?,
            timeout_ms: pick(args.timeout_ms, file.uint("requestTimeoutMs")?, d.timeout_ms),
            upstream_retries: pick_u32(args.upstream_retries, file.uint("upstreamMaxRetries")?, d.upstream_retries, "upstreamMaxRetries")?,
            upstream_retry_base_ms: pick(args.upstream_retry_base_ms, file.uint("upstreamRetryBaseMs")?, d.upstream_retry_base_ms),
            upstream_retry_max_ms: pick(args.upstream_retry_max_ms, file.uint("upstreamRetryMaxMs")?, d.upstream_retry_max_ms),
            upstream_retry_jitter_ms: pick(args.upstream_retry_jitter_ms, file.uint("upstreamRetryJitterMs")?, d.upstream_retry_jitter_ms),
            passthrough_auth: args.passthrough_auth
                || file.bool("overrideAuth")?.map(|o| !o).unwrap_or(false),
            no_app_env: args.no_app_env,
            token_url: args
                .token_url
                .clone()
                .or(file.string("tokenUrl")?)
                .unwrap_or(d.token_url),
            client_id: args
                .client_id
                .clone()
                .or(file.string("oauthClientId")?)
                .unwrap_or(d.client_id),
            access_key: args.access_key.clone().filter(|k| !k.is_empty()),
            max_body_bytes: pick(args.max_body_bytes, file.uint("maxBodyBytes")?, d.max_body_bytes),
            idle_timeout_ms: pick(args.idle_timeout_ms, file.uint("idleTimeoutMs")?, d.idle_timeout_ms),
            strategy: match args.strategy {
                Some(s) => s,
                None => match saved.get("strategy") {
                    None | Some(Value::Null) => d.strategy,
                    Some(v) => serde_json::from_value(v.clone()).ok().with_context(|| {
                        format!(
                            "strategy {v} in {} is not one of fill-first, round-robin, least-used, soonest-reset",
                            path.display()
                        )
                    })?,
                },
            },
            switch_at: match args.switch_at {
                Some(s) => s,
                None => match saved.get("switchAt") {
                    None | Some(Value::Null) => d.switch_at,
                    Some(v) => v.as_f64().with_context(|| {
                        format!("switchAt in {} must be a number", path.display())
                    })?,
                },
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuse values that make no sense, naming the option.
    pub fn validate(&self) -> anyhow::Result<()> {
        let url_ok = |u: &str| {
            url::Url::parse(u)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
                .is_some()
        };
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
        if !self.bind.is_loopback() && self.access_key.is_none() {
            bail!(
                "refusing to bind {} without an access key: anyone on the network could use your accounts. Set --access-key or CAO_GATEWAY_KEY, or bind 127.0.0.1",
                self.bind
            );
        }
        Ok(())
    }

    /// The `gateway.json` object for these options (TypeScript keys + cao's own). The access key
    /// is left out on purpose.
    pub fn to_saved_json(&self) -> Value {
        json!({
            "bindAddress": self.bind.to_string(),
            "port": self.port,
            "baseUrl": self.base_url,
            "oauthClientId": self.client_id,
            "cooldownSeconds": self.cooldown_seconds,
            "maxRetryPasses": self.max_retry_passes,
            "requestTimeoutMs": self.timeout_ms,
            "upstreamMaxRetries": self.upstream_retries,
            "upstreamRetryBaseMs": self.upstream_retry_base_ms,
            "upstreamRetryMaxMs": self.upstream_retry_max_ms,
            "upstreamRetryJitterMs": self.upstream_retry_jitter_ms,
            "overrideAuth": !self.passthrough_auth,
            "tokenUrl": self.token_url,
            "maxBodyBytes": self.max_body_bytes,
            "idleTimeoutMs": self.idle_timeout_ms,
            "strategy": self.strategy,
            "switchAt": self.switch_at,
        })
    }

    /// Write `gateway.json` under the state lock, keeping keys cao does not know.
    pub fn save(&self, store: &Store) -> anyhow::Result<()> {
        let _lock = store.lock_state()?;
        let path = store.gateway_path();
        let mut obj = match store.read_json_or_back_up::<Value>(&path)? {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Value::Object(new) = self.to_saved_json() {
            obj.extend(new);
        }
        store.write_json(&path, &Value::Object(obj))?;
        Ok(())
    }
}

fn parse_bind(text: &str) -> anyhow::Result<IpAddr> {
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

fn pick(cli: Option<u64>, file: Option<u64>, default: u64) -> u64 {
    cli.or(file).unwrap_or(default)
}

fn pick_u32(cli: Option<u32>, file: Option<u64>, default: u32, key: &str) -> anyhow::Result<u32> {
    match (cli, file) {
        (Some(v), _) => Ok(v),
        (None, Some(v)) => u32::try_from(v)
            .ok()
            .with_context(|| format!("{key} {v} in gateway.json is too large")),
        (None, None) => Ok(default),
    }
}

/// Typed reads from `gateway.json` that name the key and file on a wrong type.
struct FileValues<'a> {
    map: &'a Map<String, Value>,
    path: &'a std::path::Path,
}

impl FileValues<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
    fn uint(&self, key: &str) -> anyhow::Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).with_context(|| {
                format!(
                    "{key} in {} must be a whole number >= 0, got {v}; fix or remove it",
                    self.path.display()
                )
            }),
        }
    }
    fn string(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(v) => bail!(
                "{key} in {} must be a non-empty string, got {v}; fix or remove it",
                self.path.display()
            ),
        }
    }
    fn bool(&self, key: &str) -> anyhow::Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => bail!(
                "{key} in {} must be true or false, got {v}; fix or remove it",
                self.path.display()
            ),
        }
    }
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
        let args = GatewayStartArgs {
            port: Some(6000),
            ..Default::default()
        };
        let c = GatewayConfig::resolve(&store, &args).unwrap_or_default();
        assert_eq!(c.port, 6000);
        assert_eq!(c.cooldown_seconds, 60);
        assert!(c.passthrough_auth);
        assert_eq!(c.upstream_retries, 2);
    }

    #[test]
    fn invalid_values_are_errors_not_clamps() {
        let (_d, store) = store_with(r#"{"port": "x"}"#);
        let e = GatewayConfig::resolve(&store, &GatewayStartArgs::default());
        assert!(
            format!("{:#}", e.err().map(|e| e.to_string()).unwrap_or_default()).contains("port")
        );
        let (_d, store) = store_with("{}");
        let bad = GatewayStartArgs {
            upstream_retry_base_ms: Some(500),
            upstream_retry_max_ms: Some(100),
            ..Default::default()
        };
        assert!(GatewayConfig::resolve(&store, &bad).is_err());
        let open = GatewayStartArgs {
            bind: Some("0.0.0.0".into()),
            ..Default::default()
        };
        assert!(GatewayConfig::resolve(&store, &open).is_err());
        let keyed = GatewayStartArgs {
            bind: Some("0.0.0.0".into()),
            access_key: Some("k".into()),
            ..Default::default()
        };
        assert!(GatewayConfig::resolve(&store, &keyed).is_ok());
        let url = GatewayStartArgs {
            base_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(GatewayConfig::resolve(&store, &url).is_err());
    }

    #[test]
    fn saved_json_uses_typescript_keys_without_the_key() {
        let c = GatewayConfig {
            access_key: Some("secret".into()),
            ..Default::default()
        };
        let v = c.to_saved_json();
        assert_eq!(v["bindAddress"], "127.0.0.1");
        assert_eq!(v["overrideAuth"], true);
        assert_eq!(v["upstreamMaxRetries"], 2);
        assert!(!v.to_string().contains("secret"));
    }
}
