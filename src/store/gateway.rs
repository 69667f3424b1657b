//! `gateway.json`: the options `cao gateway start --save` keeps, as one typed struct.
//!
//! The keys are the TypeScript tool's camelCase ones (`bindAddress`, `port`, `baseUrl`,
//! `oauthClientId`, `cooldownSeconds`, `maxRetryPasses`, `requestTimeoutMs`,
//! `upstreamMaxRetries`, `upstreamRetryBaseMs`, `upstreamRetryMaxMs`, `upstreamRetryJitterMs`,
//! `overrideAuth`) plus cao's own (`tokenUrl`, `maxBodyBytes`, `idleTimeoutMs`, `strategy`,
//! `switchAt`, `stateUrl`, `stateKeyFile`, `usagePollSeconds`, `wsKeepaliveMs`,
//! `upstreamCaFile`, and the perimeter's
//! `allowedHosts`, `maxBufferedBytes`, `headerTimeoutMs`, `bodyTimeoutMs`). Every key is
//! optional (absent or `null` = the default) and keys cao does not know are kept as they are, so a newer cao's or the TypeScript tool's settings survive a
//! `--save`. The access key is never saved: it is a secret, pass it by `CAO_GATEWAY_KEY`.
//!
//! To add an option: a field here (`Option<T>`, so old files still load), its default and its
//! override in `gateway::config`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Store, StoreError};
use crate::policy::strategy::Strategy;

/// The saved gateway options. `None` means "not saved": the default applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedGateway {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth_client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retry_passes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_retry_base_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_retry_max_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_retry_jitter_ms: Option<u64>,
    /// `false` = keep the client's own Authorization (`--passthrough-auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_at: Option<f64>,
    /// `--state`: the shared store of several gateways (`redis://…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_url: Option<String>,
    /// `--state-key-file`: the key that seals token sets in the shared store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_key_file: Option<String>,
    /// `--state-ca-file`: CA certificates (PEM) a `rediss://` state URL is checked against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_ca_file: Option<String>,
    /// Seconds between usage polls of idle accounts (`--usage-poll`; 0 = off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_poll_seconds: Option<u64>,
    /// `--allowed-host`: extra names the gateway answers to (`name` or `name:port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// `--max-buffered-bytes`: request body bytes all clients together may have buffered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_buffered_bytes: Option<u64>,
    /// `--header-timeout-ms`: time for a request's head, and the idle keep-alive limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_timeout_ms: Option<u64>,
    /// `--body-timeout-ms`: time for a whole request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_timeout_ms: Option<u64>,
    /// `--ws-keepalive-ms`: keepalive frames to Codex while a WebSocket turn waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_keepalive_ms: Option<u64>,
    /// `--upstream-ca-file`: extra CA certificates (PEM) trusted for the upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ca_file: Option<String>,
    /// Keys cao does not know, kept on every write.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Store {
    /// Load gateway.json. Missing: every option unsaved. Not a JSON object: backed up to
    /// `gateway.json.corrupt-<ms>` with a notice, and every option unsaved. A known key of the
    /// wrong type (`"port": "4319"`) is an error naming the key: the file is the user's own edit,
    /// and guessing would start the gateway somewhere else.
    pub fn load_gateway(&self) -> Result<SavedGateway, StoreError> {
        let path = self.gateway_path();
        let Some(map) = self.read_json_or_back_up::<Map<String, Value>>(&path)? else {
            return Ok(SavedGateway::default());
        };
        serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| StoreError::Invalid {
            key: e.path().to_string(),
            path,
            detail: e.into_inner().to_string(),
        })
    }

    /// Read-modify-write gateway.json under the state lock (atomic, 0600), keeping unknown keys.
    pub fn update_gateway<R>(
        &self,
        f: impl FnOnce(&mut SavedGateway) -> R,
    ) -> Result<R, StoreError> {
        let _lock = self.lock_state()?;
        let mut saved = self.load_gateway()?;
        let out = f(&mut saved);
        self.write_json(&self.gateway_path(), &saved)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(text: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::abort());
        let store = Store::at(dir.path());
        let _ = std::fs::write(store.gateway_path(), text);
        (dir, store)
    }

    #[test]
    fn unknown_keys_survive_an_update() {
        let (_d, store) = store_with(r#"{"fromANewerCao": [1, 2], "port": 5000}"#);
        store
            .update_gateway(|s| s.cooldown_seconds = Some(60))
            .unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(store.gateway_path()).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["fromANewerCao"], serde_json::json!([1, 2]));
        assert_eq!(v["port"], 5000);
        assert_eq!(v["cooldownSeconds"], 60);
    }

    #[test]
    fn a_file_that_is_not_an_object_is_backed_up_and_ignored() {
        let (dir, store) = store_with("[1, 2");
        assert_eq!(store.load_gateway().ok(), Some(SavedGateway::default()));
        assert_eq!(store.take_notices().len(), 1);
        let backups = std::fs::read_dir(dir.path())
            .map(|d| d.flatten().count())
            .unwrap_or(0);
        assert_eq!(backups, 2, "gateway.json and its .corrupt- copy");
    }

    #[test]
    fn a_wrong_type_names_the_key_and_keeps_the_file() {
        let (_d, store) = store_with(r#"{"port": "4319", "switchAt": null}"#);
        let e = store.load_gateway().err().map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.starts_with("port in ")),
            "{e:?}"
        );
        assert!(store.update_gateway(|_| ()).is_err());
        let kept = std::fs::read_to_string(store.gateway_path()).unwrap_or_default();
        assert!(kept.contains("\"4319\""));
    }
}
