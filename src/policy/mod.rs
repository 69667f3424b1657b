//! Pure decisions: no files, sockets, processes or clocks. Time comes in as `now_ms`.
pub mod account;
pub mod cert;
pub mod codex_args;
pub mod health;
pub mod names;
pub mod order;
pub mod perimeter;
pub mod quota;
pub mod reset_time;
pub mod route;
pub mod run_plan;
pub mod strategy;
pub mod token_answer;
pub mod upstream;
pub mod usage;
pub mod usage_health;
