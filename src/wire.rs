//! What the gateway says about itself on `GET /health` and `GET /status`: one type each,
//! serialized by the server and read back by the gateway's `LiveGateway` client (for
//! `cao gateway status`, `cao status --watch`, `cao run --gateway`) and by the tests.
//!
//! A floor of its own under `gateway` and `render`, both of which use it: it names only the
//! pure types of `policy`, so the views draw a live gateway without importing it.
//!
//! Every struct reads with `#[serde(default)]`, so a cao that knows fewer or more fields than
//! the gateway it talks to still understands it. To add a field: add it here (with a default),
//! fill it where the server builds the value, and read it where it is shown.

use serde::{Deserialize, Serialize};

use crate::policy::account::State;
use crate::policy::forecast::{PoolForecast, WindowForecast};
use crate::policy::route::{Decision, Skipped};
use crate::policy::strategy::Strategy;
use crate::policy::usage::UsageSnapshot;

/// `service` on both answers: how a client knows a cao gateway answered, and not some other
/// server on the port.
pub(crate) const SERVICE: &str = "cao-gateway";

/// `GET /health`: small and free of account names, so it can stay unauthenticated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub service: String,
    pub version: String,
    /// Accounts loaded.
    pub accounts: usize,
    /// Accounts that can take a request right now.
    pub ready: usize,
    pub uptime_seconds: u64,
    /// The identity proof, when `/health?nonce=N` was asked (the gateway's `identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

impl Health {
    /// Whether this answer came from a cao gateway.
    pub fn is_cao(&self) -> bool {
        self.service == SERVICE
    }
}

/// `GET /status`: the live view the status page, `cao gateway status` and `cao status --watch`
/// draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    pub service: String,
    pub version: String,
    /// The gateway's clock when it answered (ms since the epoch).
    pub now_ms: i64,
    pub uptime_seconds: u64,
    pub strategy: Strategy,
    pub switch_at: f64,
    /// Sessions pinned to an account.
    pub affinity_count: usize,
    pub requests: u64,
    pub switches: u64,
    pub refreshes: u64,
    pub refresh_failures: u64,
    pub accounts: Vec<AccountLive>,
    /// Oldest first.
    pub recent_switches: Vec<SwitchRecord>,
    pub last_decision: Option<DecisionView>,
    /// When the usable accounts run out at the last hour's pace, if any usage is known.
    pub pool: Option<PoolForecast>,
    /// `pool: about 3h 10m left at the last hour's pace; weekly 41 % used`.
    pub pool_summary: Option<String>,
    /// With `--state`: this replica and the others sharing the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedView>,
    /// The URLs the gateway serves and, with HTTPS, its CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<ServedView>,
}

/// What the gateway serves: plain HTTP and, on the same port, HTTPS with cao's private CA.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServedView {
    /// `http://ADDR:PORT`
    pub http_url: String,
    /// `https://127.0.0.1:PORT` when HTTPS is served.
    pub https_url: Option<String>,
    /// SHA-256 of the CA certificate, `AB:CD:...`.
    pub ca_fingerprint: Option<String>,
    pub ca_not_after_ms: Option<i64>,
    pub leaf_not_after_ms: Option<i64>,
}

/// A refresh lease and the replica holding it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeaseView {
    pub account: String,
    pub holder: String,
}

/// The shared state as one replica sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SharedView {
    /// The Redis URL, password hidden.
    pub url: String,
    /// This replica's id.
    pub replica: String,
    /// Whether Redis answered the last call (no token refresh while it does not).
    pub reachable: bool,
    /// The replica holding the leader lease (usage polling, proactive refresh), if known.
    pub leader: Option<String>,
    /// Refresh leases held at the last look (each only for one token call and its save).
    pub refresh_leases: Vec<LeaseView>,
    /// Fingerprint of the state key (the same on every replica).
    pub key_fingerprint: String,
    /// Replicas with a live heartbeat, by id.
    pub replicas: Vec<Replica>,
    pub lease_waits: u64,
    pub cas_losses: u64,
    pub redis_errors: u64,
}

/// One request that moved from one account to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchRecord {
    pub at_ms: i64,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// A replica's heartbeat record: written to the shared state by each replica
/// (the shared state's Redis client) and listed on `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replica {
    pub id: String,
    pub address: String,
    pub heartbeat_ms: i64,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            service: String::new(),
            version: String::new(),
            now_ms: 0,
            uptime_seconds: 0,
            strategy: Strategy::default(),
            switch_at: crate::policy::strategy::DEFAULT_SWITCH_AT,
            affinity_count: 0,
            requests: 0,
            switches: 0,
            refreshes: 0,
            refresh_failures: 0,
            accounts: Vec::new(),
            recent_switches: Vec::new(),
            last_decision: None,
            pool: None,
            pool_summary: None,
            shared: None,
            served: None,
        }
    }
}

impl Status {
    /// The account called `name`, if the gateway has it.
    pub fn account(&self, name: &str) -> Option<&AccountLive> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

/// One account on `GET /status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountLive {
    pub name: String,
    pub is_default: bool,
    pub state: State,
    /// Set while cooling.
    pub cooldown_until_ms: Option<i64>,
    /// The main window's used percent, when usage is known.
    pub used_percent: Option<f64>,
    /// Sessions pinned to this account.
    pub sessions: usize,
    /// `usage.history` holds the rolling series per window (the page's sparklines).
    pub usage: Option<UsageSnapshot>,
    /// When each window runs out at the last hour's pace.
    pub forecast: Vec<WindowForecast>,
}

/// The last routing decision, with its one-line summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DecisionView {
    pub account: Option<String>,
    pub strategy: Strategy,
    pub reason: String,
    pub skipped: Vec<Skipped>,
    /// `fill-first -> work: first usable in rotation order (skipped: a cooling)`.
    pub summary: String,
}

impl DecisionView {
    /// The view of `d`, its summary's moments worded by `when` (the caller's time format:
    /// `render::time::moment_from_now` for the live view).
    pub fn of(d: &Decision, when: &dyn Fn(i64) -> String) -> Self {
        Self {
            account: d.account.clone(),
            strategy: d.strategy,
            reason: d.reason.to_string(),
            skipped: d.skipped.clone(),
            summary: d.summary(when),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_from_an_older_or_newer_gateway_still_reads() {
        let v = serde_json::json!({"service": "cao-gateway", "requests": 3,
            "accounts": [{"name": "a", "state": "needs-login", "fromTheFuture": 1}],
            "lastDecision": {"summary": "fill-first -> a: first"}});
        let s: Status = serde_json::from_value(v).unwrap_or_default();
        assert_eq!(s.requests, 3);
        assert_eq!(s.switch_at, 98.0);
        assert_eq!(s.account("a").map(|a| a.state), Some(State::NeedsLogin));
        assert_eq!(
            s.last_decision.map(|d| d.summary).as_deref(),
            Some("fill-first -> a: first")
        );
    }
}
