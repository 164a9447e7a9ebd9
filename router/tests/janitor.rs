//! The janitor's reload reaching the router: a deployment past its reload
//! deadline has its WebSockets closed with 1012 by every router, and a
//! reconnect with the old pin lands on the active deployment.

#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use support::*;
use switchyard_core::UnixTime;
use switchyard_retention::JanitorConfig;
use switchyard_store::{NewDeployment, RedisSettings, RedisStore, SharedStore};
use switchyard_testkit::{Backend, RedisServer, eventually};

/// Registers `name` and makes it active `ago` seconds in the past.
async fn active_since(store: &SharedStore, name: &str, url: String, ago: f64) {
    let then = UnixTime(UnixTime::now().0 - ago);
    let new = NewDeployment {
        id: id(name),
        service_name: name.into(),
        backend_url: url,
        service_id: None,
        state_epoch: None,
        now: then,
    };
    store.register(new).await.unwrap();
    store.promote(&id(name), then).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_janitor_reload_closes_the_routers_websockets_with_1012() {
    let redis = RedisServer::start();
    let store: SharedStore =
        Arc::new(RedisStore::new(&RedisSettings::new(redis.url(), "j")).unwrap());
    let (v1, v2) = (Backend::start("v1").await, Backend::start("v2").await);
    // v1 has drained for an hour: past the default 30 min reload deadline.
    active_since(&store, "v1", v1.url(), 7200.0).await;
    active_since(&store, "v2", v2.url(), 3600.0).await;
    let r = TestRouter::start(test_config(), store.clone()).await;
    let addr = r.addr;

    let (mut ws, _) = eventually(
        Duration::from_secs(10),
        "router to serve v1",
        || async move {
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws?pulse_deployment=v1"))
                .await
                .ok()
        },
    )
    .await;
    eventually(Duration::from_secs(5), "the lease to be reported", || {
        let s = store.clone();
        async move {
            s.live_leases()
                .await
                .ok()
                .filter(|l| l.get(&id("v1")) == Some(&1))
        }
    })
    .await;

    let config = JanitorConfig {
        reload_grace: Duration::from_millis(50),
        reload_window: Duration::ZERO,
        probe_timeout: Duration::from_secs(2),
        ..JanitorConfig::with_store(&redis.url(), "j")
    };
    let platform = switchyard_retention::store_only_platform(&config);
    let report = switchyard_retention::run(&config, &store, &platform)
        .await
        .unwrap();
    assert_eq!(report.reloaded, vec![id("v1")], "{}", report.human());
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1012);
    assert_eq!(close.reason.as_str(), "deployment retired");
    eventually(
        Duration::from_secs(5),
        "a reconnect pinned to v1 to land on v2",
        || async move {
            let (_ws, res) = tokio_tungstenite::connect_async(format!(
                "ws://{addr}/ws?pulse_deployment=v1&pulse_reload_on_stale_affinity=1"
            ))
            .await
            .ok()?;
            (res.headers()["x-pulse-selected-deployment"] == "v2").then_some(())
        },
    )
    .await;
}
