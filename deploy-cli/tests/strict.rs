//! Strict mode: signed, expiring pins through a real router on a real
//! Redis, with the CLI deploying, minting preview links and checking.

#![allow(clippy::unwrap_used)]

mod support;

use std::{process::Output, time::Duration};

use support::ok;

use switchyard_core::{DeploymentId, UnixTime, pin::PinKeys};
use switchyard_testkit::{Backend, RedisServer, eventually};

const SECRET: &str = "0123456789abcdef0123456789abcdef-current";
const OLD: &str = "fedcba9876543210fedcba9876543210-previous";

fn id(s: &str) -> DeploymentId {
    DeploymentId::new(s).unwrap()
}

fn keys(secret: &str) -> PinKeys {
    PinKeys::new(secret.as_bytes()).unwrap()
}

/// The CLI as an operator of a strict stack runs it: with the routers'
/// secret (`strict` false: a stack whose routers take bare ids).
async fn cli_as(strict: bool, redis: &str, args: &[&str]) -> Output {
    let env: &[(&str, &str)] = if strict {
        &[("SWITCHYARD_PIN_SECRET", SECRET)]
    } else {
        &[]
    };
    support::cli_env(redis, env, args).await
}

async fn cli(redis: &str, args: &[&str]) -> Output {
    cli_as(true, redis, args).await
}

struct Strict {
    redis: RedisServer,
    router: String,
    _task: tokio::task::JoinHandle<switchyard_router::Exit>,
    _backends: Vec<Backend>,
}

/// v1 draining, v2 active, v3 a preview, behind a router with `pins`.
async fn strict(pins: switchyard_router::config::Pins) -> Strict {
    let redis = RedisServer::start();
    let config = switchyard_router::RouterConfig {
        replica_id: "strict".into(),
        pins,
        reload_interval: Duration::from_millis(300),
        ..Default::default()
    };
    let strict = config.pins.keys.is_some();
    let (router, task) = support::spawn_router_with(&redis.url(), config).await;
    let mut backends = Vec::new();
    for (name, promote) in [("v1", true), ("v2", true), ("v3", false)] {
        let b = Backend::start(name).await;
        let url = b.url();
        let mut args = vec![
            "deploy",
            "--url",
            &url,
            "--deployment-id",
            name,
            "--health-path",
            "/",
            "--router-url",
            &router,
        ];
        if !promote {
            args.push("--no-promote");
        }
        ok(&cli_as(strict, &redis.url(), &args).await);
        backends.push(b);
    }
    Strict {
        redis,
        router,
        _task: task,
        _backends: backends,
    }
}

fn pins(keys: Option<PinKeys>) -> switchyard_router::config::Pins {
    switchyard_router::config::Pins {
        keys,
        previous_grace: Duration::from_secs(3600),
        ttl: Duration::from_secs(3600),
        max_age: None,
    }
}

/// (status, deployment that answered, whether the router answered itself)
async fn pinned(router: &str, pin: &str) -> (u16, String, bool) {
    let res = reqwest::Client::new()
        .get(format!("{router}/"))
        .header("x-pulse-deployment", pin)
        .send()
        .await
        .unwrap();
    let header = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    (
        res.status().as_u16(),
        header("x-pulse-selected-deployment"),
        header("x-switchyard") == "router",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_tokens_reach_a_backend() {
    let s = strict(pins(Some(keys(SECRET)))).await;
    let now = UnixTime::now();
    let hour = Duration::from_secs(3600);
    // The router labels the page with a token it will take back.
    let res = reqwest::get(format!("{}/", s.router)).await.unwrap();
    let label = res.headers()["server-timing"].to_str().unwrap().to_string();
    let token = label
        .split("switchyard-pin;desc=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    assert!(token.starts_with("v2."), "{label}");
    assert_eq!(pinned(&s.router, &token).await, (200, "v2".into(), false));
    assert_eq!(
        pinned(&s.router, &keys(SECRET).mint(&id("v1"), now, hour))
            .await
            .0,
        200
    );

    let forged = keys(OLD).mint(&id("v1"), now, hour);
    let expired = keys(SECRET).mint(&id("v1"), UnixTime(now.0 - 120.0), Duration::from_secs(60));
    let moved = token.replacen("v2.", "v1.", 1);
    for pin in [
        "v1",
        forged.as_str(),
        expired.as_str(),
        moved.as_str(),
        "v1.999.x",
    ] {
        let (status, by, router_said) = pinned(&s.router, pin).await;
        assert_eq!(
            (status, router_said),
            (409, true),
            "{pin}: answered {status} by {by:?}"
        );
        assert_eq!(by, "", "{pin} reached a backend");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_ids_are_refused_only_in_strict_mode() {
    let s = strict(pins(None)).await;
    assert_eq!(pinned(&s.router, "v1").await, (200, "v1".into(), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_secret_works_only_through_its_grace() {
    let grace_ends = UnixTime(UnixTime::now().0 + 3.0);
    let rotated = keys(SECRET)
        .with_previous(OLD.as_bytes(), grace_ends)
        .unwrap();
    // The grace the routers anchor to the rotation they record.
    let mut with_grace = pins(Some(rotated));
    with_grace.previous_grace = Duration::from_secs(3);
    let s = strict(with_grace).await;
    let old_token = keys(OLD).mint(&id("v1"), UnixTime::now(), Duration::from_secs(3600));
    assert_eq!(
        pinned(&s.router, &old_token).await.0,
        200,
        "inside the grace"
    );
    let router = s.router.clone();
    eventually(Duration::from_secs(10), "the grace to end", || {
        let (router, t) = (router.clone(), old_token.clone());
        async move { (pinned(&router, &t).await.0 == 409).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_opens_only_through_its_link() {
    let s = strict(pins(Some(keys(SECRET)))).await;
    assert_eq!(
        pinned(&s.router, "v3").await.0,
        409,
        "its id alone does not open it"
    );
    let out = ok(&cli(
        &s.redis.url(),
        &[
            "preview-url",
            "v3",
            "--ttl",
            "10m",
            "--router-url",
            &s.router,
            "--json",
        ],
    )
    .await);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["signed"], true);
    let url = v["url"].as_str().unwrap();
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-pulse-selected-deployment"], "v3");
    // Unpinned traffic never lands there.
    let res = reqwest::get(format!("{}/", s.router)).await.unwrap();
    assert_eq!(res.headers()["x-pulse-selected-deployment"], "v2");
    // Links to what does not exist, or to a non-origin router, are refused.
    let bad = cli(
        &s.redis.url(),
        &["preview-url", "v9", "--router-url", &s.router],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    let bad = cli(
        &s.redis.url(),
        &[
            "preview-url",
            "v3",
            "--router-url",
            "http://example.com/app",
        ],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--router-url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maximum_pin_age_turns_a_draining_pin_stale_on_time() {
    let mut p = pins(Some(keys(SECRET)));
    p.max_age = Some(Duration::from_secs(2));
    let s = strict(p).await;
    let token = keys(SECRET).mint(&id("v1"), UnixTime::now(), Duration::from_secs(3600));
    let router = s.router.clone();
    eventually(Duration::from_secs(10), "v1's pins to go stale", || {
        let (router, t) = (router.clone(), token.clone());
        async move { (pinned(&router, &t).await.0 == 409).then_some(()) }
    })
    .await;
    // The active deployment's pins are not affected.
    let v2 = keys(SECRET).mint(&id("v2"), UnixTime::now(), Duration::from_secs(3600));
    assert_eq!(pinned(&s.router, &v2).await.0, 200);
    // `status` shows the cut-off the routers run with.
    let out = cli(&s.redis.url(), &["status"]).await;
    let text = support::ok(&out);
    assert!(
        text.contains("pins: signed tokens valid") && text.contains("draining over 2s are stale"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_routers_without_their_secret_are_named_at_once_and_previews_get_a_signed_link() {
    let s = strict(pins(Some(keys(SECRET)))).await;
    // The routers publish that they are strict (on their heartbeat).
    switchyard_testkit::eventually(Duration::from_secs(10), "the pin policy", || async {
        let out = cli(&s.redis.url(), &["status", "--json"]).await;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["router_pins"]["strict"] == true).then_some(())
    })
    .await;
    let v4 = Backend::start("v4").await;
    let url = v4.url();
    let args = [
        "deploy",
        "--url",
        &url,
        "--deployment-id",
        "v4",
        "--health-path",
        "/",
        "--router-url",
        &s.router,
        "--no-promote",
    ];
    let started = std::time::Instant::now();
    let without = cli_as(false, &s.redis.url(), &args).await;
    assert_eq!(without.status.code(), Some(2));
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(
        err.contains("strict mode") && err.contains("SWITCHYARD_PIN_SECRET"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "at once, not after the timeout"
    );

    let with = ok(&cli(&s.redis.url(), &args).await);
    let link = with
        .split_whitespace()
        .find(|w| w.contains("?pulse_deployment="))
        .unwrap_or_else(|| panic!("no link in {with}"))
        .trim_end_matches(';')
        .to_string();
    let res = reqwest::get(&link).await.unwrap();
    assert_eq!(res.status(), 200, "{link}");
    assert_eq!(res.headers()["x-pulse-selected-deployment"], "v4");
}
