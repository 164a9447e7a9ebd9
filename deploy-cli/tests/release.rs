//! Release control across several router instances sharing one Redis:
//! preview, sticky gradual rollout, watched rollout, rollback, revoke.

#![allow(clippy::unwrap_used)]

mod support;

use support::{cli, ok};

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use switchyard_testkit::{Backend, RedisServer, eventually};

fn router_config(replica: &str) -> switchyard_router::RouterConfig {
    switchyard_router::RouterConfig {
        replica_id: replica.into(),
        rollout_key_header: Some("x-user".into()),
        heartbeat_interval: Duration::from_millis(100),
        lease_ttl: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Which deployment answered, through `router`, for user `key`.
async fn served_by(client: &reqwest::Client, router: &str, query: &str, key: &str) -> String {
    let res = client
        .get(format!("{router}/{query}"))
        .header("x-user", key)
        .send()
        .await
        .unwrap();
    res.headers()
        .get("x-pulse-selected-deployment")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

struct Release {
    redis: RedisServer,
    a: String,
    b: String,
    _routers: Vec<tokio::task::JoinHandle<switchyard_router::Exit>>,
    _backends: Vec<Backend>,
    v2: Arc<switchyard_testkit::backend::BackendState>,
}

/// v1 active, v2 registered as a preview, two routers.
async fn release() -> Release {
    let redis = RedisServer::start();
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let (a, ra) = support::spawn_router_with(&redis.url(), router_config("router-a")).await;
    let (b, rb) = support::spawn_router_with(&redis.url(), router_config("router-b")).await;
    let url = redis.url();
    ok(&cli(
        &url,
        &[
            "deploy",
            "--url",
            &v1.url(),
            "--deployment-id",
            "v1",
            "--health-path",
            "/",
            "--router-url",
            &a,
        ],
    )
    .await);
    ok(&cli(
        &url,
        &[
            "deploy",
            "--url",
            &v2.url(),
            "--deployment-id",
            "v2",
            "--health-path",
            "/",
            "--router-url",
            &b,
            "--no-promote",
        ],
    )
    .await);
    let v2_state = v2.state.clone();
    Release {
        redis,
        a,
        b,
        _routers: vec![ra, rb],
        _backends: vec![v1, v2],
        v2: v2_state,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_is_reachable_pinned_and_never_unpinned() {
    let r = release().await;
    let client = reqwest::Client::new();
    for i in 0..200 {
        let router = if i % 2 == 0 { &r.a } else { &r.b };
        assert_eq!(
            served_by(&client, router, "", &format!("user{i}")).await,
            "v1"
        );
    }
    assert_eq!(
        served_by(&client, &r.a, "?pulse_deployment=v2", "u").await,
        "v2"
    );
    assert_eq!(
        served_by(&client, &r.b, "?pulse_deployment=v2", "u").await,
        "v2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_percent_rollout_is_sticky_near_its_share_and_loses_to_pins() {
    let r = release().await;
    ok(&cli(&r.redis.url(), &["promote", "v2", "--percent", "10"]).await);
    let client = reqwest::Client::new();
    let (a, b) = (r.a.clone(), r.b.clone());
    eventually(Duration::from_secs(5), "both routers to split", || {
        let (client, a, b) = (client.clone(), a.clone(), b.clone());
        async move {
            let mut seen = 0;
            for k in 0..100 {
                let key = format!("probe{k}");
                seen += usize::from(served_by(&client, &a, "", &key).await == "v2");
                seen += usize::from(served_by(&client, &b, "", &key).await == "v2");
            }
            (seen > 0).then_some(())
        }
    })
    .await;

    // 10,000 unpinned requests from 1,000 users, alternating routers.
    let mut by_user: HashMap<String, String> = HashMap::new();
    let mut to_v2 = 0usize;
    for i in 0..10_000 {
        let user = format!("user{}", i % 1000);
        let router = if i % 2 == 0 { &r.a } else { &r.b };
        let got = served_by(&client, router, "", &user).await;
        to_v2 += usize::from(got == "v2");
        if let Some(prev) = by_user.insert(user.clone(), got.clone()) {
            assert_eq!(prev, got, "{user} flipped between versions");
        }
    }
    // 10 % of 10,000 with a tolerance of ±4 percentage points.
    assert!((600..=1400).contains(&to_v2), "{to_v2} of 10000 went to v2");
    // Pins beat the split, both ways.
    let on_v2 = by_user
        .iter()
        .find(|(_, v)| *v == "v2")
        .map(|(k, _)| k.clone())
        .unwrap();
    assert_eq!(
        served_by(&client, &r.a, "?pulse_deployment=v1", &on_v2).await,
        "v1"
    );

    // Rollback mid-rollout: every unpinned request is back on v1, on both routers.
    ok(&cli(&r.redis.url(), &["rollback"]).await);
    let (a, b, user) = (r.a.clone(), r.b.clone(), on_v2.clone());
    eventually(
        Duration::from_secs(5),
        "the rollback to reach both routers",
        || {
            let (client, a, b, user) = (client.clone(), a.clone(), b.clone(), user.clone());
            async move {
                (served_by(&client, &a, "", &user).await == "v1"
                    && served_by(&client, &b, "", &user).await == "v1")
                    .then_some(())
            }
        },
    )
    .await;
}

/// Unpinned traffic from many users through router A until stopped.
fn traffic(router: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let _ = client
                .get(format!("{router}/"))
                .header("x-user", format!("u{}", i % 500))
                .send()
                .await;
            i += 1;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_rolls_back_a_failing_release_by_itself() {
    let r = release().await;
    r.v2.fail_status.store(503, Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(r.a.clone(), stop.clone());
    let out = cli(
        &r.redis.url(),
        &[
            "promote",
            "v2",
            "--watch",
            "--steps",
            "25,50,100",
            "--step-interval",
            "10s",
            "--max-5xx-ratio",
            "0.2",
            "--min-requests",
            "20",
        ],
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rolled back: v2 answered") && err.contains("at 25%"),
        "{err}"
    );
    let list: serde_json::Value =
        serde_json::from_slice(&cli(&r.redis.url(), &["list", "--json"]).await.stdout).unwrap();
    assert_eq!(list["active"], "v1");
    assert!(
        list["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["rollout_percent"].is_null())
    );
}

/// About four requests a second: too few for a step to judge quickly.
fn trickle(router: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) && i < 400 {
            let _ = client
                .get(format!("{router}/"))
                .header("x-user", format!("u{}", i % 500))
                .send()
                .await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_never_passes_a_step_without_enough_requests() {
    let r = release().await;
    r.v2.fail_status.store(503, Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let load = trickle(r.a.clone(), stop.clone());
    let out = cli(
        &r.redis.url(),
        &[
            "promote",
            "v2",
            "--watch",
            "--steps",
            "25,100",
            "--step-interval",
            "1s",
            "--step-deadline",
            "3s",
            "--min-requests",
            "20",
        ],
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rolled back") && err.contains("fewer than the 20 needed"),
        "{err}"
    );
    let list: serde_json::Value =
        serde_json::from_slice(&cli(&r.redis.url(), &["list", "--json"]).await.stdout).unwrap();
    assert_eq!(
        list["active"], "v1",
        "the failing candidate never became active"
    );
    assert!(
        list["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["rollout_percent"].is_null())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_completes_a_healthy_release() {
    let r = release().await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(r.a.clone(), stop.clone());
    let out = cli(
        &r.redis.url(),
        &[
            "promote",
            "v2",
            "--watch",
            "--steps",
            "50",
            "--step-interval",
            "1s",
            "--router-url",
            &r.b,
        ],
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    ok(&out);
    let list: serde_json::Value =
        serde_json::from_slice(&cli(&r.redis.url(), &["list", "--json"]).await.stdout).unwrap();
    assert_eq!(list["active"], "v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_closes_sockets_on_every_router_and_stales_pins() {
    let r = release().await;
    let mut sockets = Vec::new();
    for router in [&r.a, &r.b] {
        let ws_url = format!(
            "{}/ws?pulse_deployment=v1",
            router.replace("http://", "ws://")
        );
        let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        sockets.push(ws);
    }
    ok(&cli(
        &r.redis.url(),
        &["revoke", "v1", "--promote", "v2", "--yes"],
    )
    .await);
    for mut ws in sockets {
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap()
            {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                    break u16::from(f.code);
                }
                Some(Ok(_)) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        };
        assert_eq!(code, 1012);
    }
    let client = reqwest::Client::new();
    for router in [&r.a, &r.b] {
        let res = client
            .get(format!("{router}/?pulse_deployment=v1"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 409);
        assert_eq!(res.headers()["x-pulse-stale-affinity"], "1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_promotion_check_fails_clearly_when_a_replica_is_stuck() {
    let r = release().await;
    // A replica reading a store that stopped changing just before the
    // promotion: it knows v2 as a pending preview, with v1 active.
    let stale = RedisServer::start();
    let v1 = Backend::start("v1-copy").await;
    let v2_url = r._backends[1].url();
    ok(&cli(
        &stale.url(),
        &[
            "deploy",
            "--url",
            &v1.url(),
            "--deployment-id",
            "v1",
            "--health-path",
            "/",
        ],
    )
    .await);
    ok(&cli(
        &stale.url(),
        &[
            "deploy",
            "--url",
            &v2_url,
            "--deployment-id",
            "v2",
            "--health-path",
            "/",
            "--no-promote",
        ],
    )
    .await);
    let (stuck, _task) =
        support::spawn_router_with(&stale.url(), router_config("router-stuck")).await;
    let out = cli(
        &r.redis.url(),
        &[
            "promote",
            "v2",
            "--router-url",
            &stuck,
            "--timeout",
            "3s",
            "--health-path",
            "/",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not serve v2") && err.contains("stuck on an old snapshot"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_is_refused_when_the_pinned_health_check_fails() {
    let r = release().await;
    r.v2.fail_status.store(500, Ordering::SeqCst);
    let out = cli(
        &r.redis.url(),
        &[
            "promote",
            "v2",
            "--router-url",
            &r.a,
            "--health-path",
            "/",
            "--timeout",
            "1s",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed its health check") && err.contains("nothing was promoted"),
        "{err}"
    );
    let list: serde_json::Value =
        serde_json::from_slice(&cli(&r.redis.url(), &["list", "--json"]).await.stdout).unwrap();
    assert_eq!(list["active"], "v1");
}
