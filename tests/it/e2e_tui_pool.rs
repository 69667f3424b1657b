//! The real Codex 0.171 TUI sees the pool (issue 14): Codex reads
//! `GET {chatgpt_base_url}/wham/usage` for its `/status` and blocks its composer when that says
//! the signed-in account is spent. Logged in as account 1, which is spent (the mock's usage
//! endpoint says 100 %), and routed through the gateway, the TUI must get the pool's usage
//! (account 2's 20 %) and still submit a turn, answered by account 2. Uses the tmux harness of
//! [`super::e2e_tui`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cao::mock::{AccountFaults, QuotaFault, UsageFault};

use crate::common::tui::{Setup, tui_ready};

#[test]
fn tui_whose_own_account_is_spent_still_submits_a_turn_through_the_gateway() {
    let Some(s) = Setup::new(0) else { return };
    s.mock().set_faults(
        "acct-2",
        AccountFaults {
            usage: Some(UsageFault {
                primary_used_percent: Some(20),
                secondary_used_percent: Some(7),
                ..UsageFault::default()
            }),
            ..AccountFaults::default()
        },
    );
    // Account 1's own usage endpoint says what its 429s say: spent.
    s.mock().set_faults(
        "acct-1",
        AccountFaults {
            usage: Some(UsageFault {
                primary_used_percent: Some(100),
                primary_reset_in_seconds: Some(7200),
                ..UsageFault::default()
            }),
            quota: Some(QuotaFault {
                resets_in_seconds: Some(7200),
                ..QuotaFault::default()
            }),
            ..AccountFaults::default()
        },
    );
    let Some((gw, home, t)) = s.tui_through_gateway("pool", "acct-1") else {
        return;
    };
    let context = || s.gateway_context(&gw);
    t.wait_for("the TUI to start", &context, tui_ready);
    t.submit("/status");
    // 20 % used on account 2 (the pool), not account 1's 100 %.
    t.wait_for("/status with the pool's usage", &context, |scr| {
        scr.contains("80% left") || scr.contains("20% used")
    });
    let screen = t.screen();
    assert!(!screen.contains(" 0% left"), "{screen}");
    s.hello_from_account_two(&t, &context);
    let screen = t.screen();
    assert!(!screen.contains("hit your usage limit"), "{screen}");
    // The usage Codex saw was asked about account 2 by the gateway; account 1's own usage
    // never reached Codex (the gateway answered that call itself).
    let usage: Vec<_> = s
        .mock()
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/wham/usage"))
        .collect();
    assert!(
        usage.iter().any(|r| r.account() == Some("acct-2")),
        "{}",
        context()
    );
    s.assert_bearer_matches_header();
    s.leave(t, &home, &context);
    gw.stop();
}
