//! Every integration and end-to-end test in one crate: one build, one link, shared fixtures in
//! `common`. Each module is one area of behaviour (see its own doc comment).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod accounts;
mod app_env;
mod cli;
mod cli_vocabulary;
mod common;
mod custody;
mod custody_logins;
mod custody_rescue;
mod demo;
mod e2e_gateway;
mod e2e_routing;
mod e2e_run;
mod e2e_tui;
mod e2e_tui_pool;
mod e2e_tui_tls;
mod e2e_websocket;
mod faults;
mod gateway;
mod gateway_runtime;
mod identity;
mod layering;
mod page_chromium;
mod perimeter;
mod perimeter_chromium;
mod perimeter_hosts;
mod perimeter_identity;
mod perimeter_process;
mod picker;
mod replicas;
mod replicas_custody;
mod replicas_tls;
mod routing;
mod run;
mod shared_state;
mod sse_failover;
mod status;
mod tls;
mod tls_doctor;
mod usage;
mod usage_poll;
mod usage_poll_schedule;
mod watch;
mod websocket;
mod websocket_keepalive;
