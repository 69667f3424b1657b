//! A token set put back in the shared state by someone who can write to Redis but holds no
//! state key: an old sealed set under its own fingerprint and generation, or under a newer
//! generation. The replicas refuse both (the seal binds the set to its fingerprint and
//! generation; a generation older than one a replica has seen is refused), so the spent refresh
//! token inside is never presented again: against the mock's STRICT token endpoint, which
//! revokes the login when a spent token comes back.

use std::collections::HashMap;

use redis::AsyncCommands;

use crate::common::gateway::{eventually, model_call};
use crate::common::redis::SharedPool;
use crate::custody::{
    assert_login_alive, assert_no_spent_token_presented as assert_no_reuse,
    saved_refresh_token as refresh_token,
};
use crate::replicas_custody::{auth, mock_401_acc1, two_replicas};
use cao::store::custody::fingerprint;

async fn conn(pool: &SharedPool) -> redis::aio::MultiplexedConnection {
    redis::Client::open(pool.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn published(c: &mut redis::aio::MultiplexedConnection) -> HashMap<String, String> {
    c.hgetall("cao:tokens:a1").await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_token_set_put_back_in_redis_is_refused_and_its_spent_token_never_sent() {
    let Some(pool) = SharedPool::start() else {
        return;
    };
    let m = mock_401_acc1(0).await;
    let (ea, eb, a, b) = two_replicas(&m, &pool);
    let mut c = conn(&pool).await;
    // The first replica up publishes its copy of a1 (refresh token rt-acc-1-0) as generation 1.
    let mut old = HashMap::new();
    for _ in 0..100 {
        old = published(&mut c).await;
        if old.contains_key("sealed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(old.get("gen").map(String::as_str), Some("1"), "{old:?}");
    assert_eq!(old.get("fp"), Some(&fingerprint("rt-acc-1-0")));

    // A spends rt-acc-1-0 (its access token is answered 401) and publishes generation 2; B
    // adopts it.
    for g in [&a, &b] {
        let r = model_call(&g.url, Some("x")).await;
        assert_eq!(r.status, 200, "{r:?}\n{}", g.log());
    }
    assert!(
        eventually(10, || refresh_token(&auth(&eb, "a1")) == "rt-acc-1-1"),
        "{}",
        b.log()
    );
    let now = published(&mut c).await;
    assert_eq!(now.get("gen").map(String::as_str), Some("2"), "{now:?}");

    // Put generation 1 back as it was, and lift the shared mark that retired its token.
    let spend_key = format!("cao:spend:a1:{}", fingerprint("rt-acc-1-0"));
    let _: () = c.del(&spend_key).await.unwrap();
    let _: () = c
        .hset_multiple(
            "cao:tokens:a1",
            &[
                ("fp", &old["fp"]),
                ("gen", &old["gen"]),
                ("sealed", &old["sealed"]),
            ],
        )
        .await
        .unwrap();
    for g in [&a, &b] {
        let log = g.log_when(|l| l.contains("older than generation 2"));
        assert!(log.contains("older than generation 2"), "{log}");
    }
    // The same old set labelled as a newer generation does not open.
    let _: () = c.hset("cao:tokens:a1", "gen", "3").await.unwrap();
    for g in [&a, &b] {
        let log = g.log_when(|l| l.contains("does not open with this state key"));
        assert!(log.contains("does not open with this state key"), "{log}");
    }
    for g in [&a, &b] {
        let r = model_call(&g.url, Some("again")).await;
        assert_eq!(r.status, 200, "{r:?}\n{}", g.log());
        assert!(r.body.contains("Mock reply from acc-1."), "{}", r.body);
    }
    // Only the one legitimate spend ever reached the token endpoint; both replicas kept the
    // live login.
    let presented: Vec<String> = m.presented_tokens().into_iter().map(|p| p.token).collect();
    assert_eq!(presented, ["rt-acc-1-0"]);
    assert_no_reuse(&m);
    for e in [&ea, &eb] {
        assert_eq!(refresh_token(&auth(e, "a1")), "rt-acc-1-1");
    }
    let logs = a.log() + &b.log();
    assert!(!logs.contains("rt-acc-"), "a token in the log:\n{logs}");
    assert!(a.stop().success() && b.stop().success());
    assert!(!m.login_revoked("acc-1"));
    assert_login_alive(&m, &auth(&ea, "a1")).await;
}
