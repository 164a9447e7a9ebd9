//! Stale pages and caches: asset fallthrough to older live deployments,
//! cache-safe pinning (Vary, no cookie on publicly cacheable answers).

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::Ordering::SeqCst;

use bytes::Bytes;
use support::*;

/// v1 (older, draining) and v2 (active), each with its own asset set.
async fn two_builds(
    config: switchyard_router::RouterConfig,
) -> (TestRouter, Backend, Backend, switchyard_store::SharedStore) {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    // Registered later: newer.
    deploy(&store, &[("v2", &v2)], &["v2"]).await;
    let r = TestRouter::start(config, store.clone()).await;
    (r, v1, v2, store)
}

fn hits(b: &Backend) -> u64 {
    b.state.asset_requests.load(SeqCst)
}

#[tokio::test]
async fn an_old_documents_chunk_arrives_from_the_build_that_has_it() {
    let (r, v1, v2, _s) = two_builds(test_config()).await;
    let res = get(r.addr, "/assets/v1-app.3f9a.js", &[]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, Bytes::from("v1-app.3f9a.js from v1"));
    // An anonymous client learns neither the old build's id nor a pin to it.
    assert_eq!(res.header("x-pulse-selected-deployment"), None);
    assert!(
        res.headers
            .get_all("server-timing")
            .iter()
            .all(|v| !v.to_str().unwrap().contains("v1")),
        "{:?}",
        res.headers
    );
    assert_eq!(
        res.header("x-switchyard-fell-through"),
        Some("v2"),
        "names the one that lacked it"
    );
    assert_eq!((hits(&v2), hits(&v1)), (1, 1), "one extra round trip");
    // The active build's own chunk is served directly.
    let res = get(r.addr, "/assets/v2-app.js", &[]).await;
    assert_eq!(res.header("x-pulse-selected-deployment"), Some("v2"));
    assert_eq!(res.header("x-switchyard-fell-through"), None);
    // Counted per deployment.
    let metrics = String::from_utf8_lossy(&get(r.metrics, "/metrics", &[]).await.body).into_owned();
    assert!(
        metrics.contains("switchyard_asset_fallthrough_total{deployment=\"v1\"} 1"),
        "{metrics}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn a_chunk_nobody_has_is_404_after_exactly_the_bounded_tries() {
    let v = [
        Backend::start("v1").await,
        Backend::start("v2").await,
        Backend::start("v3").await,
        Backend::start("v4").await,
    ];
    let store = memory_store();
    for (name, b) in ["v1", "v2", "v3", "v4"].iter().zip(&v) {
        deploy(&store, &[(name, b)], &[name]).await;
    }
    let r = TestRouter::start(test_config(), store).await;
    let res = get(r.addr, "/assets/v0-gone.js", &[]).await;
    assert_eq!(res.status, 404);
    // The active v4, then the two newest others (default tries 2): v3, v2.
    let counts: Vec<u64> = v.iter().map(hits).collect();
    assert_eq!(counts, vec![0, 1, 1, 1]);
    r.shutdown().await;
}

#[tokio::test]
async fn post_pinned_and_non_asset_requests_never_fall_through() {
    let (r, v1, v2, _s) = two_builds(test_config()).await;
    let post = request(
        r.addr,
        "POST",
        "/assets/v1-app.js",
        &[],
        Bytes::from_static(b"x"),
    )
    .await;
    assert_eq!(post.status, 404);
    let pinned = get(r.addr, "/assets/v1-app.js", &[("x-pulse-deployment", "v2")]).await;
    assert_eq!(pinned.status, 404);
    let other = get(r.addr, "/static/v1-app.js", &[]).await;
    assert_ne!(other.header("x-switchyard-fell-through"), Some("v2"));
    assert_eq!(hits(&v1), 0, "v1 was never asked");
    assert_eq!(hits(&v2), 2);
    r.shutdown().await;
}

#[tokio::test]
async fn a_revoked_deployment_is_never_tried_and_fallthrough_can_be_off() {
    let (r, v1, _v2, store) = two_builds(test_config()).await;
    store
        .revoke(&id("v1"), None, switchyard_core::UnixTime::now())
        .await
        .unwrap();
    let addr = r.addr;
    eventually(std::time::Duration::from_secs(5), "revoke to reach the router", || async move {
        (get(addr, "/?pulse_deployment=v1", &[]).await.status == 409).then_some(())
    })
    .await;
    assert_eq!(get(r.addr, "/assets/v1-app.js", &[]).await.status, 404);
    assert_eq!(hits(&v1), 0);
    r.shutdown().await;

    let mut off = test_config();
    off.assets.prefixes.clear();
    let (r, v1, _v2, _s) = two_builds(off).await;
    assert_eq!(get(r.addr, "/assets/v1-app.js", &[]).await.status, 404);
    assert_eq!(hits(&v1), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn responses_say_what_they_vary_on_and_public_ones_get_no_cookie() {
    let mut config = test_config();
    config.names.cookie = Some("sy_pin".into());
    let (r, _v1, v2, _s) = two_builds(config).await;
    let doc = [("sec-fetch-dest", "document")];
    let res = get(r.addr, "/", &doc).await;
    assert_eq!(res.header("vary"), Some("x-pulse-deployment, Cookie"));
    assert!(res.header("set-cookie").unwrap().starts_with("sy_pin=v2"));
    // Not on fetches or images, not when pinned by header.
    for h in [
        [("sec-fetch-dest", "empty")],
        [("sec-fetch-dest", "image")],
        [("x-pulse-deployment", "v2")],
    ] {
        assert_eq!(
            get(r.addr, "/", &h).await.header("set-cookie"),
            None,
            "{h:?}"
        );
    }
    // A CDN may store it: no cookie, or the CDN would pin everyone.
    *v2.state.cache_control.lock().unwrap() = Some("public, max-age=60".into());
    assert_eq!(get(r.addr, "/", &doc).await.header("set-cookie"), None);
    *v2.state.cache_control.lock().unwrap() = Some("max-age=0, s-maxage=300".into());
    assert_eq!(get(r.addr, "/", &doc).await.header("set-cookie"), None);
    *v2.state.cache_control.lock().unwrap() = Some("private, max-age=60".into());
    assert!(get(r.addr, "/", &doc).await.header("set-cookie").is_some());
    // A document load with a cookie for a revoked deployment is served.
    let stale = get(
        r.addr,
        "/",
        &[("sec-fetch-dest", "document"), ("cookie", "sy_pin=gone")],
    )
    .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.deployment(), "v2");
    r.shutdown().await;
}
