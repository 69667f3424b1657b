//! Unit tests of the gateway state: affinity, batched status writes, login state.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::store::auth_file::{AuthFile, TokenSet, make_unsigned_jwt};

fn write_login(store: &Store, name: &str, account_id: &str, tag: &str) {
    let claims = json!({"exp": 4_000_000_000i64, "tag": tag,
        "https://api.openai.com/auth": {"chatgpt_account_id": account_id}});
    let tokens = TokenSet {
        access_token: make_unsigned_jwt(&claims),
        id_token: None,
        refresh_token: Some(format!("rt-{account_id}-0")),
        account_id: Some(account_id.to_string()),
    };
    let _ = store.save_auth(
        name,
        &AuthFile::new_chatgpt(&tokens, "2026-01-01T00:00:00Z"),
    );
}

fn setup(names: &[&str]) -> (tempfile::TempDir, Arc<GatewayState>) {
    let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::abort());
    let store = Arc::new(Store::at(dir.path()));
    let _ = store.update_registry(|r| {
        for n in names {
            r.add(n);
        }
        Ok(())
    });
    for n in names {
        write_login(&store, n, &format!("acc-{n}"), "0");
    }
    let client = crate::net::connector::http_client().unwrap_or_else(|_| std::process::abort());
    let state = GatewayState::load(store, GatewayConfig::default(), client)
        .unwrap_or_else(|_| std::process::abort());
    (dir, Arc::new(state))
}

fn account(state: &GatewayState, name: &str) -> Arc<Account> {
    state
        .pool()
        .accounts
        .iter()
        .find(|a| a.name == name)
        .cloned()
        .unwrap_or_else(|| std::process::abort())
}

#[test]
fn a_brief_failover_keeps_the_session_but_a_long_cooldown_moves_it() {
    let (_d, st) = setup(&["a", "b"]);
    let (a, b) = (account(&st, "a"), account(&st, "b"));
    let now = 1_000_000;
    st.pin_session("s", &a, now);
    // a is rate limited for a moment: the request is served by b, the session stays with a.
    st.record_failure(&a, now, Some(now + 10_000), false, "rate limited");
    st.pin_session("s", &b, now);
    assert_eq!(
        st.choose(Some("s"), &[], now + 20_000)
            .map(|x| x.name.clone())
            .ok(),
        Some("a".into())
    );
    // a is spent for hours: the session moves to b for good.
    st.record_failure(&a, now, Some(now + 3_600_000), true, "usage limit reached");
    st.pin_session("s", &b, now);
    assert_eq!(
        st.choose(Some("s"), &[], now + 4_000_000)
            .map(|x| x.name.clone())
            .ok(),
        Some("b".into())
    );
    assert_eq!(st.affinity_count(), 1);
}

#[test]
fn everything_cooling_reports_the_soonest_reset() {
    let (_d, st) = setup(&["a", "b"]);
    st.record_failure(&account(&st, "a"), 0, Some(9_000), true, "x");
    st.record_failure(&account(&st, "b"), 0, Some(5_000), true, "x");
    assert_eq!(st.choose(None, &[], 1_000).err(), Some(Some(5_000)));
    assert_eq!(
        st.choose(None, &[], 6_000).map(|x| x.name.clone()).ok(),
        Some("b".into())
    );
}

#[test]
fn batched_status_writes_merge_and_keep_other_fields() {
    let (_d, st) = setup(&["a"]);
    let _ = st.store.update_account_status("a", |s| {
        s.extra.insert("fromTheTypescriptTool".into(), json!(1));
    });
    let a = account(&st, "a");
    st.record_failure(&a, 100, Some(5_000), true, "usage limit reached");
    st.record_failure(&a, 200, None, false, "rate limited");
    st.flush_statuses();
    let f = st.store.load_statuses().unwrap_or_default();
    let s = &f.statuses["a"];
    assert_eq!(s.cooldown_until_ms, Some(5_000));
    // The usage limit is not a failure (the cooldown says it); the rate limit is.
    assert_eq!(s.consecutive_failures, Some(1));
    assert_eq!(s.last_quota_at_ms, Some(100));
    assert_eq!(s.last_error.as_deref(), Some("rate limited"));
    assert_eq!(s.extra["fromTheTypescriptTool"], 1);
    st.record_success(&a, 300, 300);
    st.flush_statuses();
    let s = &st.store.load_statuses().unwrap_or_default().statuses["a"];
    assert_eq!(s.consecutive_failures, Some(0));
    assert_eq!(s.cooldown_until_ms, None);
    assert_eq!(s.last_success_at_ms, Some(300));
}

#[test]
fn an_answer_to_a_request_sent_before_the_usage_limit_keeps_the_cooldown() {
    let (_d, st) = setup(&["a"]);
    let a = account(&st, "a");
    // `/models` leaves at 400, the turn next to it hits the limit at 500, `/models` answers 200
    // at 600: the account is still spent.
    st.record_failure(&a, 500, Some(90_000), true, "usage limit reached");
    st.record_success(&a, 400, 600);
    assert_eq!(a.cooldown_until(), Some(90_000));
    st.flush_statuses();
    let s = &st.store.load_statuses().unwrap_or_default().statuses["a"];
    assert_eq!(s.cooldown_until_ms, Some(90_000));
    assert_eq!(s.last_success_at_ms, None);
    // A request sent after the limit was learnt that is served is evidence: it clears it.
    st.record_success(&a, 700, 800);
    assert_eq!(a.cooldown_until(), None);
}

#[test]
fn needs_login_survives_a_restart_until_auth_json_changes() {
    let (dir, st) = setup(&["a"]);
    st.set_needs_login(&account(&st, "a"), true);
    st.flush_statuses();
    let store = Arc::new(Store::at(dir.path()));
    let client = crate::net::connector::http_client().unwrap_or_else(|_| std::process::abort());
    let again = GatewayState::load(store.clone(), GatewayConfig::default(), client.clone())
        .unwrap_or_else(|_| std::process::abort());
    assert!(
        account(&again, "a").needs_login(),
        "same auth.json: still needs a login"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_login(&store, "a", "acc-a", "new login");
    let fresh = GatewayState::load(store, GatewayConfig::default(), client)
        .unwrap_or_else(|_| std::process::abort());
    assert!(!account(&fresh, "a").needs_login(), "a new login clears it");
}
