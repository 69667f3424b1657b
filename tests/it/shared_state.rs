//! The shared state of several gateways (`src/shared/`) against a real `redis-server` on
//! 127.0.0.1: leases with fencing, the compare-and-set publish of token sets, "being spent"
//! marks, cooldowns, usage (newest wins), affinity, replicas, and the state-key check.

use std::time::Duration;

use cao::shared::error::SharedError;
use cao::shared::redis::{Publish, SharedState};
use cao::wire::Replica;

use crate::common::redis::RedisServer;

async fn state(r: &RedisServer, db: u8) -> SharedState {
    SharedState::connect(&r.url(db), "cao:").await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_with_another_state_key_is_refused() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let (a, b) = (state(&r, 0).await, state(&r, 0).await);
    a.claim_key("aaaa").await.unwrap();
    a.claim_key("aaaa").await.unwrap();
    b.claim_key("aaaa").await.unwrap();
    let err = b.claim_key("bbbb").await.unwrap_err();
    assert!(matches!(err, SharedError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("--state-key-file"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_lease_holder_at_a_time_and_only_the_holder_renews_or_releases() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let (a, b) = (state(&r, 0).await, state(&r, 0).await);
    // Long enough for the calls below to run inside it on a loaded machine.
    let ttl = Duration::from_secs(2);
    let fa = a
        .try_lease("refresh:work", "me", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(
        b.try_lease("refresh:work", "me", ttl)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !b.renew_lease("refresh:work", "not-the-fence", ttl)
            .await
            .unwrap()
    );
    assert!(
        !b.release_lease("refresh:work", "not-the-fence")
            .await
            .unwrap()
    );
    assert!(a.renew_lease("refresh:work", &fa, ttl).await.unwrap());
    assert_eq!(
        a.lease_holder("refresh:work").await.unwrap(),
        Some(fa.clone())
    );
    // A holder that stops renewing loses the lease; its late release then does nothing.
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let fb = b
        .try_lease("refresh:work", "me", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(fa, fb);
    assert!(!a.release_lease("refresh:work", &fa).await.unwrap());
    assert!(!a.renew_lease("refresh:work", &fa, ttl).await.unwrap());
    assert_eq!(
        b.lease_holder("refresh:work").await.unwrap(),
        Some(fb.clone())
    );
    assert!(b.release_lease("refresh:work", &fb).await.unwrap());
    assert!(
        a.try_lease("refresh:work", "me", ttl)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_wins_only_over_the_token_it_replaced_and_the_loser_gets_the_winner() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let s = state(&r, 0).await;
    assert_eq!(s.tokens("work").await.unwrap(), None);
    assert_eq!(
        s.publish_tokens("work", None, "fp1", "sealed-1", 1)
            .await
            .unwrap(),
        Publish::Won(1)
    );
    // A second "first publication" from another replica loses and adopts fp1.
    match s
        .publish_tokens("work", None, "fpX", "sealed-x", 1)
        .await
        .unwrap()
    {
        Publish::Lost(p) => assert_eq!((p.fp.as_str(), p.sealed.as_str()), ("fp1", "sealed-1")),
        won => panic!("{won:?}"),
    }
    // Over the right set but not at the next generation: a sealer that saw another state.
    assert!(matches!(
        s.publish_tokens("work", Some("fp1"), "fp2", "sealed-2", 3)
            .await
            .unwrap(),
        Publish::Lost(_)
    ));
    // fp1 spent by replica A -> fp2 published; replica B, who also spent fp1, loses.
    assert_eq!(
        s.publish_tokens("work", Some("fp1"), "fp2", "sealed-2", 2)
            .await
            .unwrap(),
        Publish::Won(2)
    );
    match s
        .publish_tokens("work", Some("fp1"), "fp3", "sealed-3", 2)
        .await
        .unwrap()
    {
        Publish::Lost(p) => {
            assert_eq!(p.fp, "fp2");
            assert_eq!(p.generation, 2);
            assert_eq!(p.sealed, "sealed-2");
        }
        won => panic!("{won:?}"),
    }
    // Publishing what is already there (a retry after a lost answer) changes nothing.
    assert!(matches!(
        s.publish_tokens("work", Some("fp1"), "fp2", "sealed-2", 2)
            .await
            .unwrap(),
        Publish::Won(2)
    ));
    let latest = s.tokens("work").await.unwrap().unwrap();
    assert_eq!(
        (
            latest.fp.as_str(),
            latest.generation,
            latest.sealed.as_str()
        ),
        ("fp2", 2, "sealed-2")
    );
    assert_eq!(s.tokens("other").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_is_marked_as_being_spent_once() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let (a, b) = (state(&r, 0).await, state(&r, 0).await);
    assert!(a.mark_spending("work", "fp1", "replica-a").await.unwrap());
    assert!(!b.mark_spending("work", "fp1", "replica-b").await.unwrap());
    assert_eq!(
        b.spend_mark("work", "fp1").await.unwrap().as_deref(),
        Some("replica-a")
    );
    assert!(b.mark_spending("work", "fp2", "replica-b").await.unwrap());
    a.unmark_spending("work", "fp1").await.unwrap();
    assert_eq!(b.spend_mark("work", "fp1").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn cooldowns_only_extend_and_expire_at_their_end() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let s = state(&r, 0).await;
    let now = jiff::Timestamp::now().as_millisecond();
    s.set_cooldown("a", now + 60_000).await.unwrap();
    s.set_cooldown("a", now + 1_000).await.unwrap();
    // b ends in 2 s: long enough to be read back first on a loaded machine.
    s.set_cooldown("b", now + 2_000).await.unwrap();
    let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let got = s.cooldowns(&names).await.unwrap();
    assert_eq!(got.get("a"), Some(&(now + 60_000)));
    assert_eq!(got.get("b"), Some(&(now + 2_000)));
    assert_eq!(got.get("c"), None);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let got = s.cooldowns(&names).await.unwrap();
    assert!(got.contains_key("a") && !got.contains_key("b"), "{got:?}");
    assert!(s.cooldowns(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_newest_usage_snapshot_wins() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let s = state(&r, 0).await;
    assert!(s.put_usage("a", 2_000, r#"{"p":2}"#).await.unwrap());
    assert!(!s.put_usage("a", 1_000, r#"{"p":1}"#).await.unwrap());
    assert_eq!(
        s.usage("a").await.unwrap(),
        Some((2_000, r#"{"p":2}"#.to_string()))
    );
    assert!(s.put_usage("a", 3_000, r#"{"p":3}"#).await.unwrap());
    assert_eq!(s.usage("a").await.unwrap().unwrap().0, 3_000);
    assert_eq!(s.usage("nobody").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn affinity_cursors_and_replicas_are_shared_and_lapse() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let (a, b) = (state(&r, 0).await, state(&r, 0).await);
    // 2 s: long enough to be read back (and listed) first on a loaded machine.
    let short = Duration::from_secs(2);
    a.set_affinity("s1", "work", short).await.unwrap();
    assert_eq!(b.affinity("s1").await.unwrap().as_deref(), Some("work"));
    assert_eq!(a.next_cursor("rr").await.unwrap(), 1);
    assert_eq!(b.next_cursor("rr").await.unwrap(), 2);
    let me = |id: &str| Replica {
        id: id.to_string(),
        address: "127.0.0.1:4319".to_string(),
        heartbeat_ms: 1,
    };
    a.heartbeat(&me("a"), short).await.unwrap();
    b.heartbeat(&me("b"), Duration::from_secs(30))
        .await
        .unwrap();
    let ids: Vec<String> = a
        .replicas()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    tokio::time::sleep(short + Duration::from_millis(300)).await;
    assert_eq!(b.affinity("s1").await.unwrap(), None);
    let ids: Vec<String> = a
        .replicas()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["b"]);
    // Databases are separate pools.
    assert_eq!(state(&r, 1).await.next_cursor("rr").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_redis_is_a_clear_error_without_the_password() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let port = r.port;
    drop(r);
    let err = SharedState::connect(&format!("redis://:hunter2@127.0.0.1:{port}/0"), "cao:")
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(matches!(err, SharedError::Unreachable { .. }), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let bad = SharedState::connect("http://127.0.0.1/", "cao:")
        .await
        .unwrap_err();
    assert!(matches!(bad, SharedError::BadUrl { .. }), "{bad}");
}
