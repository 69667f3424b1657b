//! Token custody across replicas: several `cao gateway start --state redis://…`, each with its
//! own data dir holding a copy of the same logins, a real `redis-server`, and the mock's STRICT
//! token endpoint (each refresh token works once; a spent one coming back revokes the login).
//! Whatever happens (a crowd needing a refresh at once, the lease holder killed mid-call, a
//! late 401 from an old token, Redis frozen mid-refresh), no refresh token is presented twice.

use std::path::PathBuf;
use std::time::Duration;

use cao::mock::{AccountFaults, MockUpstream, Scenario};
use serde_json::Value;

use crate::common::gateway::{GatewayProc, eventually, get, mock, model_call};
use cao::shared::redis::Publish;

use crate::common::redis::{SharedPool, publish_out_of_band};
use crate::common::{TestEnv, now_secs};
use crate::custody::{
    assert_login_alive, assert_no_spent_token_presented as assert_no_reuse,
    saved_refresh_token as refresh_token,
};

pub(crate) fn auth(env: &TestEnv, account: &str) -> PathBuf {
    env.data_dir().join(account).join("auth.json")
}

/// An env with a1 (acc-1) and a2 (acc-2) whose access tokens expire at `exp_secs`.
fn accounts(exp_secs: i64) -> TestEnv {
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", exp_secs);
    env.add_logged_in("a2", "acc-2", exp_secs);
    env
}

/// Two replicas, each with its own copy of a1 and a2 (access tokens good for an hour).
pub(crate) fn two_replicas(
    m: &MockUpstream,
    pool: &SharedPool,
) -> (TestEnv, TestEnv, GatewayProc, GatewayProc) {
    let (ea, eb) = (accounts(now_secs() + 3600), accounts(now_secs() + 3600));
    let a = pool.replica(&ea, m, &[]);
    let b = pool.replica(&eb, m, &[]);
    (ea, eb, a, b)
}

async fn status(g: &GatewayProc) -> Value {
    get(&g.url, "/status", &[]).await.json()
}

fn account_state(st: &Value, name: &str) -> String {
    st["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .map(|a| a["state"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// Poll an async condition for up to `secs`.
async fn until<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f().await
}

/// acc-1 answers 401 to any access token its token endpoint did not issue (the logins the
/// tests write), so the first request of each replica on a1 needs a refresh; the endpoint
/// holds its answer back `delay_ms` after rotating.
pub(crate) async fn mock_401_acc1(delay_ms: u64) -> MockUpstream {
    mock(Scenario::default().with_account(
        "acc-1",
        AccountFaults {
            unauthorized: true,
            refresh_delay_ms: delay_ms,
            ..AccountFaults::default()
        },
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_and_60_requests_that_all_need_a_refresh_spend_each_login_once() {
    let Some(pool) = SharedPool::start() else {
        return;
    };
    // Each answer comes 1.5 s after the rotation: the refreshes are in flight while the crowd
    // arrives at every replica.
    let m = mock(Scenario {
        default_faults: AccountFaults {
            refresh_delay_ms: 1500,
            ..AccountFaults::default()
        },
        ..Scenario::default()
    })
    .await;
    let envs: Vec<TestEnv> = (0..3).map(|_| accounts(now_secs() - 60)).collect();
    let gws: Vec<GatewayProc> = envs
        .iter()
        .map(|e| pool.replica(e, &m, &["--strategy", "round-robin"]))
        .collect();
    let calls = (0..60).map(|i| {
        let u = gws[i % 3].url.clone();
        async move { model_call(&u, Some(&format!("s-{i}"))).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 200, "request {i}: {a:?}\n{}", gws[i % 3].log());
    }
    assert_eq!(m.refresh_count("acc-1"), 1, "{:?}", m.presented_tokens());
    assert_eq!(m.refresh_count("acc-2"), 1, "{:?}", m.presented_tokens());
    assert_eq!(m.presented_tokens().len(), 2, "{:?}", m.presented_tokens());
    assert_no_reuse(&m);
    // Every replica wrote the one published login through to its own auth.json (0600).
    for name in ["a1", "a2"] {
        let want = refresh_token(&auth(&envs[0], name));
        assert!(want.ends_with(|c: char| c != '0'), "{want}");
        assert!(
            eventually(10, || envs
                .iter()
                .all(|e| refresh_token(&auth(e, name)) == want)),
            "{name}: {:?}",
            envs.iter()
                .map(|e| refresh_token(&auth(e, name)))
                .collect::<Vec<_>>()
        );
        for e in &envs {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(auth(e, name)).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    let log = gws.iter().map(GatewayProc::log).collect::<String>();
    assert!(!log.contains("rt-acc-"), "a token in the log:\n{log}");
    for g in gws {
        assert!(g.stop().success());
    }
    assert_no_reuse(&m);
    assert_login_alive(&m, &auth(&envs[2], "a1")).await;
    assert_login_alive(&m, &auth(&envs[1], "a2")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_lease_holder_mid_refresh_never_lets_another_replica_resend_its_token() {
    let Some(pool) = SharedPool::start() else {
        return;
    };
    // The endpoint rotates at once and answers 4 s later: the holder dies in between.
    let m = mock_401_acc1(4000).await;
    let envs: Vec<TestEnv> = (0..3).map(|_| accounts(now_secs() + 3600)).collect();
    let mut gws: Vec<GatewayProc> = envs.iter().map(|e| pool.replica(e, &m, &[])).collect();
    let holder_url = gws[0].url.clone();
    let call = tokio::spawn(async move { model_call(&holder_url, Some("h")).await });
    assert!(eventually(10, || !m.presented_tokens().is_empty()));
    gws.remove(0).stop_with("-KILL");
    call.abort();
    // The others: a1's token may be spent (its answer died with the holder), so a1 needs a
    // login; they say so and serve on a2.
    for (i, g) in gws.iter().enumerate() {
        let a = model_call(&g.url, Some(&format!("o-{i}"))).await;
        assert_eq!(a.status, 200, "{a:?}\n{}", g.log());
        assert!(a.body.contains("Mock reply from acc-2."), "{}", a.body);
        let st = status(g).await;
        assert_eq!(account_state(&st, "a1"), "needs-login", "{st}");
        assert_eq!(account_state(&st, "a2"), "ready", "{st}");
        let log = g.log_when(|l| l.contains("never sent again"));
        assert!(log.contains("never sent again"), "{log}");
    }
    assert_eq!(m.presented_tokens().len(), 1, "{:?}", m.presented_tokens());
    // The killed holder, restarted on its data dir, does not resend it either.
    let g = pool.replica(&envs[0], &m, &[]);
    let a = model_call(&g.url, Some("after")).await;
    assert_eq!(a.status, 200, "{a:?}\n{}", g.log());
    assert!(a.body.contains("Mock reply from acc-2."), "{}", a.body);
    assert_eq!(m.presented_tokens().len(), 1, "{:?}", m.presented_tokens());
    assert_no_reuse(&m);
    assert!(!m.login_revoked("acc-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_401_from_an_old_token_adopts_the_rotated_login_instead_of_spending_again() {
    let Some(pool) = SharedPool::start() else {
        return;
    };
    let m = mock_401_acc1(0).await;
    let (ea, eb, a, b) = two_replicas(&m, &pool);
    let first = model_call(&a.url, Some("x")).await;
    assert_eq!(first.status, 200, "{first:?}\n{}", a.log());
    assert!(
        first.body.contains("Mock reply from acc-1."),
        "{}",
        first.body
    );
    // B still holds the old access token: its 401 comes from a login that has rotated since.
    let second = model_call(&b.url, Some("y")).await;
    assert_eq!(second.status, 200, "{second:?}\n{}", b.log());
    assert!(
        second.body.contains("Mock reply from acc-1."),
        "{}",
        second.body
    );
    assert_eq!(m.refresh_count("acc-1"), 1, "{:?}", m.presented_tokens());
    assert_eq!(m.presented_tokens().len(), 1, "{:?}", m.presented_tokens());
    assert_no_reuse(&m);
    for g in [&a, &b] {
        let st = status(g).await;
        assert_eq!(account_state(&st, "a1"), "ready", "{st}");
    }
    let log = b.log_when(|l| l.contains("adopted the token set another replica published"));
    assert!(
        log.contains("adopted the token set another replica published"),
        "{log}"
    );
    let rotated = refresh_token(&auth(&ea, "a1"));
    assert_eq!(rotated, "rt-acc-1-1");
    assert_eq!(refresh_token(&auth(&eb, "a1")), rotated);
    assert!(a.stop().success() && b.stop().success());
    assert_login_alive(&m, &auth(&eb, "a1")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_frozen_mid_refresh_spends_nothing_more_and_the_replicas_converge_after() {
    let Some(pool) = SharedPool::start() else {
        return;
    };
    let m = mock_401_acc1(1500).await;
    let (ea, eb, a, b) = two_replicas(&m, &pool);
    let a_url = a.url.clone();
    let call = tokio::spawn(async move { model_call(&a_url, Some("x")).await });
    assert!(eventually(10, || !m.presented_tokens().is_empty()));
    pool.redis.signal("-STOP");
    // A's refresh was sent before the freeze: its answer is kept in A's auth.json and served.
    let first = call.await.unwrap();
    assert_eq!(first.status, 200, "{first:?}\n{}", a.log());
    assert!(
        first.body.contains("Mock reply from acc-1."),
        "{}",
        first.body
    );
    assert_eq!(refresh_token(&auth(&ea, "a1")), "rt-acc-1-1");
    // B cannot refresh a1 now (fail closed): it serves on a2, with tokens still valid.
    for i in 0..3 {
        let r = model_call(&b.url, Some(&format!("frozen-{i}"))).await;
        assert_eq!(r.status, 200, "{r:?}\n{}", b.log());
        assert!(r.body.contains("Mock reply from acc-2."), "{}", r.body);
    }
    let again = model_call(&a.url, Some("x")).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(
        again.body.contains("Mock reply from acc-1."),
        "{}",
        again.body
    );
    assert_eq!(m.presented_tokens().len(), 1, "{:?}", m.presented_tokens());
    assert!(
        until(10, || async {
            status(&b).await["shared"]["reachable"] == false
        })
        .await,
        "{}",
        status(&b).await
    );
    let log = b.log_when(|l| l.contains("no token refresh until it is back"));
    assert!(log.contains("no token refresh until it is back"), "{log}");
    pool.redis.signal("-CONT");
    // After the thaw, A publishes what it saved and B writes it through to its auth.json.
    assert!(
        eventually(30, || refresh_token(&auth(&eb, "a1")) == "rt-acc-1-1"),
        "{}\n{}",
        a.log(),
        b.log()
    );
    for g in [&a, &b] {
        assert!(
            until(10, || async {
                status(g).await["shared"]["reachable"] == true
            })
            .await,
            "{}",
            status(g).await
        );
    }
    assert_eq!(m.presented_tokens().len(), 1, "{:?}", m.presented_tokens());
    assert_no_reuse(&m);
    assert!(a.stop().success() && b.stop().success());
    assert_login_alive(&m, &auth(&eb, "a1")).await;
}

/// A new login of acc-1 made elsewhere (as `cao login` on another machine would): the strict
/// endpoint issues it for a refresh token of its own family, never held by the replicas.
async fn login_elsewhere(m: &MockUpstream) -> Value {
    let r = crate::custody::refresh_at(m, "rt-acc-1-500").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    serde_json::json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": t["id_token"], "access_token": t["access_token"],
            "refresh_token": t["refresh_token"], "account_id": "acc-1",
        },
        "last_refresh": jiff::Timestamp::now().to_string(),
    })
}

fn presented(m: &MockUpstream) -> Vec<String> {
    m.presented_tokens().into_iter().map(|p| p.token).collect()
}

/// The lease keeps two replicas' refreshes of one account apart, so the compare-and-set that
/// publishes a refresh is the second fence: it is lost only when the published set moved on
/// while the token call was in flight. The test moves it, deterministically and out of band: a
/// new login of acc-1 made elsewhere is published over the token replica A is spending (sealed
/// and compare-and-set exactly as a replica does it). A, the loser, must adopt that login (into
/// its auth.json, 0600) instead of its own answer, count the loss, and never present its own
/// copy; B, which needed a refresh at the same time, adopts it too without spending anything.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_loses_the_compare_and_set_adopts_the_winners_login_and_never_sends_its_own()
{
    let Some(pool) = SharedPool::start() else {
        return;
    };
    let m = mock_401_acc1(0).await;
    let winner = login_elsewhere(&m).await;
    let winner_rt = winner["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // From here on the endpoint holds each answer back 3 s after rotating: the window in which
    // the winner is published.
    m.set_faults(
        "acc-1",
        AccountFaults {
            unauthorized: true,
            refresh_delay_ms: 3000,
            ..AccountFaults::default()
        },
    );
    let (ea, eb, a, b) = two_replicas(&m, &pool);
    // Both replicas' a1 tokens are answered 401: both need a refresh. A goes first.
    let a_url = a.url.clone();
    let call_a = tokio::spawn(async move { model_call(&a_url, Some("a")).await });
    assert!(eventually(10, || presented(&m).len() == 2), "{}", a.log());
    assert_eq!(presented(&m), ["rt-acc-1-500", "rt-acc-1-0"]);
    let b_url = b.url.clone();
    let call_b = tokio::spawn(async move { model_call(&b_url, Some("b")).await });
    let won = publish_out_of_band(&pool.url(), &pool.key, "a1", "rt-acc-1-0", &winner).await;
    assert!(matches!(won, Publish::Won(_)), "{won:?}");

    let ra = call_a.await.unwrap();
    // The loser wrote the winner's login through to its auth.json, not its own answer, before
    // its request was answered.
    assert_eq!(refresh_token(&auth(&ea, "a1")), winner_rt, "{}", a.log());
    assert_eq!(ra.status, 200, "{ra:?}\n{}", a.log());
    assert!(ra.body.contains("Mock reply from acc-1."), "{}", ra.body);
    let rb = call_b.await.unwrap();
    assert_eq!(rb.status, 200, "{rb:?}\n{}", b.log());
    assert!(rb.body.contains("Mock reply from acc-1."), "{}", rb.body);
    assert!(
        eventually(10, || refresh_token(&auth(&eb, "a1")) == winner_rt),
        "{}",
        b.log()
    );
    for e in [&ea, &eb] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(auth(e, "a1")).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
    let log = a.log_when(|l| l.contains("adopting it instead of ours"));
    assert!(log.contains("adopting it instead of ours"), "{log}");
    // Counted where the operator looks: /metrics and /status.
    let metric = |g: &GatewayProc| {
        let url = g.url.clone();
        async move {
            get(&url, "/metrics", &[])
                .await
                .body
                .lines()
                .find(|l| {
                    l.starts_with("cao_gateway_shared_state_events_total{event=\"cas_loss\"}")
                })
                .map(str::to_string)
                .unwrap_or_default()
        }
    };
    assert!(metric(&a).await.ends_with(" 1"), "{}", metric(&a).await);
    assert!(metric(&b).await.ends_with(" 0"), "{}", metric(&b).await);
    assert_eq!(status(&a).await["shared"]["casLosses"], 1);
    let waits = status(&b).await["shared"]["leaseWaits"]
        .as_u64()
        .unwrap_or(0);
    assert!(waits >= 1, "B never waited for A's lease: {waits}");
    // The only refresh tokens ever presented: the login made elsewhere and the one A spent.
    // A's own answer is never sent; B spent nothing.
    for g in [&a, &b] {
        let r = model_call(&g.url, Some("again")).await;
        assert_eq!(r.status, 200, "{r:?}\n{}", g.log());
    }
    assert_eq!(presented(&m), ["rt-acc-1-500", "rt-acc-1-0"]);
    assert_eq!(m.refresh_count("acc-1"), 2);
    assert_no_reuse(&m);
    let logs = a.log() + &b.log();
    assert!(!logs.contains("rt-acc-"), "a token in the log:\n{logs}");
    assert!(a.stop().success() && b.stop().success());
    assert!(!m.login_revoked("acc-1"));
    // The adopted login is the live one at the strict endpoint.
    assert_login_alive(&m, &auth(&eb, "a1")).await;
}
