//! What `cao gateway start` says and leaves behind once it listens.
//!
//! - stdout: exactly one machine-readable line, JSON (`{"url":…,"httpsUrl":…,"port":…,"pid":…}`),
//!   for scripts and tests (`cao gateway start --port 0 | head -1 | jq -r .url`);
//! - stderr: for the person, where it listens, where the options came from, which accounts are
//!   ready, and what to do next;
//! - the runtime file ([`crate::store::runtime`]) that lets `cao gateway status`,
//!   `cao status --watch`, `cao run --gateway` and `cao gateway enable` find it on any port,
//!   removed when it stops ([`RuntimeRecord`]).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::gateway::{GatewayHandle, Overrides, pages, running};
use crate::policy::account::State;
use crate::render::text::plural;
use crate::store::{GatewayRuntime, SavedGateway, Store};

/// The one line `cao gateway start` prints on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listening {
    /// `http://HOST:PORT` as a client on this machine reaches it.
    pub url: String,
    /// `https://127.0.0.1:PORT` (the same port) when HTTPS is served.
    pub https_url: Option<String>,
    pub port: u16,
    pub pid: u32,
}

impl Listening {
    pub fn of(handle: &GatewayHandle) -> Self {
        let addr: SocketAddr = handle.local_addr();
        Self {
            url: running::reach_url(addr.ip(), addr.port()),
            https_url: handle.tls_url(),
            port: addr.port(),
            pid: std::process::id(),
        }
    }

    /// The JSON line (no newline).
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The runtime file of this gateway, removed on drop (a normal stop, an error, a panic).
pub struct RuntimeRecord {
    store: Arc<Store>,
    pid: u32,
}

impl RuntimeRecord {
    /// Write the runtime file for the gateway that just bound.
    pub fn write(store: Arc<Store>, handle: &GatewayHandle) -> anyhow::Result<Self> {
        let l = Listening::of(handle);
        let runtime = GatewayRuntime {
            pid: l.pid,
            bind: handle.local_addr().ip().to_string(),
            port: l.port,
            url: l.url,
            https_url: l.https_url,
            started_at_ms: crate::clock::now_ms(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        store.write_runtime(&runtime)?;
        Ok(Self {
            store,
            pid: runtime.pid,
        })
    }
}

impl Drop for RuntimeRecord {
    fn drop(&mut self) {
        if let Err(e) = self.store.remove_runtime(self.pid) {
            tracing::warn!("could not remove the gateway's runtime file: {e}");
        }
    }
}

/// The flags given on the command line, by name.
fn flags_given(o: &Overrides) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut given = |set: bool, name: &'static str| {
        if set {
            out.push(name);
        }
    };
    given(o.bind.is_some(), "--bind");
    given(o.port.is_some(), "--port");
    given(o.base_url.is_some(), "--base-url");
    given(o.cooldown_seconds.is_some(), "--cooldown-seconds");
    given(o.max_retry_passes.is_some(), "--max-retry-passes");
    given(o.timeout_ms.is_some(), "--timeout-ms");
    given(o.upstream_retries.is_some(), "--upstream-retries");
    given(
        o.upstream_retry_base_ms.is_some(),
        "--upstream-retry-base-ms",
    );
    given(o.upstream_retry_max_ms.is_some(), "--upstream-retry-max-ms");
    given(
        o.upstream_retry_jitter_ms.is_some(),
        "--upstream-retry-jitter-ms",
    );
    given(o.passthrough_auth, "--passthrough-auth");
    given(o.token_url.is_some(), "--token-url");
    given(o.client_id.is_some(), "--client-id");
    given(o.access_key.is_some(), "--access-key");
    given(o.access_key_file.is_some(), "--access-key-file");
    given(o.max_body_bytes.is_some(), "--max-body-bytes");
    given(o.idle_timeout_ms.is_some(), "--idle-timeout-ms");
    given(o.strategy.is_some(), "--strategy");
    given(o.switch_at.is_some(), "--switch-at");
    given(!o.allowed_hosts.is_empty(), "--allowed-host");
    given(o.max_buffered_bytes.is_some(), "--max-buffered-bytes");
    given(o.state_url.is_some(), "--state");
    given(o.state_key_file.is_some(), "--state-key-file");
    given(o.state_ca_file.is_some(), "--state-ca-file");
    given(o.usage_poll_seconds.is_some(), "--usage-poll");
    given(o.ws_keepalive_ms.is_some(), "--ws-keepalive-ms");
    given(o.upstream_ca_file.is_some(), "--upstream-ca-file");
    out
}

/// `options: command line (--port, --strategy), gateway.json (/path: port, switchAt), defaults
/// for the rest`.
pub fn option_sources(saved: &SavedGateway, asked: &Overrides, saved_path: &str) -> String {
    let mut parts = Vec::new();
    let flags = flags_given(asked);
    if !flags.is_empty() {
        parts.push(format!("command line ({})", flags.join(", ")));
    }
    let keys: Vec<String> = match serde_json::to_value(saved) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    if !keys.is_empty() {
        parts.push(format!("{saved_path} ({})", keys.join(", ")));
    }
    if parts.is_empty() {
        "options: the defaults (nothing on the command line, no gateway.json)".to_string()
    } else {
        format!("options: {}, defaults for the rest", parts.join(", then "))
    }
}

/// The lines for the person who started the gateway (stderr).
pub fn next_steps(handle: &GatewayHandle, upstream: &str, options: &str, saved: bool) -> String {
    let l = Listening::of(handle);
    let now = crate::clock::now_ms();
    let view = pages::status::status_view(handle.state(), now);
    let mut out = match &l.https_url {
        Some(https) => format!(
            "cao gateway is running (pid {}): {} and {https} on the same port\n",
            l.pid, l.url
        ),
        None => format!("cao gateway is running (pid {}): {}\n", l.pid, l.url),
    };
    out.push_str(&format!("  forwarding to {upstream}\n  {options}\n"));
    if saved {
        out.push_str(&format!(
            "  saved: port {} is now the default of every cao command\n",
            l.port
        ));
    }
    let ready: Vec<&str> = view
        .accounts
        .iter()
        .filter(|a| a.state.takes_requests())
        .map(|a| a.name.as_str())
        .collect();
    let not_ready: Vec<String> = view
        .accounts
        .iter()
        .filter(|a| !a.state.takes_requests())
        .map(|a| format!("{} ({})", a.name, a.state.as_str()))
        .collect();
    if view.accounts.is_empty() {
        out.push_str(
            "  accounts: none yet; add one with `cao add <name>` (picked up without a restart)\n",
        );
    } else {
        out.push_str(&format!(
            "  accounts: {} of {} ready",
            ready.len(),
            plural(view.accounts.len(), "account")
        ));
        if !ready.is_empty() {
            out.push_str(&format!(": {}", ready.join(", ")));
        }
        if !not_ready.is_empty() {
            out.push_str(&format!("; not ready: {}", not_ready.join(", ")));
        }
        out.push('\n');
        if ready.is_empty() {
            out.push_str(&format!(
                "warning: no account is ready right now ({}); see `cao gateway status`\n",
                [State::Cooling, State::NeedsLogin, State::Unreadable]
                    .map(State::as_str)
                    .join(", ")
            ));
        }
    }
    out.push_str(&format!("  status page: {}/\n", l.url));
    out.push_str("Next:\n");
    out.push_str("  cao gateway enable         route your everyday `codex` through it\n");
    out.push_str("  cao run --gateway -- ...   or route one Codex run\n");
    out.push_str("  cao status --watch         watch the accounts live\n");
    out.push_str("Ctrl-C stops it.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_sources_name_flags_then_the_file() {
        let asked = Overrides {
            port: Some(0),
            strategy: Some(crate::policy::strategy::Strategy::LeastUsed),
            ..Overrides::default()
        };
        let saved = SavedGateway {
            switch_at: Some(90.0),
            ..SavedGateway::default()
        };
        assert_eq!(
            option_sources(&saved, &asked, "gateway.json"),
            "options: command line (--port, --strategy), then gateway.json (switchAt), defaults for the rest"
        );
        assert_eq!(
            option_sources(&SavedGateway::default(), &Overrides::default(), "g"),
            "options: the defaults (nothing on the command line, no gateway.json)"
        );
    }

    #[test]
    fn the_stdout_line_is_one_json_object() {
        let l = Listening {
            url: "http://127.0.0.1:5055".into(),
            https_url: None,
            port: 5055,
            pid: 7,
        };
        assert_eq!(
            l.line(),
            r#"{"url":"http://127.0.0.1:5055","httpsUrl":null,"port":5055,"pid":7}"#
        );
    }
}
