//! State-compatibility epochs: promotion never moves unpinned traffic to an
//! older state epoch without --force, and retire-below-epoch revokes every
//! older build in one step.

#![allow(clippy::unwrap_used)]

mod support;

use support::{cli, output as text};

use switchyard_testkit::{Backend, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_guard_promotion_and_retire_old_builds_at_once() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (router, _task) = support::spawn_router(&url).await;
    let backends = [Backend::start("v1").await, Backend::start("v2").await];
    for (i, (name, epoch)) in [("v1", "1"), ("v2", "2")].into_iter().enumerate() {
        let b = backends[i].url();
        let out = cli(
            &url,
            &[
                "deploy",
                "--url",
                &b,
                "--deployment-id",
                name,
                "--state-epoch",
                epoch,
                "--health-path",
                "/",
                "--router-url",
                &router,
            ],
        )
        .await;
        assert!(out.status.success(), "{}", text(&out));
    }
    let status: serde_json::Value =
        serde_json::from_slice(&cli(&url, &["status", "--json"]).await.stdout).unwrap();
    let epochs: Vec<(String, u64)> = status["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["deployment_id"].as_str().unwrap().into(),
                d["state_epoch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        epochs.contains(&("v1".into(), 1)) && epochs.contains(&("v2".into(), 2)),
        "{epochs:?}"
    );

    // Down an epoch: refused, saying why, unless forced.
    let out = cli(&url, &["promote", "v1"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("state epoch 1, below the active v2's 2"),
        "{}",
        text(&out)
    );
    let out = cli(&url, &["rollback"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = cli(&url, &["promote", "v1", "--percent", "10"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a rollout share is unpinned traffic too"
    );
    let out = cli(&url, &["promote", "v1", "--force"]).await;
    assert!(out.status.success(), "{}", text(&out));
    // Up an epoch needs nothing.
    let out = cli(&url, &["promote", "v2"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // After the contract phase: everything below 2 goes in one step.
    let out = cli(&url, &["retire-below-epoch", "2", "--yes", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["revoked"], serde_json::json!(["v1"]));
    let stale = format!("{router}/?pulse_deployment=v1");
    switchyard_testkit::eventually(
        std::time::Duration::from_secs(10),
        "v1's pins to go stale",
        || {
            let stale = stale.clone();
            async move { (reqwest::get(&stale).await.ok()?.status() == 409).then_some(()) }
        },
    )
    .await;
    // Refused while the active one is itself below.
    let out = cli(&url, &["retire-below-epoch", "3", "--yes"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("active deployment v2 is below state epoch 3"),
        "{}",
        text(&out)
    );
}
