//! Several `cao gateway start --state redis://…` replicas, each with its own data dir, sharing
//! one pool through a real `redis-server` on 127.0.0.1 against the mock upstream.

use cao::mock::{AccountFaults, MockUpstream, QuotaFault};
use serde_json::Value;

use crate::common::gateway::{
    eventually, eventually_async, get, mock_acc1, model_call, model_calls, two_accounts,
};
use crate::common::redis::{SharedPool, pair, state_key_file as key_file};
use crate::common::{TestEnv, now_secs};

pub fn spent_acc1() -> AccountFaults {
    AccountFaults {
        quota: Some(QuotaFault {
            resets_at: Some(now_secs() + 3600),
            ..QuotaFault::default()
        }),
        ..AccountFaults::default()
    }
}

/// acc-1 is spent (a 429 until an hour from now): A's first request learns it and is served by
/// acc-2; B learns the cooldown through Redis and never asks acc-1 itself.
pub async fn assert_a_cooldown_is_shared(m: &MockUpstream, a_url: &str, b_url: &str) {
    let first = model_call(a_url, Some("s-a")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.body.contains("Mock reply from acc-2."),
        "{}",
        first.body
    );
    assert_eq!(
        model_calls(m),
        [("acc-1".to_string(), 429), ("acc-2".to_string(), 200)]
    );
    // B learns the cooldown through Redis, without ever asking acc-1 itself.
    assert!(eventually(10, || {
        let b_url = b_url.to_string();
        let st: Value = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async { get(&b_url, "/status", &[]).await.json() })
        });
        st.to_string().contains("cooling")
    }));
    let second = model_call(b_url, Some("s-b")).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(
        second.body.contains("Mock reply from acc-2."),
        "{}",
        second.body
    );
    let acc1_calls = model_calls(m).iter().filter(|c| c.0 == "acc-1").count();
    assert_eq!(acc1_calls, 1, "{:?}", model_calls(m));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cooldown_learnt_by_one_replica_is_honoured_by_another() {
    let m = mock_acc1(spent_acc1()).await;
    let Some(p) = pair(&m, &[]) else {
        return;
    };
    assert_a_cooldown_is_shared(&m, &p.a.url, &p.b.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_pinned_by_one_replica_stays_on_its_account_at_another() {
    let m = mock_acc1(AccountFaults::default()).await;
    // Round robin: without the shared pin, B would give the session the next account.
    let Some(p) = pair(&m, &["--strategy", "round-robin"]) else {
        return;
    };
    let (a, b) = (&p.a, &p.b);
    let first = model_call(&a.url, Some("shared-session")).await;
    assert_eq!(first.status, 200);
    let served_by = model_calls(&m)[0].0.clone();
    // Warm B's own rotation so its next fresh choice differs from A's.
    for i in 0..3 {
        model_call(&b.url, Some(&format!("other-{i}"))).await;
    }
    // The pin goes to Redis behind the request (write-behind): wait until Redis holds it.
    let shared = cao::shared::redis::SharedState::connect(
        &p.pool.url(),
        cao::gateway::pool::replicas::KEY_PREFIX,
    )
    .await
    .unwrap();
    let shared = &shared;
    assert!(
        eventually_async(15, || async move {
            shared
                .affinity("shared-session")
                .await
                .is_ok_and(|pin| pin.is_some())
        })
        .await,
        "A's pin never reached Redis"
    );
    for _ in 0..3 {
        let before = model_calls(&m).len();
        let r = model_call(&b.url, Some("shared-session")).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            model_calls(&m)[before].0,
            served_by,
            "{:?}",
            model_calls(&m)
        );
    }
}

#[test]
fn a_replica_with_the_wrong_state_key_refuses_to_start() {
    let Some(pool) = SharedPool::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let m = rt.block_on(mock_acc1(AccountFaults::default()));
    let other_key = TestEnv::new();
    let key2 = key_file(other_key.dir.path());
    let url = pool.url();
    let env_a = two_accounts();
    let _a = pool.replica(&env_a, &m, &[]);
    let env_b = two_accounts();
    let base = m.base_url();
    let out = crate::common::gateway::cao_command(&env_b)
        .args(["gateway", "start", "--port", "0", "--base-url", &base])
        .args(["--state", &url, "--state-key-file", &key2])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("state key") && err.contains("--state-key-file"),
        "{err}"
    );
}

#[test]
fn state_needs_a_key_file_and_a_redis_url() {
    let env = TestEnv::new();
    let out = env
        .cao()
        .args([
            "gateway",
            "start",
            "--port",
            "0",
            "--state",
            "redis://127.0.0.1:1/0",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--state-key-file"), "{err}");
    let out = env
        .cao()
        .args([
            "gateway",
            "start",
            "--port",
            "0",
            "--state",
            "http://x/",
            "--state-key-file",
            "/k",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("redis://"), "{err}");
}

async fn shared_view(url: &str) -> Value {
    get(url, "/status", &[]).await.json()["shared"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_see_each_other_one_leads_and_another_takes_over_when_it_dies() {
    let m = mock_acc1(AccountFaults::default()).await;
    let Some(p) = pair(&m, &[]) else {
        return;
    };
    let mut view = Value::Null;
    for _ in 0..100 {
        view = shared_view(&p.b.url).await;
        if view["replicas"].as_array().is_some_and(|r| r.len() == 2) && view["leader"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(view["replicas"].as_array().map(Vec::len), Some(2), "{view}");
    assert_eq!(view["reachable"], true, "{view}");
    assert!(!view.to_string().contains("hunter"), "{view}");
    let leader = view["leader"].as_str().unwrap().to_string();
    let (leader_proc, other) = if shared_view(&p.a.url).await["replica"] == leader.as_str() {
        (p.a, p.b)
    } else {
        (p.b, p.a)
    };
    // kill -9: the lease is not given back; it lapses and the other replica takes over.
    leader_proc.stop_with("-KILL");
    let mut took_over = false;
    for _ in 0..250 {
        let v = shared_view(&other.url).await;
        if v["leader"].as_str().is_some_and(|l| l != leader) {
            took_over = v["leader"] == v["replica"];
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(took_over, "{}", shared_view(&other.url).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_redis_does_not_stop_serving_and_the_replica_says_so() {
    let Some(pool) = SharedPool::start() else {
        return;
    };
    let redis = &pool.redis;
    let m = mock_acc1(AccountFaults::default()).await;
    let env = two_accounts();
    let g = pool.replica(&env, &m, &[]);
    assert_eq!(model_call(&g.url, Some("s1")).await.status, 200);
    redis.signal("-STOP");
    // Requests still go through (the shared state is not on their path), new sessions too.
    for i in 0..3 {
        let r = model_call(&g.url, Some(&format!("frozen-{i}"))).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mut said = false;
    for _ in 0..100 {
        if shared_view(&g.url).await["reachable"] == false {
            said = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(said, "{}", shared_view(&g.url).await);
    redis.signal("-CONT");
    let mut back = false;
    for _ in 0..150 {
        if shared_view(&g.url).await["reachable"] == true {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "{}", shared_view(&g.url).await);
    let log = g.log_when(|l| l.contains("shared state unreachable"));
    assert!(log.contains("shared state unreachable"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_leader_polls_usage_and_refreshes_ahead_of_expiry_and_the_others_adopt() {
    let Some(pool) = SharedPool::start() else {
        return;
    };
    let m = mock_acc1(AccountFaults::default()).await;
    // Access tokens expiring in 5 minutes: due for a refresh ahead of expiry (10 min margin),
    // not yet for a request; and the usage of idle accounts asked every second.
    let envs: Vec<TestEnv> = (0..2)
        .map(|_| {
            let env = TestEnv::new();
            env.add_logged_in("a1", "acc-1", now_secs() + 300);
            env.add_logged_in("a2", "acc-2", now_secs() + 300);
            env
        })
        .collect();
    let a = pool.replica(&envs[0], &m, &["--usage-poll", "1"]);
    let b = pool.replica(&envs[1], &m, &["--usage-poll", "1"]);
    let mut leader = Value::Null;
    for _ in 0..100 {
        leader = shared_view(&a.url).await["leader"].clone();
        if leader.is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (lead, follow, follow_env) = if shared_view(&a.url).await["replica"] == leader {
        (&a, &b, &envs[1])
    } else {
        (&b, &a, &envs[0])
    };
    let polled = |text: &str| text.contains("cao_gateway_usage_polls_total{");
    let mut lead_polled = false;
    for _ in 0..100 {
        if polled(&get(&lead.url, "/metrics", &[]).await.body) {
            lead_polled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(lead_polled, "{}", lead.log());
    // A few more poll intervals: the follower asks nothing, refreshes nothing.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let follower_metrics = get(&follow.url, "/metrics", &[]).await.body;
    assert!(!polled(&follower_metrics), "{follower_metrics}");
    assert_eq!(m.refresh_count("acc-1"), 1, "{:?}", m.presented_tokens());
    assert_eq!(m.refresh_count("acc-2"), 1, "{:?}", m.presented_tokens());
    let log = lead.log_when(|l| l.contains("access token refreshed"));
    assert!(log.contains("access token refreshed"), "{log}");
    assert!(
        !follow.log().contains("access token refreshed"),
        "{}",
        follow.log()
    );
    // The follower writes what the leader published through to its own auth.json.
    let saved = |name: &str| {
        std::fs::read_to_string(follow_env.data_dir().join(name).join("auth.json"))
            .unwrap_or_default()
    };
    assert!(
        eventually(10, || !saved("a1").contains("rt-acc-1-0")
            && !saved("a2").contains("rt-acc-2-0")),
        "{}",
        follow.log()
    );
    assert!(m.spent_tokens_presented().is_empty());
}
