//! The local gateway: server, forwarding, token broker, usage tracking, metrics, status page.
pub mod metrics;
