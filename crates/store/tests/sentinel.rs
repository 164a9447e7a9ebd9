//! The Redis store through Sentinel: the whole behaviour suite with the
//! primary found by a Sentinel, and a real failover (primary killed, a
//! replica promoted by three Sentinels) that writes and the subscription
//! survive.

#![allow(clippy::unwrap_used)]

mod suite;

use std::{sync::Arc, time::Duration};

use switchyard_core::{DeploymentState, UnixTime};
use switchyard_store::{
    RedisSettings, RedisStore, ReloadNotice, SharedStore, Store, StoreError, StoreEvent,
};
use switchyard_testkit::{SentinelSet, eventually};

use suite::{id, new};

fn store_at(url: &str) -> RedisStore {
    let mut settings = RedisSettings::new(url, "pulse:railway");
    settings.timeout = Duration::from_millis(500);
    RedisStore::new(&settings).unwrap()
}

/// One Sentinel, no replicas: the suite checks behaviour, not failover.
fn fresh() -> (SharedStore, SentinelSet) {
    let set = SentinelSet::start(0, 1);
    (Arc::new(store_at(&set.url())) as SharedStore, set)
}

store_suite!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_moves_writes_and_the_subscription_to_the_new_primary() {
    let mut set = SentinelSet::start(2, 3);
    let store = store_at(&set.url());
    store.register(new("v1")).await.unwrap();
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    let mut sub = store.subscribe().await.unwrap();
    assert_eq!(sub.next().await, Some(StoreEvent::Resync));
    let old = set.primary_port().unwrap();
    // Both replicas have every write before the primary dies.
    let acked = set.node(old).unwrap().command("WAIT 2 5000");
    assert_eq!(acked.trim(), ":2", "replicas acknowledged");

    let old = set.kill_primary();
    let new_primary = eventually(
        Duration::from_secs(30),
        "the Sentinels to promote a replica",
        || {
            let p = set.promoted_after(old);
            async move { p }
        },
    )
    .await;
    assert_ne!(new_primary, old);

    // Writes go to the new primary as soon as the store asks the
    // Sentinels again: at most a few failed attempts, no restart.
    eventually(
        Duration::from_secs(20),
        "a write after the failover",
        || {
            let store = store.clone();
            async move { store.register(new("v2")).await.ok() }
        },
    )
    .await;
    store.promote(&id("v2"), UnixTime(2.0)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.get("v1").unwrap().state, DeploymentState::Draining);
    assert_eq!(snap.get("v2").unwrap().state, DeploymentState::Active);
    let on_new = set
        .node(new_primary)
        .unwrap()
        .command("EXISTS pulse:railway:active");
    assert_eq!(on_new.trim(), ":1", "the write landed on the new primary");

    // The subscription reconnected to the new primary: a broadcast made
    // there reaches it.
    let notice = ReloadNotice {
        deployment_id: id("v1"),
        reason: "after failover".into(),
        window_ms: 0,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    'followed: loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription did not follow the new primary within 20s"
        );
        if store.publish_reload(&notice).await.is_err() {
            // Poll interval while the store finds the new primary.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        while let Ok(event) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            match event {
                Some(StoreEvent::Reload(n)) if n == notice => break 'followed,
                Some(_) => {}
                None => panic!("subscription ended"),
            }
        }
    }
}

#[tokio::test]
async fn no_reachable_sentinel_is_an_unavailable_error_that_says_so() {
    let dead = switchyard_testkit::free_port();
    let store = store_at(&format!("redis+sentinel://127.0.0.1:{dead}/switchyard"));
    let started = std::time::Instant::now();
    let err = store.snapshot().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("Sentinel"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unknown_primary_name_is_an_unavailable_error_naming_it() {
    let set = SentinelSet::start(0, 1);
    let port = set.sentinel_ports()[0];
    let store = store_at(&format!("redis+sentinel://127.0.0.1:{port}/nosuchname"));
    let err = store.snapshot().await.unwrap_err();
    assert!(err.to_string().contains("nosuchname"), "{err}");
}

#[tokio::test]
async fn a_malformed_sentinel_url_is_refused_up_front() {
    let err = RedisStore::new(&RedisSettings::new("redis+sentinel://h:1", "p")).unwrap_err();
    assert!(err.to_string().contains("primary name"), "{err}");
}
