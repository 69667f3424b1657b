//! HTTP model calls whose `200 text/event-stream` answer fails in its first events, before
//! any output (a usage limit or an overload in `response.failed`): the real gateway replays
//! them on the next account, and the client sees only the good stream. A failure after output
//! started, or one that is the request's own fault, is passed through untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use cao::mock::{AccountFaults, Scenario, StreamFailure};
use common::gateway::{
    assert_no_mismatch, eventually, gw, mock, mock_acc1, model_call, model_calls, status_file,
    two_accounts,
};

fn failing(code: &str, times: Option<u32>) -> AccountFaults {
    AccountFaults {
        stream_failure: Some(StreamFailure {
            code: code.to_string(),
            times,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_hits_the_usage_limit_before_output_is_served_by_the_next_account() {
    let env = two_accounts();
    let m = mock_acc1(failing("usage_limit_reached", None)).await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, Some("sse-s1")).await;
    assert_eq!(a.status, 200, "{a:?}\n{}", g.log());
    assert!(a.body.contains("Mock reply from acc-2."), "{}", a.body);
    assert!(
        !a.body.contains("response.failed") && !a.body.contains("usage_limit_reached"),
        "the failed stream never reaches the client: {}",
        a.body
    );
    assert_eq!(
        model_calls(&m),
        vec![("acc-1".into(), 429), ("acc-2".into(), 200)]
    );
    // The spent account cools down like after a 429: the next call goes straight to acc-2.
    assert!(
        eventually(15, || status_file(&env)["statuses"]["a1"]["lastQuotaAtMs"]
            .is_i64()),
        "a1 cools down as spent: {}",
        status_file(&env)
    );
    m.clear_requests();
    let a = model_call(&g.url, Some("sse-s1")).await;
    assert!(a.body.contains("Mock reply from acc-2."), "{}", a.body);
    assert_eq!(model_calls(&m), vec![("acc-2".into(), 200)]);
    assert_no_mismatch(&m);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_account_failing_its_stream_on_the_limit_gets_the_all_spent_answer() {
    let env = two_accounts();
    let m = mock(Scenario {
        default_faults: failing("usage_limit_reached", None),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 429, "{a:?}");
    assert_eq!(
        a.json()["error"]["type"],
        "usage_limit_reached",
        "{}",
        a.body
    );
    assert!(
        a.json()["error"]["resets_at"].as_i64().is_some(),
        "{}",
        a.body
    );
    assert_eq!(
        model_calls(&m),
        vec![("acc-1".into(), 429), ("acc-2".into(), 429)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overloaded_stream_is_retried_then_moved_and_passed_on_when_no_account_can_serve() {
    let env = two_accounts();
    // acc-1 overloaded for good: 1 try + 2 retries, then acc-2 serves.
    let m = mock_acc1(failing("server_is_overloaded", None)).await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("Mock reply from acc-2."), "{}", a.body);
    let calls = model_calls(&m);
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(calls[..3].iter().all(|c| c == &("acc-1".to_string(), 503)));
    assert_eq!(calls[3], ("acc-2".to_string(), 200));
    drop(g);

    // Every account overloaded: the client gets the last stream as upstream sent it.
    let m = mock(Scenario {
        default_faults: failing("server_is_overloaded", None),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body.contains("response.failed") && a.body.contains("server_is_overloaded"),
        "{}",
        a.body
    );
    assert_eq!(model_calls(&m).len(), 6, "3 tries on each account");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_that_is_the_requests_own_is_passed_through_at_once() {
    let env = two_accounts();
    let m = mock_acc1(failing("context_length_exceeded", None)).await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("context_length_exceeded"), "{}", a.body);
    assert_eq!(model_calls(&m), vec![("acc-1".into(), 503)], "not replayed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_fails_once_is_replayed_on_the_same_account_after_an_overload() {
    let env = two_accounts();
    let m = mock_acc1(failing("server_is_overloaded", Some(1))).await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert!(a.body.contains("Mock reply from acc-1."), "{}", a.body);
    assert!(!a.body.contains("response.failed"), "{}", a.body);
    assert_eq!(
        model_calls(&m),
        vec![("acc-1".into(), 503), ("acc-1".into(), 200)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_fails_after_output_started_is_passed_through() {
    let env = two_accounts();
    // Output first, then the stream breaks: too late to move, the client sees what came.
    let m = mock_acc1(AccountFaults {
        disconnect_after_events: Some(3),
        ..Default::default()
    })
    .await;
    let g = gw(&env, &m, &[]);
    let a = model_call(&g.url, None).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("response.output_text.delta"), "{}", a.body);
    assert_eq!(model_calls(&m), vec![("acc-1".into(), 200)]);
}
