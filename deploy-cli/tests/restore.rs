//! A Redis that comes back empty (FLUSHALL; a restart without persistence
//! looks the same) must not take routing down, and `switchyard restore`
//! refills it from what a router still routes on.

#![allow(clippy::unwrap_used)]

mod support;

use support::{cli, ok};

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchyard_testkit::{Backend, RedisServer, eventually};
use tokio_tungstenite::tungstenite::Message;

/// (id, state) of every deployment `switchyard status --json` lists.
async fn listed(redis: &str) -> Vec<(String, String)> {
    let out = ok(&cli(redis, &["status", "--json"]).await);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut rows = support::states(&v);
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_store_keeps_routing_and_is_restored_from_a_router() {
    let redis = RedisServer::start();
    let url = redis.url();
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let config = switchyard_router::RouterConfig {
        replica_id: "restore-test".into(),
        reload_interval: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(200),
        lease_ttl: Duration::from_secs(2),
        ..Default::default()
    };
    let r = support::InProcessRouter::start(&url, config).await;
    let router = r.url.clone();
    let metrics_url = r.private.clone();
    let ws_url = format!("{}/ws", router.replacen("http", "ws", 1));
    for (id, backend) in [("v1", &v1), ("v2", &v2)] {
        ok(&cli(
            &url,
            &[
                "deploy",
                "--url",
                &backend.url(),
                "--deployment-id",
                id,
                "--health-path",
                "/",
                "--router-url",
                &router,
            ],
        )
        .await);
    }
    let before = listed(&url).await;
    assert_eq!(
        before,
        vec![
            ("v1".into(), "draining".into()),
            ("v2".into(), "active".into())
        ]
    );

    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let hello = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(hello, Message::text("hello from v2"));
    redis.command("FLUSHALL");

    // A minute of traffic, pinned and unpinned, with the store empty.
    let client = reqwest::Client::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut sent, mut failed) = (0u32, Vec::new());
    while tokio::time::Instant::now() < until {
        for (path, want) in [("/", "v2"), ("/?pulse_deployment=v1", "v1")] {
            sent += 1;
            match client.get(format!("{router}{path}")).send().await {
                Ok(res)
                    if res.status() == 200
                        && res
                            .headers()
                            .get("x-pulse-selected-deployment")
                            .is_some_and(|v| v == want) => {}
                Ok(res) => failed.push(format!("{path}: {}", res.status())),
                Err(e) => failed.push(format!("{path}: {e}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert_eq!(r.metric("switchyard_store_diverged").await, Some(1.0));
    ws.send(Message::text("still open")).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echo, Message::text("still open"));

    // The store is empty, and the CLI says it lost its data rather than
    // showing an empty list: status and deploy name the restore command
    // and the router's private listener.
    let out = cli(&url, &["status"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", support::output(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("lost its data")
            && err.contains(&format!("switchyard restore --from-router {metrics_url}")),
        "{err}"
    );
    let v3 = Backend::start("v3").await;
    let out = cli(
        &url,
        &[
            "deploy",
            "--url",
            &v3.url(),
            "--deployment-id",
            "v3",
            "--health-path",
            "/",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", support::output(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("switchyard restore"));
    // The public port is not where the snapshot is: said so, with where.
    let out = cli(&url, &["restore", "--from-router", &router]).await;
    assert_eq!(out.status.code(), Some(2), "{}", support::output(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("public listener") && err.contains(&metrics_url),
        "{err}"
    );
    let out = ok(&cli(&url, &["restore", "--from-router", &metrics_url]).await);
    assert!(out.contains("restored 2 deployments"), "{out}");
    assert_eq!(listed(&url).await, before);
    eventually(
        Duration::from_secs(10),
        "router to take the restored store",
        || async { (r.metric("switchyard_store_diverged").await == Some(0.0)).then_some(()) },
    )
    .await;
    // A second restore would overwrite: refused, exit 2.
    let again = cli(&url, &["restore", "--from-router", &metrics_url]).await;
    assert_eq!(
        again.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    // Promote works on the restored store.
    ok(&cli(
        &url,
        &[
            "promote",
            "v1",
            "--router-url",
            &router,
            "--health-path",
            "/",
        ],
    )
    .await);
}
