//! Defects found attacking the router, each driven over real sockets:
//! silent connections, WebSockets and the connection limit, request ids on
//! the router's own answers, Host and handshake validation (RFC 9112 §3.2,
//! RFC 6455 §4.2.1), one pin per request, the proxy's own HTTP version
//! (RFC 9110 §6.2), and a client's clean close.

#![allow(clippy::unwrap_used)]

mod support;

use std::{net::SocketAddr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_tungstenite::{connect_async, tungstenite::Message};

async fn v1_router(config: switchyard_router::RouterConfig) -> (TestRouter, Backend) {
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    (TestRouter::start(config, store).await, v1)
}

/// A router whose one, active deployment is the backend at `url`.
async fn router_for(config: switchyard_router::RouterConfig, url: String) -> TestRouter {
    let store = memory_store();
    active_at(&store, "only", url).await;
    TestRouter::start(config, store).await
}

/// One request that asks for the connection to close after it.
const GET_AND_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

/// Reads until EOF or `limit`; true when the peer closed in time.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 256];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_connections_are_closed_at_the_header_deadline() {
    let mut config = test_config();
    config.limits.header_read_timeout = Duration::from_secs(1);
    config.limits.max_connections = 4000;
    let (r, _v1) = v1_router(config).await;

    // Nothing at all, half an HTTP/2 preface, half an HTTP/1 head.
    let mut silent = Vec::new();
    for i in 0..3000 {
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        match i % 3 {
            0 => {}
            1 => s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap(),
            _ => s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.unwrap(),
        }
        silent.push(s);
    }
    let opened = tokio::time::Instant::now();
    // Meanwhile a real client is served.
    for _ in 0..10 {
        let reply = get(r.addr, "/", &[]).await;
        assert_eq!(reply.status, 200);
    }
    // Every silent one is gone within the timeout plus a second.
    for s in &mut silent {
        let left = (opened + Duration::from_secs(3))
            .saturating_duration_since(tokio::time::Instant::now());
        assert!(
            closed_within(s, left).await,
            "a silent connection outlived the header deadline"
        );
    }
    assert_eq!(get(r.addr, "/", &[]).await.status, 200);
    r.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_sent_its_head_in_time_is_served() {
    let mut config = test_config();
    config.limits.header_read_timeout = Duration::from_millis(800);
    let (r, _v1) = v1_router(config).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(b"Host: app\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    r.shutdown().await;
}

async fn metric(r: &TestRouter, name: &str) -> f64 {
    let text = get(r.metrics, "/metrics", &[]).await.body;
    switchyard_testkit::metrics::sample(&String::from_utf8_lossy(&text), name)
        .unwrap_or_else(|| panic!("{name} missing from metrics"))
}

#[tokio::test]
async fn websockets_hold_their_connection_slot_for_their_whole_life() {
    let mut config = test_config();
    config.limits.max_connections = 2;
    let (r, _v1) = v1_router(config).await;
    // The readiness probe's connection must be gone, or it holds a slot.
    let rr = &r;
    eventually(
        Duration::from_secs(10),
        "no connection open",
        || async move { (metric(rr, "switchyard_connections_open").await == 0.0).then_some(()) },
    )
    .await;
    let (mut a, _) = connect_async(format!("ws://{}/ws", r.addr)).await.unwrap();
    let (mut b, _) = connect_async(format!("ws://{}/ws", r.addr)).await.unwrap();
    a.send(Message::text("hi")).await.unwrap();
    assert!(a.next().await.unwrap().is_ok());
    assert_eq!(metric(&r, "switchyard_connections_open").await, 2.0);
    // A third connection of any kind is over the limit.
    assert!(connect_async(format!("ws://{}/ws", r.addr)).await.is_err());
    let reply = raw(
        r.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    // Closing one frees its slot.
    a.close(None).await.unwrap();
    while a.next().await.is_some() {}
    let addr = r.addr;
    eventually(Duration::from_secs(5), "a slot to free", || async move {
        let reply = raw(
            addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .await;
        reply.starts_with("HTTP/1.1 200").then_some(())
    })
    .await;
    b.send(Message::text("still here")).await.unwrap();
    assert!(b.next().await.unwrap().is_ok());
    r.shutdown().await;
}

#[tokio::test]
async fn every_router_answer_carries_the_request_id() {
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    // A deployment whose backend is not listening.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    store
        .register(switchyard_store::NewDeployment {
            id: id("down"),
            service_name: "down".into(),
            backend_url: dead_url,
            service_id: None,
            state_epoch: None,
            now: switchyard_core::UnixTime::now(),
        })
        .await
        .unwrap();
    let r = TestRouter::start(test_config(), store).await;
    let cases: &[(&str, u16)] = &[
        ("/_pulse/internal/x", 404),
        ("/?pulse_deployment=gone", 409),
        ("/?pulse_deployment=down", 502),
        ("/?pulse_deployment=a&pulse_deployment=b", 400),
        ("/_switchyard/nothing", 404),
        ("/", 200),
    ];
    for (path, status) in cases {
        let reply = get(r.addr, path, &[]).await;
        assert_eq!(reply.status, *status, "{path}");
        let rid = reply.header("x-request-id").unwrap_or_default();
        assert_eq!(rid.len(), 32, "{path}: {rid:?}");
        let mine = get(r.addr, path, &[("x-request-id", "trace-123")]).await;
        assert_eq!(mine.header("x-request-id"), Some("trace-123"), "{path}");
    }
    // Refused before routing (431, bad Host) too.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nx-big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(70_000)
    );
    let reply = raw(r.addr, big.as_bytes()).await;
    assert!(
        reply.starts_with("HTTP/1.1 431"),
        "{}",
        &reply[..reply.len().min(80)]
    );
    assert!(
        reply.to_ascii_lowercase().contains("x-request-id: "),
        "{}",
        &reply[..reply.len().min(300)]
    );
    let reply = raw(
        r.addr,
        b"GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("x-request-id: "),
        "{reply}"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn host_is_validated_and_an_absolute_target_wins() {
    let (r, _v1) = v1_router(test_config()).await;
    for bad in [
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: user@evil\r\nConnection: close\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: h\u{e9}te\r\nConnection: close\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: a:80x\r\nConnection: close\r\n\r\n".into(),
    ] {
        let reply = raw(r.addr, bad.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{bad:?} -> {reply}");
        assert!(
            !reply.contains("\"deployment\""),
            "reached the backend: {bad:?}"
        );
    }
    // HTTP/1.0 needs no Host.
    let reply = raw(r.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(reply.contains("\"deployment\":\"v1\""), "{reply}");
    // RFC 9112 §3.2.2: the absolute-form authority replaces Host.
    let reply = raw(
        r.addr,
        b"GET http://app.example:8443/x HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n",
    )
    .await;
    let body = &reply[reply.find("\r\n\r\n").unwrap() + 4..];
    let echo: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(echo["headers"]["x-forwarded-host"][0], "app.example:8443");
    assert_eq!(echo["path"], "/x");
    r.shutdown().await;
}

/// A raw TCP backend: on each connection it reads the request, then
/// `answer` writes whatever it likes.
async fn raw_backend<F, Fut>(answer: F) -> String
where
    F: Fn(TcpStream) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                answer(s).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A backend that writes one canned response on each connection.
async fn canned_backend(response: &'static [u8]) -> String {
    raw_backend(move |mut s| async move {
        let _ = s.write_all(response).await;
        let _ = s.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn a_proxy_answers_in_its_own_http_version() {
    let url = canned_backend(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let r = router_for(test_config(), url).await;
    let reply = raw(r.addr, GET_AND_CLOSE).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("ok"), "{reply}");
    r.shutdown().await;
}

fn upgrade_request(key: &str, version: &str, http: &str) -> String {
    format!(
        "GET /ws {http}\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
}

#[tokio::test]
async fn websocket_handshakes_are_checked_before_the_backend() {
    let (r, v1) = v1_router(test_config()).await;
    for key in [
        "short",
        "AAAAAAAAAAAAAAAAAAAAAA==AA",
        "AAAAAAAAAAAAAAAAAAAAAB==",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let reply = raw(r.addr, upgrade_request(key, "13", "HTTP/1.1").as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{key}: {reply}");
    }
    let reply = raw(
        r.addr,
        upgrade_request("dGhlIHNhbXBsZSBub25jZQ==", "8", "HTTP/1.1").as_bytes(),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 426"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{reply}"
    );
    assert_eq!(
        v1.state.ws_open.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the backend"
    );
    // RFC 9110 §7.8: Upgrade on HTTP/1.0 is ignored, the request is plain.
    let reply = raw(
        r.addr,
        upgrade_request("dGhlIHNhbXBsZSBub25jZQ==", "13", "HTTP/1.0").as_bytes(),
    )
    .await;
    assert!(
        !reply.starts_with("HTTP/1.1 101") && !reply.starts_with("HTTP/1.0 101"),
        "{reply}"
    );
    // A good key still upgrades.
    let (mut ws, _) = connect_async(format!("ws://{}/ws", r.addr)).await.unwrap();
    ws.send(Message::text("x")).await.unwrap();
    assert!(ws.next().await.unwrap().is_ok());
    r.shutdown().await;
}

#[tokio::test]
async fn one_request_one_pin() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1), ("v2", &v2)], &["v1", "v2"]).await;
    let r = TestRouter::start(test_config(), store).await;
    for (path, headers) in [
        ("/?pulse_deployment=v1&pulse_deployment=v2", vec![]),
        ("/?pulse_deployment=v1&pulse%5Fdeployment=v2", vec![]),
        ("/?pulse_deployment=v1", vec![("x-pulse-deployment", "v2")]),
    ] {
        let reply = get(r.addr, path, &headers).await;
        assert_eq!(reply.status, 400, "{path} {headers:?}");
        assert_eq!(reply.header("x-switchyard"), Some("router"));
    }
    let reply = raw(
        r.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nx-pulse-deployment: v1\r\nx-pulse-deployment: v2\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // The name as the backend decodes it pins.
    assert_eq!(
        get(r.addr, "/?pulse%5Fdeployment=v1", &[])
            .await
            .deployment(),
        "v1"
    );
    assert_eq!(
        get(r.addr, "/?pulse_deployment=v1&pulse_deployment=v1", &[])
            .await
            .deployment(),
        "v1"
    );
    r.shutdown().await;
}

/// A WebSocket backend that takes the handshake, reads the client's close
/// frame, and drops TCP without answering it.
async fn rude_ws_backend() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() {
                        // Drop without the close reply.
                        let stream = ws.into_inner();
                        drop(stream);
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_clients_clean_close_completes_when_the_backend_just_leaves() {
    let url = rude_ws_backend().await;
    let store = memory_store();
    active_at(&store, "rude", url).await;
    let r = TestRouter::start(test_config(), store).await;
    let (mut ws, _) = connect_async(format!("ws://{}/ws", r.addr)).await.unwrap();
    ws.close(None).await.unwrap();
    let mut close_code = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
    {
        match msg {
            Ok(Message::Close(frame)) => close_code = Some(frame.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let code = close_code.expect("the client's close was answered");
    assert!(
        code.is_none() || code == Some(1000),
        "client saw {code:?}, not an error close"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn health_is_unready_until_the_first_snapshot() {
    let redis_port = switchyard_testkit::free_port();
    let store: switchyard_store::SharedStore = std::sync::Arc::new(
        switchyard_store::RedisStore::new(&switchyard_store::RedisSettings::new(
            format!("redis://127.0.0.1:{redis_port}"),
            "pulse:railway",
        ))
        .unwrap(),
    );
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = public.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(switchyard_router::run(
        test_config(),
        store,
        switchyard_router::Listeners {
            public,
            metrics: None,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let reply = get(addr, "/healthz", &[]).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["ok"], false);
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

#[tokio::test]
async fn the_header_line_limit_is_a_setting() {
    let mut config = test_config();
    config.limits.max_header_lines = 8;
    let (r, _v1) = v1_router(config).await;
    let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n");
    for i in 0..12 {
        many.push_str(&format!("x-h{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let reply = raw(r.addr, many.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    let reply = raw(
        r.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    r.shutdown().await;
}

/// A backend that answers with a 20-byte body: 10 bytes at once, then
/// `trickled` of the other 10 one every `gap`, then (unless that was all
/// of them) nothing more, ever.
async fn slow_body_backend(gap: Duration, trickled: usize) -> String {
    raw_backend(move |mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789")
            .await;
        for b in &b"abcdefghij"[..trickled] {
            tokio::time::sleep(gap).await;
            let _ = s.write_all(&[*b]).await;
        }
        if trickled < 10 {
            std::future::pending::<()>().await;
        }
    })
    .await
}

/// Sends a request and returns how long the router took to close the
/// connection, failing if that took more than `limit`.
async fn closed_after(r: &TestRouter, limit: Duration) -> Duration {
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    assert!(
        closed_within(&mut s, limit).await,
        "a stalled transfer outlived the idle timeout"
    );
    started.elapsed()
}

#[tokio::test]
async fn a_transfer_that_stalls_is_closed_at_the_idle_timeout_and_a_slow_one_is_not() {
    let mut config = test_config();
    config.limits.idle_timeout = Duration::from_secs(1);
    let gap = Duration::from_millis(300);

    let r = router_for(config.clone(), slow_body_backend(gap, 0).await).await;
    let took = closed_after(&r, Duration::from_secs(3)).await;
    assert!(took >= Duration::from_millis(900), "closed early: {took:?}");
    r.shutdown().await;

    // Ten bytes 300 ms apart: 3 s in all, three times the idle timeout,
    // but never a second without progress.
    let r = router_for(config.clone(), slow_body_backend(gap, 10).await).await;
    let reply = raw(r.addr, GET_AND_CLOSE).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("0123456789abcdefghij"), "{reply}");
    r.shutdown().await;

    // Moving for 1.5 s, then stalled: the idle timer, re-armed while the
    // bytes came, still fires.
    let r = router_for(config, slow_body_backend(gap, 5).await).await;
    let took = closed_after(&r, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(2400),
        "closed early: {took:?}"
    );
    r.shutdown().await;
}
