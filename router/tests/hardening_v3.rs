//! The third attack run's findings, over real sockets: fallthrough that
//! honours every pin policy and reuses its connections, tokens that never
//! outlive themselves, every spelling of the pin, the internal block
//! against case and path parameters, forwarding headers under one trust
//! rule, and loader redirects that cannot leave the site.

#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::atomic::Ordering::SeqCst, time::Duration};

use support::*;
use switchyard_core::{UnixTime, pin::PinKeys};
use tokio::net::TcpListener;

/// v1 (older, draining) and v2 (active), v1 registered first.
async fn two_builds(
    config: switchyard_router::RouterConfig,
    v1_url: String,
    v2_url: String,
) -> (TestRouter, switchyard_store::SharedStore) {
    let store = memory_store();
    active_at(&store, "v1", v1_url).await;
    active_at(&store, "v2", v2_url).await;
    let r = TestRouter::start(config, store.clone()).await;
    (r, store)
}

#[tokio::test]
async fn fallthrough_reuses_its_connections() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let (u1, c1) = counted(&v1).await;
    let (u2, c2) = counted(&v2).await;
    let (r, _s) = two_builds(test_config(), u1, u2).await;
    for _ in 0..30 {
        let res = get(r.addr, "/assets/v1-app.js", &[]).await;
        assert_eq!(res.status, 200);
        let miss = get(r.addr, "/assets/nobody-has-this.js", &[]).await;
        assert_eq!(miss.status, 404);
    }
    // 60 asset misses on v2 and 30 more on v1: the 404s were read, their
    // connections reused (a few, not one per step).
    let (n1, n2) = (c1.load(SeqCst), c2.load(SeqCst));
    assert!(n1 <= 4 && n2 <= 4, "connections: v1 {n1}, v2 {n2}");
}

#[tokio::test]
async fn fallthrough_never_reaches_what_a_pin_could_not() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let mut config = test_config();
    config.pins.max_age = Some(Duration::from_secs(1));
    let (r, _s) = two_builds(config, v1.url(), v2.url()).await;
    eventually(
        Duration::from_secs(10),
        "v1 past the maximum pin age",
        || async {
            (get(r.addr, "/assets/v1-app.js?pulse_deployment=v1", &[])
                .await
                .status
                == 409)
                .then_some(())
        },
    )
    .await;
    let unpinned = get(r.addr, "/assets/v1-app.js", &[]).await;
    assert_eq!(unpinned.status, 404, "no back door through fallthrough");

    // Strict mode: an old build opens only with a valid token.
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let mut config = test_config();
    config.pins.keys = Some(PinKeys::new(&[7u8; 32]).unwrap());
    let (r, _s) = two_builds(config, v1.url(), v2.url()).await;
    assert_eq!(get(r.addr, "/assets/v1-app.js", &[]).await.status, 404);
}

#[tokio::test]
async fn a_token_is_never_relabelled_past_its_own_end() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let keys = PinKeys::new(&[9u8; 32]).unwrap();
    let mut config = test_config();
    config.pins.keys = Some(keys.clone());
    config.pins.ttl = Duration::from_secs(86_400);
    let (r, _s) = two_builds(config, v1.url(), v2.url()).await;
    // A preview-style link valid for a minute.
    let token = keys.mint(&id("v1"), UnixTime::now(), Duration::from_secs(60));
    let res = get(r.addr, &format!("/page?pulse_deployment={token}"), &[]).await;
    assert_eq!(res.status, 200);
    let timing = res.header("server-timing").unwrap();
    assert!(
        timing.contains(&format!("switchyard-pin;desc=\"{token}\"")),
        "the same token back, not a day-long one: {timing}"
    );
    // Unpinned traffic still gets a fresh label.
    let fresh = get(r.addr, "/page", &[]).await;
    assert!(
        fresh
            .header("server-timing")
            .unwrap()
            .contains("switchyard-pin;desc=\"v2.")
    );
}

#[tokio::test]
async fn the_backend_never_reads_another_pin() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let (r, _s) = two_builds(test_config(), v1.url(), v2.url()).await;
    // The underscore header CGI-style backends read as the pin: dropped.
    let res = get(r.addr, "/echo", &[("x_pulse_deployment", "v1")]).await;
    assert_eq!(res.deployment(), "v2");
    assert!(res.json()["headers"].get("x_pulse_deployment").is_none());
    // `;`-separated and PHP-mangled names are pins, so one-pin holds.
    for q in [
        "a=1;pulse_deployment=v1",
        "pulse.deployment=v1",
        "pulse%20deployment=v1",
    ] {
        assert_eq!(
            get(r.addr, &format!("/echo?{q}"), &[]).await.deployment(),
            "v1",
            "{q}"
        );
        let two = get(r.addr, &format!("/echo?pulse_deployment=v2&{q}"), &[]).await;
        assert_eq!(two.status, 400, "{q}");
    }
    // A Connection header cannot strip the pin or the request id.
    let res = get(
        r.addr,
        "/echo",
        &[
            ("connection", "x-pulse-deployment, x-request-id"),
            ("x-pulse-deployment", "v1"),
        ],
    )
    .await;
    assert_eq!(res.deployment(), "v1");
    let seen = &res.json()["headers"];
    assert_eq!(seen["x-pulse-deployment"], serde_json::json!(["v1"]));
    assert!(seen.get("x-request-id").is_some());
}

#[tokio::test]
async fn the_internal_block_holds_against_case_and_path_parameters() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let (r, _s) = two_builds(test_config(), v1.url(), v2.url()).await;
    for path in [
        "/_PULSE/INTERNAL/railway/reload",
        "/_pulse;x=1/internal/railway/reload",
        "/_Pulse/Internal;a/railway/sessions",
    ] {
        let res = get(r.addr, path, &[]).await;
        assert_eq!(res.status, 404, "{path}");
        assert_eq!(res.header("x-switchyard"), Some("router"), "{path}");
    }
    let res = get(r.addr, "/static/..;/_pulse/internal/railway/reload", &[]).await;
    assert_eq!(res.status, 400);
    assert_eq!(v2.state.reload_calls.load(SeqCst), 0);
}

#[tokio::test]
async fn client_forwarding_headers_obey_the_trust_setting() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let sent = [
        ("forwarded", "for=203.0.113.9;proto=https"),
        ("x-real-ip", "203.0.113.9"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/admin"),
    ];
    let (r, _s) = two_builds(test_config(), v1.url(), v2.url()).await;
    let seen = get(r.addr, "/echo", &sent).await.json()["headers"].clone();
    for (name, _) in sent {
        assert!(seen.get(name).is_none(), "{name} passed untrusted: {seen}");
    }
    let mut trusting = test_config();
    trusting.trust_forwarded = true;
    let (r, _s) = two_builds(trusting, v1.url(), v2.url()).await;
    let seen = get(r.addr, "/echo", &sent).await.json()["headers"].clone();
    for (name, value) in sent {
        assert_eq!(seen[name], serde_json::json!([value]), "{name}");
    }
}

#[tokio::test]
async fn a_loader_redirect_cannot_leave_the_site() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let (r, _s) = two_builds(test_config(), v1.url(), v2.url()).await;
    for location in ["/\\evil.example", "/\\/evil.example", "/ok\\x"] {
        let res = get(
            r.addr,
            "/?pulse_deployment=gone",
            &[
                ("x-pulse-client-loader", "1"),
                ("x-pulse-client-loader-location", location),
            ],
        )
        .await;
        assert_eq!(res.status, 409, "{location}");
        assert!(res.header("location").is_none());
    }
}

/// The deployment's 5xx and backend-error counts, from `/metrics`.
async fn faults(r: &TestRouter, id: &str) -> (String, String, String) {
    let text = String::from_utf8_lossy(&get(r.metrics, "/metrics", &[]).await.body).into_owned();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{deployment=\"{id}\"")))
            .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    (
        line("switchyard_backend_errors_total"),
        line("switchyard_client_aborts_total"),
        text.lines()
            .filter(|l| l.contains(&format!("deployment=\"{id}\"")) && l.contains("class=\"5xx\""))
            .collect::<Vec<_>>()
            .join(";"),
    )
}

#[tokio::test]
async fn a_clients_own_body_failure_is_a_400_never_the_deployments_5xx() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let (r, _s) = two_builds(test_config(), v1.url(), v2.url()).await;
    // Malformed chunked framing: 400 from the router (RFC 9112 §7.1).
    let bad = raw(
        r.addr,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    // Uploads that stop early: the client half-closes after 10 of 100 bytes.
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains(" 502 "), "{text}");
    }
    let (errors, aborts, fives) =
        eventually(Duration::from_secs(5), "the aborts counted", || async {
            let f = faults(&r, "v2").await;
            (f.1.parse::<u64>().unwrap_or(0) >= 5).then_some(f)
        })
        .await;
    assert_eq!(errors, "0", "no backend error");
    assert!(aborts.parse::<u64>().unwrap() >= 5);
    assert!(fives.is_empty() || fives.ends_with(" 0"), "no 5xx: {fives}");
}

#[tokio::test]
async fn cookies_are_secure_when_the_client_came_over_https() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let cookie_mode = |trust, secure| {
        let mut c = test_config();
        c.names.cookie = Some("sy_pin".into());
        c.trust_forwarded = trust;
        c.secure_cookies = secure;
        c
    };
    let doc = [
        ("sec-fetch-dest", "document"),
        ("x-forwarded-proto", "https"),
    ];
    for (trust, secure, want) in [
        (true, false, true),
        (false, false, false),
        (false, true, true),
    ] {
        let (r, _s) = two_builds(cookie_mode(trust, secure), v1.url(), v2.url()).await;
        let res = get(r.addr, "/page", &doc).await;
        let cookie = res.header("set-cookie").unwrap();
        assert_eq!(
            cookie.ends_with("; Secure"),
            want,
            "trust {trust}, setting {secure}: {cookie}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_listener_cannot_starve_the_public_one() {
    let redis = RedisServer::start();
    let (port, private) = (
        switchyard_testkit::free_port(),
        switchyard_testkit::free_port(),
    );
    // A file limit of 128, as a small container has.
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -n 128 && exec \"$0\"",
            env!("CARGO_BIN_EXE_switchyard-router"),
        ])
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_METRICS_LISTEN", format!("127.0.0.1:{private}"))
        .env("SWITCHYARD_HEADER_READ_TIMEOUT", "1s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let public: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{private}").parse().unwrap();
    eventually(Duration::from_secs(15), "the router", || async {
        try_get(public, "/healthz").await.map(|_| ())
    })
    .await;
    // 200 silent connections to the private port.
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(s) = tokio::net::TcpStream::connect(metrics).await {
            held.push(s);
        }
    }
    let health = tokio::time::timeout(Duration::from_secs(5), try_get(public, "/healthz"))
        .await
        .expect("the public port answers at once")
        .expect("an answer");
    assert!(
        health.status == 200 || health.status == 503,
        "{}",
        health.status
    );
    // Silent ones are closed at the header deadline; then scrapes work again.
    eventually(
        Duration::from_secs(10),
        "a scrape after the deadline",
        || async {
            tokio::time::timeout(Duration::from_secs(2), try_get(metrics, "/metrics"))
                .await
                .ok()
                .flatten()
                .filter(|r| r.status == 200)
                .map(|_| ())
        },
    )
    .await;
    drop(held);
    // A page on another name (DNS rebinding) reads nothing.
    let rebound = get(metrics, "/snapshot", &[("host", "evil.example:9091")]).await;
    assert_eq!(rebound.status, 421);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn a_subprotocol_the_client_never_offered_fails_the_upgrade() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    // A backend that answers every upgrade with a subprotocol of its own.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                let mut key = String::new();
                loop {
                    let mut line = String::new();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("sec-websocket-key:") {
                        key = v.trim().to_string();
                    }
                }
                let accept =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let _ = s
                    .get_mut()
                    .write_all(
                        format!(
                            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: evil\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    let v1 = Backend::start("v1").await;
    let (r, _s) = two_builds(test_config(), v1.url(), url).await;
    let res = raw(
        r.addr,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Protocol: chat\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 502"), "{res}");
    assert!(!res.contains("evil"), "{res}");
}

#[tokio::test]
async fn the_previous_secrets_grace_runs_from_the_recorded_rotation_not_each_start() {
    let (old, new) = ([1u8; 32], [2u8; 32]);
    let grace = Duration::from_secs(3600);
    let start = |store: switchyard_store::SharedStore| async move {
        let mut config = test_config();
        config.pins.keys = Some(
            PinKeys::new(&new)
                .unwrap()
                .with_previous(&old, UnixTime::now().plus(grace))
                .unwrap(),
        );
        config.pins.previous_grace = grace;
        TestRouter::start(config, store).await
    };
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let token =
        PinKeys::new(&old)
            .unwrap()
            .mint(&id("v1"), UnixTime::now(), Duration::from_secs(86_400));
    let pinned = |addr| {
        let token = token.clone();
        async move {
            get(addr, &format!("/x?pulse_deployment={token}"), &[])
                .await
                .status
        }
    };
    // First start: the rotation is recorded now; old tokens still work.
    let r = start(store.clone()).await;
    let recorded = eventually(Duration::from_secs(5), "the rotation recorded", || async {
        store
            .get_meta(switchyard_core::pin::ROTATION_META)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(pinned(r.addr).await, 200);
    r.shutdown().await;
    // The rotation was two hours ago: a restart does not reopen the grace.
    let mut rotation: switchyard_core::pin::Rotation = serde_json::from_str(&recorded).unwrap();
    rotation.rotated_at -= 7200;
    store
        .put_meta(
            switchyard_core::pin::ROTATION_META,
            &serde_json::to_string(&rotation).unwrap(),
        )
        .await
        .unwrap();
    let r = start(store.clone()).await;
    eventually(
        Duration::from_secs(5),
        "the old secret to lapse",
        || async { (pinned(r.addr).await == 409).then_some(()) },
    )
    .await;
}
