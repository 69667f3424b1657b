//! Prometheus metrics for `GET /metrics`: requests by account and status, account switches,
//! token refreshes and their failures, accounts cooling, usage % per window, request latency.
//!
//! Counters are lock-free atomics (prometheus-client), so recording on the request path costs
//! a hash lookup and an atomic add; only `/metrics` itself encodes.

use std::sync::RwLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::policy::usage::UsageSnapshot;

/// Content type of the text exposition format `encode` produces.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    account: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SharedLabels {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SwitchLabels {
    from: String,
    to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    account: String,
    family: String,
    slot: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SocketLabels {
    side: &'static str,
    deflate: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    account: String,
    result: String,
}

/// The gateway's metrics. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    switches: Family<SwitchLabels, Counter>,
    refreshes: Counter,
    refresh_failures: Counter,
    cooling: Gauge,
    usage: Family<WindowLabels, Gauge<f64, AtomicU64>>,
    runs_out: Family<WindowLabels, Gauge<f64, AtomicU64>>,
    pool_left: Gauge<f64, AtomicU64>,
    polls: Family<PollLabels, Counter>,
    latency: Histogram,
    shared: Family<SharedLabels, Counter>,
    sockets: Family<SocketLabels, Counter>,
    /// The `requests` counters already made, by account and status: found again on the
    /// request path by comparing, without building (and allocating) a label set to hash.
    request_counters: RwLock<Vec<(Option<String>, u16, Counter)>>,
}

/// Most (account, status) counters kept in [`Metrics::request_counters`]; past it, the rest
/// go through the family each time (still counted).
const REQUEST_COUNTERS_KEPT: usize = 256;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cao_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let switches = Family::<SwitchLabels, Counter>::default();
        let refreshes = Counter::default();
        let refresh_failures = Counter::default();
        let cooling = Gauge::default();
        let usage = Family::<WindowLabels, Gauge<f64, AtomicU64>>::default();
        let runs_out = Family::<WindowLabels, Gauge<f64, AtomicU64>>::default();
        let pool_left = Gauge::<f64, AtomicU64>::default();
        let polls = Family::<PollLabels, Counter>::default();
        // 1 ms .. ~65 s: proxied SSE turns can take a minute.
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "requests",
            "Requests answered, by account that served them and HTTP status",
            requests.clone(),
        );
        registry.register(
            "switches",
            "Requests moved to another account after a usage limit or failure",
            switches.clone(),
        );
        registry.register(
            "token_refreshes",
            "Access-token refreshes sent to the token endpoint",
            refreshes.clone(),
        );
        registry.register(
            "token_refresh_failures",
            "Access-token refreshes that failed",
            refresh_failures.clone(),
        );
        registry.register(
            "accounts_cooling",
            "Accounts in cooldown now",
            cooling.clone(),
        );
        registry.register(
            "usage_percent",
            "Used percent of each rate-limit window upstream reported",
            usage.clone(),
        );
        let shared = Family::<SharedLabels, Counter>::default();
        registry.register(
            "shared_state_events",
            "With --state: lease waits, compare-and-set losses and Redis errors",
            shared.clone(),
        );
        registry.register(
            "usage_runs_out_seconds",
            "Seconds until a window reaches 100 % at the last hour's pace (-1: not before its reset, or no pace yet)",
            runs_out.clone(),
        );
        registry.register(
            "pool_runs_out_seconds",
            "Seconds until every usable account's short window is spent at the pool's last-hour pace (-1: no use in the last hour)",
            pool_left.clone(),
        );
        registry.register(
            "usage_polls",
            "Usage-endpoint polls of idle accounts, by account and result (ok, failed)",
            polls.clone(),
        );
        let sockets = Family::<SocketLabels, Counter>::default();
        registry.register(
            "websocket_sockets",
            "WebSockets opened, by side (codex: accepted from Codex; upstream: opened to the backend) and whether permessage-deflate was negotiated",
            sockets.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to response headers",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            switches,
            refreshes,
            refresh_failures,
            cooling,
            usage,
            runs_out,
            pool_left,
            polls,
            latency,
            shared,
            sockets,
            request_counters: RwLock::new(Vec::new()),
        }
    }

    /// A WebSocket opened on `side` (`codex` or `upstream`), compressed or not.
    pub fn websocket(&self, side: &'static str, deflate: bool) {
        self.sockets
            .get_or_create(&SocketLabels {
                side,
                deflate: if deflate { "yes" } else { "no" },
            })
            .inc();
    }

    /// Bring the shared-state counters up to the replica's running totals.
    pub fn sync_shared(&self, lease_waits: u64, cas_losses: u64, redis_errors: u64) {
        for (event, total) in [
            ("lease_wait", lease_waits),
            ("cas_loss", cas_losses),
            ("redis_error", redis_errors),
        ] {
            let c = self.shared.get_or_create(&SharedLabels { event });
            let have = c.get();
            if total > have {
                c.inc_by(total - have);
            }
        }
    }

    /// One usage-endpoint poll of `account` ended.
    pub fn usage_poll(&self, account: &str, ok: bool) {
        self.polls
            .get_or_create(&PollLabels {
                account: account.to_string(),
                result: if ok { "ok" } else { "failed" }.to_string(),
            })
            .inc();
    }

    /// Publish the pool's forecast: seconds left, or -1 when nothing is being used.
    pub fn set_pool_left(&self, left_ms: Option<i64>) {
        self.pool_left
            .set(left_ms.map_or(-1.0, |ms| ms.max(0) as f64 / 1000.0));
    }

    /// A request was answered with `status` by `account` (`none` when no account served it)
    /// after `elapsed`.
    pub fn request(&self, account: Option<&str>, status: u16, elapsed: Duration) {
        self.request_counter(account, status).inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// The counter of requests by `account` answered `status`.
    fn request_counter(&self, account: Option<&str>, status: u16) -> Counter {
        let same =
            |(a, s, _): &&(Option<String>, u16, Counter)| *s == status && a.as_deref() == account;
        if let Ok(kept) = self.request_counters.read()
            && let Some((_, _, c)) = kept.iter().find(same)
        {
            return c.clone();
        }
        let counter = self
            .requests
            .get_or_create(&RequestLabels {
                account: account.unwrap_or("none").to_string(),
                status,
            })
            .clone();
        if let Ok(mut kept) = self.request_counters.write()
            && kept.len() < REQUEST_COUNTERS_KEPT
            && !kept.iter().any(|k| same(&k))
        {
            kept.push((account.map(str::to_string), status, counter.clone()));
        }
        counter
    }

    /// A request moved from one account to another.
    pub fn switched(&self, from: &str, to: &str) {
        self.switches
            .get_or_create(&SwitchLabels {
                from: from.to_string(),
                to: to.to_string(),
            })
            .inc();
    }

    /// Bring the refresh counters up to the gateway's running totals (kept by the token
    /// broker; counters only ever grow, so only the difference is added).
    pub fn sync_refreshes(&self, attempts: u64, failures: u64) {
        let add = |c: &Counter, total: u64| {
            let have = c.get();
            if total > have {
                c.inc_by(total - have);
            }
        };
        add(&self.refreshes, attempts);
        add(&self.refresh_failures, failures);
    }

    /// How many accounts are cooling right now.
    pub fn set_cooling(&self, n: usize) {
        self.cooling.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Publish the windows of `account`'s latest snapshot (as used at `now_ms`).
    pub fn set_usage(&self, account: &str, u: &UsageSnapshot, now_ms: i64) {
        for w in &u.windows {
            self.usage
                .get_or_create(&WindowLabels {
                    account: account.to_string(),
                    family: w.family.clone(),
                    slot: w.slot.clone(),
                })
                .set(w.used_at(now_ms));
        }
        for f in crate::policy::forecast::account_forecast(u, now_ms) {
            self.runs_out
                .get_or_create(&WindowLabels {
                    account: account.to_string(),
                    family: f.family,
                    slot: f.slot,
                })
                .set(
                    f.runs_out_at_ms
                        .map_or(-1.0, |t| (t - now_ms).max(0) as f64 / 1000.0),
                );
        }
    }

    /// The OpenMetrics text exposition of everything.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            out.push_str("# EOF\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::usage::from_headers;

    #[test]
    fn encodes_every_metric_with_labels() {
        let m = Metrics::new();
        m.request(Some("work"), 200, Duration::from_millis(3));
        m.request(Some("work"), 200, Duration::from_millis(5));
        m.request(None, 429, Duration::from_millis(1));
        m.switched("work", "home");
        m.sync_refreshes(3, 1);
        m.sync_refreshes(2, 1);
        m.set_cooling(1);
        let u = from_headers(
            vec![
                ("x-codex-primary-used-percent", "42.5"),
                ("x-codex-primary-window-minutes", "300"),
            ],
            0,
        )
        .unwrap();
        m.set_usage("work", &u, 0);
        m.usage_poll("work", true);
        m.set_pool_left(Some(90_000));
        let text = m.encode();
        for want in [
            "cao_gateway_requests_total{account=\"work\",status=\"200\"} 2",
            "cao_gateway_requests_total{account=\"none\",status=\"429\"} 1",
            "cao_gateway_switches_total{from=\"work\",to=\"home\"} 1",
            "cao_gateway_token_refreshes_total 3",
            "cao_gateway_token_refresh_failures_total 1",
            "cao_gateway_accounts_cooling 1",
            "cao_gateway_usage_percent{account=\"work\",family=\"codex\",slot=\"primary\"} 42.5",
            "cao_gateway_request_duration_seconds_count 3",
            "cao_gateway_usage_polls_total{account=\"work\",result=\"ok\"} 1",
            "cao_gateway_pool_runs_out_seconds 90.0",
            "cao_gateway_usage_runs_out_seconds{account=\"work\",family=\"codex\",slot=\"primary\"} -1.0",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
