//! Helpers of the `cao status` tests ([`crate::status`] and [`crate::status_doctor`]): account
//! status files, JSON output, and three accounts with some history.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;

use std::fs;

use common::{TestEnv, now_secs};
use serde_json::{Value, json};

pub const DAY: i64 = 86_400;

pub fn write_statuses(env: &TestEnv, statuses: Value) {
    fs::write(
        env.data_dir().join("account_status.json"),
        serde_json::to_string_pretty(&json!({ "statuses": statuses })).unwrap(),
    )
    .unwrap();
}

pub fn json_out(env: &TestEnv, args: &[&str]) -> (Value, i32) {
    let out = env.cao().args(args).output().unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (v, out.status.code().unwrap())
}

/// Two healthy accounts and one with history.
pub fn three_accounts() -> TestEnv {
    let env = TestEnv::new();
    let now = now_secs();
    env.add_logged_in("alpha", "acc-alpha", now + 10 * DAY);
    env.add_logged_in("beta", "acc-beta", now + 3 * DAY);
    env.add_logged_in("gamma", "acc-gamma", now + 5 * DAY);
    // The clock to the millisecond (not `now * 1000`, up to a second behind), so "5m ago"
    // holds for a whole second after this, however busy the machine.
    let now_ms = common::now_ms();
    write_statuses(
        &env,
        json!({
            "beta": {"lastAttemptAtMs": now_ms - 60_000, "lastQuotaAtMs": now_ms - 300_000, "cooldownUntilMs": now_ms + 3 * 3_600_000 + 15 * 60_000, "consecutiveFailures": 1, "lastError": "usage_limit_reached"},
            "gamma": {"lastSuccessAtMs": now_ms - 120_000, "consecutiveFailures": 0}
        }),
    );
    env
}
