//! The perimeter's settings ([`Options`]): `cao gateway start`'s options over the saved ones
//! over the defaults, checked, and written back by `--save`. The perimeter itself is
//! [`crate::gateway::front::perimeter`].

use std::time::Duration;

use crate::gateway::config::overrides::Overrides;
use crate::policy::perimeter as rules;
use crate::store::SavedGateway;

/// Perimeter settings (`cao gateway start` options, kept in gateway.json by `--save`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--allowed-host`: extra names the gateway answers to (`name` or `name:port`).
    pub allowed_hosts: Vec<String>,
    /// Time allowed for a request's headers, and for an idle keep-alive connection.
    pub header_timeout: Duration,
    /// Time allowed for a whole request body to arrive.
    pub body_timeout: Duration,
    /// All request bodies buffered at once, together (`--max-buffered-bytes`).
    pub max_buffered_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            max_buffered_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Options {
    /// `cao gateway start`'s options over the saved ones over the defaults. A command line
    /// `--allowed-host` replaces the saved list (it does not add to it).
    pub fn resolve(o: &Overrides, saved: &SavedGateway) -> Self {
        let d = Self::default();
        let ms = |o: Option<u64>, s: Option<u64>, d: Duration| {
            o.or(s).map(Duration::from_millis).unwrap_or(d)
        };
        let allowed_hosts = if o.allowed_hosts.is_empty() {
            saved.allowed_hosts.clone().unwrap_or_default()
        } else {
            o.allowed_hosts.clone()
        };
        Self {
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
            header_timeout: ms(
                o.header_timeout_ms,
                saved.header_timeout_ms,
                d.header_timeout,
            ),
            body_timeout: ms(o.body_timeout_ms, saved.body_timeout_ms, d.body_timeout),
            max_buffered_bytes: o
                .max_buffered_bytes
                .or(saved.max_buffered_bytes)
                .unwrap_or(d.max_buffered_bytes),
        }
    }

    /// Refuse values that make no sense, naming the option.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(bad) = self
            .allowed_hosts
            .iter()
            .find(|h| rules::parse_authority(h).is_none())
        {
            anyhow::bail!(
                "--allowed-host {bad:?} is not a host name or host:port (for example gw.internal or gw.internal:8443; no scheme, no path)"
            );
        }
        if self.header_timeout.is_zero() {
            anyhow::bail!("--header-timeout-ms must be at least 1");
        }
        if self.body_timeout.is_zero() {
            anyhow::bail!("--body-timeout-ms must be at least 1");
        }
        if self.max_buffered_bytes == 0 {
            anyhow::bail!("--max-buffered-bytes must be at least 1");
        }
        Ok(())
    }

    /// Write these options into a saved set (`--save`).
    pub fn save_into(&self, saved: &mut SavedGateway) {
        let ms = |d: Duration| Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        saved.allowed_hosts = Some(self.allowed_hosts.clone());
        saved.header_timeout_ms = ms(self.header_timeout);
        saved.body_timeout_ms = ms(self.body_timeout);
        saved.max_buffered_bytes = Some(self.max_buffered_bytes);
    }
}
