//! The behavioural suite against a real redis-server, plus what only a
//! networked store can do: go away and come back.

#![allow(clippy::unwrap_used)]

mod suite;

use std::{sync::Arc, time::Duration};

use switchyard_core::{DeploymentState, UnixTime};
use switchyard_store::{RedisSettings, RedisStore, SharedStore, Store, StoreError, StoreEvent};
use switchyard_testkit::{RedisServer, eventually};

use suite::{id, new};

fn store_on(server: &RedisServer, prefix: &str) -> RedisStore {
    let mut settings = RedisSettings::new(server.url(), prefix);
    settings.timeout = Duration::from_millis(500);
    RedisStore::new(&settings).unwrap()
}

fn fresh() -> (SharedStore, RedisServer) {
    let server = RedisServer::start();
    (
        Arc::new(store_on(&server, "pulse:railway")) as SharedStore,
        server,
    )
}

store_suite!(fresh());

#[tokio::test]
async fn records_are_readable_with_pulse_railway_key_names() {
    let server = RedisServer::start();
    let store = store_on(&server, "pulse:railway");
    store.register(new("prod-abc123")).await.unwrap();
    store
        .promote(&id("prod-abc123"), UnixTime(1763891234.5))
        .await
        .unwrap();
    assert!(
        server
            .command("GET pulse:railway:active")
            .contains("prod-abc123")
    );
    let raw = server.command("GET pulse:railway:deployment:prod-abc123");
    for field in [
        "\"deployment_id\":\"prod-abc123\"",
        "\"state\":\"active\"",
        "\"service_name\":\"svc-prod-abc123\"",
    ] {
        assert!(raw.contains(field), "{field} missing from {raw}");
    }
}

#[tokio::test]
async fn prefixes_isolate_stacks() {
    let server = RedisServer::start();
    let a = store_on(&server, "team-a");
    let b = store_on(&server, "team-b");
    a.register(new("v1")).await.unwrap();
    assert!(b.snapshot().await.unwrap().deployments.is_empty());
    b.register(new("v1")).await.unwrap();
}

#[tokio::test]
async fn an_unreadable_record_is_skipped_not_fatal() {
    let server = RedisServer::start();
    let store = store_on(&server, "p");
    store.register(new("good")).await.unwrap();
    server.command("SADD p:deployments bad");
    server.command("SET p:deployment:bad {not-json");
    let snap = store.snapshot().await.unwrap();
    assert!(snap.get("good").is_some());
    assert_eq!(snap.deployments.len(), 1);
}

#[tokio::test]
async fn rediss_urls_connect_over_tls() {
    let server = RedisServer::start_tls();
    assert!(server.url().starts_with("rediss://"));
    let store = store_on(&server, "tls");
    store.register(new("v1")).await.unwrap();
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    assert_eq!(store.snapshot().await.unwrap().active, Some(id("v1")));
    let mut sub = store.subscribe().await.unwrap();
    assert_eq!(
        sub.next().await,
        Some(StoreEvent::Resync),
        "pub/sub over TLS too"
    );
}

#[tokio::test]
async fn a_bad_url_is_a_clear_error() {
    let err = RedisStore::new(&RedisSettings::new("http://nope", "p")).unwrap_err();
    assert!(err.to_string().contains("Redis URL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_gives_errors_then_recovers() {
    let mut server = RedisServer::start();
    let store = store_on(&server, "p");
    store.register(new("v1")).await.unwrap();
    let mut sub = store.subscribe().await.unwrap();
    assert_eq!(sub.next().await, Some(StoreEvent::Resync));

    server.stop();
    let started = std::time::Instant::now();
    let err = store.snapshot().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "errors promptly, took {:?}",
        started.elapsed()
    );
    assert!(store.promote(&id("v1"), UnixTime(1.0)).await.is_err());
    assert!(
        store
            .acquire_lock("janitor", Duration::from_secs(1))
            .await
            .is_err()
    );
    let lost = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap();
    assert!(
        matches!(lost, Some(StoreEvent::Disconnected { .. })),
        "{lost:?}"
    );

    server.restart();
    // The same handle reconnects by itself; the new server is empty.
    eventually(Duration::from_secs(10), "store to reconnect", || {
        let store = store.clone();
        async move { store.snapshot().await.ok() }
    })
    .await;
    store.register(new("v2")).await.unwrap();
    store.promote(&id("v2"), UnixTime(2.0)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.get("v2").unwrap().state, DeploymentState::Active);
    // The subscription comes back too, announcing a resync.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
        {
            Some(StoreEvent::Resync) => break,
            Some(StoreEvent::Disconnected { .. }) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The subscription's liveness ping gets `["pong", ""]` on RESP2 and
/// `PONG` on RESP3; either way one connection lasts, through many pings,
/// and carries every broadcast.
async fn subscription_survives_pings(protocol: &str) {
    let server = RedisServer::start();
    let mut settings = RedisSettings::new(format!("{}{protocol}", server.url()), "pulse:railway");
    // Pings every second (twice the timeout).
    settings.timeout = Duration::from_millis(500);
    let store = RedisStore::new(&settings).unwrap();
    let mut sub = store.subscribe().await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap(),
        Some(StoreEvent::Resync)
    ));
    let client_id = |server: &RedisServer| {
        let list = server.command("CLIENT LIST TYPE pubsub");
        list.split_whitespace()
            .find_map(|f| f.strip_prefix("id=").map(str::to_string))
            .unwrap_or_default()
    };
    let first = client_id(&server);
    assert!(!first.is_empty(), "no pubsub client");

    let sent = 120u32;
    let publisher = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..sent {
                let notice = switchyard_store::ReloadNotice {
                    deployment_id: id("v1"),
                    reason: format!("n{n}"),
                    window_ms: 0,
                };
                store.publish_reload(&notice).await.unwrap();
                // Spread over about six seconds: six pings.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut received = 0u32;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while received < sent {
        let ev = tokio::time::timeout_at(deadline, sub.next())
            .await
            .expect("every broadcast arrives in time")
            .expect("subscription open");
        match ev {
            StoreEvent::Reload(_) => received += 1,
            other => panic!("the subscription dropped or resynced: {other:?}"),
        }
    }
    publisher.await.unwrap();
    assert_eq!(received, sent);
    assert_eq!(
        client_id(&server),
        first,
        "one subscription connection throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_survives_pings_on_resp2() {
    subscription_survives_pings("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_survives_pings_on_resp3() {
    subscription_survives_pings("?protocol=resp3").await;
}

#[tokio::test]
async fn a_flushed_store_can_be_restored_and_refuses_a_second_restore() {
    let server = RedisServer::start();
    let store = store_on(&server, "pulse:railway");
    for d in ["v1", "v2"] {
        store.register(new(d)).await.unwrap();
    }
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    store.promote(&id("v2"), UnixTime(2.0)).await.unwrap();
    let held = store.snapshot().await.unwrap();
    server.command("FLUSHALL");
    assert_eq!(store.snapshot().await.unwrap().version, 0);
    let version = store.restore(&held).await.unwrap();
    assert!(version > held.version);
    let back = store.snapshot().await.unwrap();
    assert_eq!(back.active, held.active);
    assert_eq!(back.deployments, held.deployments);
    assert!(matches!(
        store.restore(&held).await.unwrap_err(),
        StoreError::NotEmpty(_)
    ));
}
