//! Pure decisions: no files, sockets, processes or clocks. Time comes in as `now_ms`.
//!
//! A crate of its own (`cao-policy`), so that its purity is a compile error: it depends on
//! serde, serde_json, jiff, regex, memchr and thiserror alone (no tokio, no fs-err, no clap).
//! The `cao` crate re-exports it as `cao::policy`.
pub mod account;
pub mod app_env;
pub mod cert;
pub mod codex_args;
pub mod duration;
pub mod forecast;
pub mod health;
pub mod names;
pub mod order;
pub mod perimeter;
pub mod quota;
pub mod reset_time;
pub mod route;
pub mod run_plan;
pub mod shared_custody;
pub mod sse_first;
pub mod strategy;
pub mod token_answer;
pub mod upstream;
pub mod usage;
pub mod usage_endpoint;
pub mod usage_event;
pub mod usage_history;
pub mod usage_poll;
pub mod ws;
pub mod ws_deflate;
