//! Routing rules, end to end through a real router to real backends.

#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use support::*;

#[tokio::test]
async fn unpinned_goes_to_active_and_pins_reach_draining() {
    let (r, _v1, _v2, _s) = two_deployments().await;
    let res = get(r.addr, "/hello", &[]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.deployment(), "v2");
    assert_eq!(res.header("x-pulse-selected-deployment"), Some("v2"));

    let by_query = get(r.addr, "/hello?pulse_deployment=v1&x=1", &[]).await;
    assert_eq!(by_query.deployment(), "v1");
    assert_eq!(by_query.header("x-pulse-selected-deployment"), Some("v1"));
    assert_eq!(
        by_query.json()["query"],
        "pulse_deployment=v1&x=1",
        "query forwarded as sent"
    );

    let by_header = get(r.addr, "/", &[("x-pulse-deployment", "v1")]).await;
    assert_eq!(by_header.deployment(), "v1");

    // Query and header naming the same deployment are one pin; naming two
    // is refused (one request, one pin); empty values count as absent.
    let both = get(
        r.addr,
        "/?pulse_deployment=v1",
        &[("x-pulse-deployment", "v1")],
    )
    .await;
    assert_eq!(both.deployment(), "v1");
    let two = get(
        r.addr,
        "/?pulse_deployment=v2",
        &[("x-pulse-deployment", "v1")],
    )
    .await;
    assert_eq!(two.status, 400);
    let empty = get(r.addr, "/?pulse_deployment=", &[("x-pulse-deployment", "")]).await;
    assert_eq!(empty.deployment(), "v2");
}

#[tokio::test]
async fn stale_affinity_answers() {
    let (r, _v1, _v2, _s) = two_deployments().await;
    for pin in ["gone", "NOT-VALID", "..%2f..", "a/b"] {
        let res = get(
            r.addr,
            &format!("/page?pulse_deployment={pin}"),
            &[("origin", "https://app.example")],
        )
        .await;
        assert_eq!(res.status, 409, "{pin}");
        assert_eq!(res.json(), serde_json::json!({"detail": "stale affinity"}));
        assert_eq!(res.header("x-pulse-stale-affinity"), Some("1"));
        assert_eq!(
            res.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(
            res.header("access-control-expose-headers"),
            Some("x-pulse-stale-affinity")
        );
        assert_eq!(res.header("x-switchyard"), Some("router"));
        // The browser client spreads its reload over this window.
        assert_eq!(res.header("x-switchyard-reload-window-ms"), Some("2000"));
    }

    let preflight = request(
        r.addr,
        "OPTIONS",
        "/api",
        &[
            ("x-pulse-deployment", "gone"),
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-pulse-deployment"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("x-pulse-deployment")
    );

    let loader = get(
        r.addr,
        "/?pulse_deployment=gone",
        &[
            ("x-pulse-client-loader", "1"),
            ("x-pulse-client-loader-location", "/app?fresh=1"),
        ],
    )
    .await;
    assert_eq!(loader.status, 302);
    assert_eq!(loader.header("location"), Some("/app?fresh=1"));
    let script = get(
        r.addr,
        "/?pulse_deployment=gone",
        &[
            ("x-pulse-client-loader", "1"),
            ("x-pulse-client-loader-location", "javascript:alert(1)"),
        ],
    )
    .await;
    assert_eq!(
        script.status, 409,
        "only http(s) URLs and paths are redirect targets"
    );
}

#[tokio::test]
async fn nothing_active_is_404() {
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &[]).await;
    let r = TestRouter::start(test_config(), store).await;
    let unpinned = get(r.addr, "/", &[]).await;
    assert_eq!(unpinned.status, 404);
    assert_eq!(unpinned.json()["detail"], "deployment not found");
    assert_eq!(
        get(r.addr, "/?pulse_deployment=gone", &[]).await.status,
        404
    );
    // A pending deployment is reachable by its pin only.
    assert_eq!(
        get(r.addr, "/?pulse_deployment=v1", &[]).await.deployment(),
        "v1"
    );
}

#[tokio::test]
async fn internal_paths_never_leave_and_health_is_local() {
    let (r, v1, v2, _s) = two_deployments().await;
    for p in [
        "/_pulse/internal/railway/reload",
        "//_pulse/internal/x",
        "/a/../_pulse/internal",
        "/_pulse/%69nternal/railway/sessions",
    ] {
        let res = request(r.addr, "POST", p, &[], Bytes::new()).await;
        assert_eq!(res.status, 404, "{p}");
        assert_eq!(res.header("x-switchyard"), Some("router"));
    }
    for p in ["/_pulse%2finternal/x", "/%2e%2e/_pulse/internal"] {
        assert_eq!(get(r.addr, p, &[]).await.status, 400, "{p}");
    }
    assert_eq!(
        v1.state
            .reload_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(
        v2.state
            .reload_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // The normalized path is what the backend receives.
    assert_eq!(
        get(r.addr, "/a//b/./c/../d", &[]).await.json()["path"],
        "/a/b/d"
    );

    let health = get(r.addr, "/healthz", &[]).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), serde_json::json!({"ok": true}));
}

#[tokio::test]
async fn headers_are_rewritten_for_the_backend() {
    let (r, _v1, _v2, _s) = two_deployments().await;
    let res = get(
        r.addr,
        "/",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("connection", "x-hop"),
            ("x-hop", "secret"),
            ("keep-alive", "timeout=5"),
            ("host", "app.example"),
        ],
    )
    .await;
    let seen = &res.json()["headers"];
    assert_eq!(seen["x-forwarded-for"][0], "203.0.113.9, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"][0], "http");
    assert_eq!(seen["x-forwarded-host"][0], "app.example");
    assert!(seen.get("x-hop").is_none(), "{seen}");
    assert!(seen.get("keep-alive").is_none(), "{seen}");
    let rid = seen["x-request-id"][0].as_str().unwrap().to_string();
    assert_eq!(rid.len(), 32);
    assert_eq!(res.header("x-request-id"), Some(rid.as_str()));

    let kept = get(r.addr, "/", &[("x-request-id", "trace-1")]).await;
    assert_eq!(kept.json()["headers"]["x-request-id"][0], "trace-1");
}

#[tokio::test]
async fn backend_down_is_502_and_slow_is_504() {
    let v1 = Backend::start("v1").await;
    let dead = Backend::start("dead").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1), ("dead", &dead)], &["v1"]).await;
    dead.stop().await;
    let mut config = test_config();
    config.limits.backend_timeout = std::time::Duration::from_millis(300);
    let r = TestRouter::start(config, store).await;

    let started = std::time::Instant::now();
    let res = get(r.addr, "/?pulse_deployment=dead", &[]).await;
    assert_eq!(res.status, 502);
    assert!(
        res.json()["detail"].as_str().unwrap().contains("dead"),
        "{:?}",
        res.body
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));

    let slow = get(r.addr, "/slow?ms=3000", &[]).await;
    assert_eq!(slow.status, 504);
    assert_eq!(slow.header("x-switchyard"), Some("router"));
}

#[tokio::test]
async fn malformed_and_oversized_requests() {
    let (r, _v1, _v2, _s) = two_deployments().await;
    let conflicting = raw(
        r.addr,
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd",
    )
    .await;
    assert!(conflicting.starts_with("HTTP/1.1 400"), "{conflicting}");

    let huge = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let res = raw(r.addr, huge.as_bytes()).await;
    assert!(
        res.starts_with("HTTP/1.1 431"),
        "{}",
        &res[..res.len().min(200)]
    );

    let garbage = raw(r.addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");

    // Both framings (RFC 9112 §6.3, §11.2): refused, never guessed at,
    // and the connection closed, so nothing after it is read.
    let smuggle = raw(r.addr, b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").await;
    assert!(smuggle.starts_with("HTTP/1.1 400"), "{smuggle}");
    assert!(smuggle.contains("x-switchyard: router"), "{smuggle}");
    assert!(smuggle.contains("connection: close"), "{smuggle}");
    assert_eq!(smuggle.matches("HTTP/1.1").count(), 1, "{smuggle}");
}

#[tokio::test]
async fn affinity_cookie_is_opt_in_and_pins() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1), ("v2", &v2)], &["v1", "v2"]).await;
    let mut config = test_config();
    config.names.cookie = Some("pulse_affinity".into());
    let r = TestRouter::start(config, store).await;
    // Set on a document load, not on other requests.
    let first = get(r.addr, "/", &[("sec-fetch-dest", "document")]).await;
    assert_eq!(
        first.header("set-cookie"),
        Some("pulse_affinity=v2; Path=/; HttpOnly; SameSite=Lax")
    );
    assert!(get(r.addr, "/", &[]).await.header("set-cookie").is_none());
    let pinned = get(r.addr, "/", &[("cookie", "theme=dark; pulse_affinity=v1")]).await;
    assert_eq!(pinned.deployment(), "v1");
    assert!(
        pinned.header("set-cookie").is_none(),
        "a pinned response does not re-pin"
    );
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener() {
    let (r, _v1, _v2, _s) = two_deployments().await;
    let sample = |text: &str, series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("{series} missing from {text}"))
    };
    let ok = "switchyard_requests_total{deployment=\"v2\",class=\"2xx\"}";
    let before = sample(
        &String::from_utf8_lossy(&get(r.metrics, "/metrics", &[]).await.body),
        ok,
    );
    get(r.addr, "/", &[]).await;
    get(r.addr, "/status/503", &[]).await;
    let m = get(r.metrics, "/metrics", &[]).await;
    let text = String::from_utf8_lossy(&m.body);
    assert_eq!(sample(&text, ok), before + 1);
    assert_eq!(
        sample(
            &text,
            "switchyard_requests_total{deployment=\"v2\",class=\"5xx\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            "switchyard_request_duration_seconds_count{deployment=\"v2\"}"
        ),
        before + 2
    );
    assert_eq!(sample(&text, "switchyard_store_up"), 1);
    // And never on the public port.
    assert_ne!(get(r.addr, "/metrics", &[]).await.body, m.body);
}

#[tokio::test]
async fn http2_clients_are_served() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    let (r, _v1, _v2, _s) = two_deployments().await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let req = http::Request::post(r.url("/h2?pulse_deployment=v1"))
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.headers()["x-pulse-selected-deployment"], "v1");
    let body: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["deployment"], "v1");
    assert_eq!(body["body_bytes"], 5);
    assert_eq!(body["path"], "/h2");

    // Cookie crumbs (RFC 9113 §8.2.3) reach an HTTP/1.1 backend as one
    // field.
    let req = http::Request::get(r.url("/crumbs"))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = client.request(req).await.unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["headers"]["cookie"], serde_json::json!(["a=1; b=2"]));
}
