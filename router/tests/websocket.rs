//! WebSocket proxying, leases, reload broadcasts and revocation.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::*;
use switchyard_core::UnixTime;
use switchyard_store::ReloadNotice;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        Message,
        client::IntoClientRequest,
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(
    r: &TestRouter,
    path: &str,
    protocols: Option<&str>,
) -> (Ws, http::Response<Option<Vec<u8>>>) {
    let mut req = format!("ws://{}{path}", r.addr)
        .into_client_request()
        .unwrap();
    if let Some(p) = protocols {
        req.headers_mut()
            .insert("sec-websocket-protocol", p.parse().unwrap());
    }
    connect_async(req).await.expect("websocket connects")
}

/// A router whose one deployment, v1, is active.
async fn router_to_v1(config: switchyard_router::RouterConfig) -> (Backend, TestRouter) {
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    (v1, TestRouter::start(config, store).await)
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("message in time")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Reads up to the peer's close frame, then keeps polling so the close
/// reply goes out, as a real client would.
async fn next_close(ws: &mut Ws) -> (u16, String) {
    let got = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(Some(f)))) => break (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) => break (1005, String::new()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    got
}

#[tokio::test]
async fn echo_with_subprotocol_and_binary() {
    let (_v1, r) = router_to_v1(test_config()).await;
    let (mut ws, res) = open(&r, "/ws", Some("superchat, chat")).await;
    // The backend prefers "chat" among those offered; the router relays its
    // choice rather than negotiating one of its own.
    assert_eq!(res.headers()["sec-websocket-protocol"], "chat");
    assert_eq!(res.headers()["x-pulse-selected-deployment"], "v1");
    // The 101 went through the response filter every answer does, and
    // the backend's greeting, sent right behind its 101, is relayed.
    assert!(res.headers().contains_key("x-request-id"), "{res:?}");
    assert!(res.headers().contains_key("server-timing"), "{res:?}");
    assert!(!res.headers().contains_key("sec-websocket-extensions"));
    assert_eq!(next_text(&mut ws).await, "hello from v1");
    ws.send(Message::Text("ping?".into())).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "ping?");
    ws.send(Message::Binary(vec![0, 1, 2, 255].into()))
        .await
        .unwrap();
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) => {
                assert_eq!(&b[..], &[0, 1, 2, 255]);
                break;
            }
            Message::Pong(_) | Message::Ping(_) => continue,
            other => panic!("{other:?}"),
        }
    }
    // Pings are answered.
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"are you there");
                break;
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn close_codes_pass_through_both_ways() {
    let (v1, r) = router_to_v1(test_config()).await;

    // Backend closes with 4002: the client sees exactly that.
    let (mut ws, _) = open(&r, "/ws", None).await;
    next_text(&mut ws).await;
    ws.send(Message::Text("close:4002:backend says bye".into()))
        .await
        .unwrap();
    assert_eq!(next_close(&mut ws).await, (4002, "backend says bye".into()));

    // Client closes with 4001: the backend sees exactly that.
    let (mut ws, _) = open(&r, "/ws", None).await;
    next_text(&mut ws).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::from(4001),
        reason: "client says bye".into(),
    }))
    .await
    .unwrap();
    let state = v1.state.clone();
    eventually(
        Duration::from_secs(5),
        "backend to see the client's close",
        || {
            let state = state.clone();
            async move {
                let closes = state.ws_closes.lock().unwrap().clone();
                closes
                    .contains(&(4001, "client says bye".to_string()))
                    .then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn stale_websocket_falls_back_only_when_asked() {
    let (_v1, r) = router_to_v1(test_config()).await;
    let req = format!("ws://{}/ws?pulse_deployment=gone", r.addr)
        .into_client_request()
        .unwrap();
    match connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 409),
        other => panic!("expected a 409 refusal, got {other:?}"),
    }
    let (mut ws, res) = open(
        &r,
        "/ws?pulse_deployment=gone&pulse_reload_on_stale_affinity=1",
        None,
    )
    .await;
    assert_eq!(res.headers()["x-pulse-selected-deployment"], "v1");
    // A stale pin takes the general path: its 101 says what every
    // forwarded answer says too.
    assert!(res.headers().contains_key("x-request-id"), "{res:?}");
    assert!(res.headers().contains_key("server-timing"), "{res:?}");
    assert_eq!(next_text(&mut ws).await, "hello from v1");
}

#[tokio::test]
async fn unreachable_backend_answers_the_upgrade_with_502() {
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    v1.stop().await;
    let r = TestRouter::start(test_config(), store).await;
    let req = format!("ws://{}/ws", r.addr).into_client_request().unwrap();
    match connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 502),
        other => panic!("expected 502, got {other:?}"),
    }
}

#[tokio::test]
async fn a_backend_refusing_the_upgrade_is_answered_as_it_refused() {
    let (_v1, r) = router_to_v1(test_config()).await;
    let req = format!("ws://{}/status/403", r.addr)
        .into_client_request()
        .unwrap();
    match connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 403);
            assert_eq!(res.headers()["x-pulse-selected-deployment"], "v1");
            assert_eq!(res.body().as_deref(), Some(&b"status 403"[..]));
        }
        other => panic!("expected the backend's 403, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_messages_close_with_1009() {
    let mut config = test_config();
    config.limits.ws_max_message_bytes = 1024;
    let (_v1, r) = router_to_v1(config).await;
    let (mut ws, _) = open(&r, "/ws", None).await;
    next_text(&mut ws).await;
    ws.send(Message::Binary(vec![7u8; 4096].into()))
        .await
        .unwrap();
    assert_eq!(next_close(&mut ws).await.0, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_reach_the_store_and_reload_closes_with_1012() {
    let redis = RedisServer::start();
    let store: switchyard_store::SharedStore = std::sync::Arc::new(
        switchyard_store::RedisStore::new(&switchyard_store::RedisSettings::new(redis.url(), "t"))
            .unwrap(),
    );
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let r = TestRouter::start(test_config(), store.clone()).await;
    let (mut ws, _) = open(&r, "/ws", None).await;
    next_text(&mut ws).await;

    let leases = eventually(Duration::from_secs(5), "lease to be reported", || {
        let store = store.clone();
        async move {
            store
                .live_leases()
                .await
                .ok()
                .filter(|l| l.get(&id("v1")) == Some(&1))
        }
    })
    .await;
    assert_eq!(leases.len(), 1);

    deploy(&store, &[("v2", &v2)], &["v2"]).await;
    // Promotion alone does not cut the socket: v1 is draining, still served.
    ws.send(Message::Text("still here".into())).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "still here");

    store
        .publish_reload(&ReloadNotice {
            deployment_id: id("v1"),
            reason: "deployment retired".into(),
            window_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        next_close(&mut ws).await,
        (1012, "deployment retired".into())
    );
    eventually(Duration::from_secs(5), "lease to drop", || {
        let store = store.clone();
        async move {
            store
                .live_leases()
                .await
                .ok()
                .filter(|l| l.get(&id("v1")).is_none())
        }
    })
    .await;
}

#[tokio::test]
async fn revoking_closes_sockets_and_stales_pins() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1), ("v2", &v2)], &["v1", "v2"]).await;
    let r = TestRouter::start(test_config(), store.clone()).await;
    let (mut ws, _) = open(&r, "/ws?pulse_deployment=v1", None).await;
    assert_eq!(next_text(&mut ws).await, "hello from v1");
    store
        .revoke(&id("v1"), None, UnixTime::now())
        .await
        .unwrap();
    assert_eq!(
        next_close(&mut ws).await,
        (1012, "deployment revoked".into())
    );
    let addr = r.addr;
    eventually(Duration::from_secs(5), "pins to v1 to become stale", || async move {
        (get(addr, "/?pulse_deployment=v1", &[]).await.status == 409).then_some(())
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001_and_finishes_requests() {
    let (_v1, r) = router_to_v1(test_config()).await;
    let (mut ws, _) = open(&r, "/ws", None).await;
    next_text(&mut ws).await;
    let addr = r.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow?ms=700", &[]).await });
    // The slow request holds the only open HTTP connection while it waits.
    eventually(
        Duration::from_secs(5),
        "slow request to be in flight",
        || async move {
            let m = get(r.metrics, "/metrics", &[]).await;
            String::from_utf8_lossy(&m.body)
                .contains("switchyard_connections_open 1")
                .then_some(())
        },
    )
    .await;
    let closed = tokio::spawn(async move { next_close(&mut ws).await });
    let exit = r.shutdown().await;
    assert_eq!(exit, switchyard_router::Exit::Requested { drained: true });
    assert_eq!(closed.await.unwrap().0, 1001);
    let res = slow.await.unwrap();
    assert_eq!(res.status, 200, "in-flight request finished");
    assert_eq!(String::from_utf8_lossy(&res.body), "slow from v1");
}

/// A staggered reload spreads closes over its window, and the revocation
/// that follows it does not collapse them into one instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staggered_reload_spreads_closes_over_the_window() {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1), ("v2", &v2)], &["v1", "v2"]).await;
    let r = TestRouter::start(test_config(), store.clone()).await;
    let mut sockets = Vec::new();
    for _ in 0..12 {
        let (mut ws, _) = open(&r, "/ws?pulse_deployment=v1", None).await;
        next_text(&mut ws).await;
        sockets.push(ws);
    }
    let broadcast_at = std::time::Instant::now();
    store
        .publish_reload(&ReloadNotice {
            deployment_id: id("v1"),
            reason: "deployment retired".into(),
            window_ms: 1500,
        })
        .await
        .unwrap();
    store
        .revoke(&id("v1"), None, UnixTime::now())
        .await
        .unwrap();
    let closes = futures_util::future::join_all(sockets.into_iter().map(|mut ws| async move {
        let (code, reason) = next_close(&mut ws).await;
        (code, reason, broadcast_at.elapsed())
    }))
    .await;
    let times: Vec<Duration> = closes.iter().map(|(_, _, t)| *t).collect();
    for (code, reason, _) in &closes {
        assert_eq!((*code, reason.as_str()), (1012, "deployment retired"));
    }
    let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(
        *last <= Duration::from_millis(1500 + 1000),
        "all closed within the window (+slack): {times:?}"
    );
    assert!(
        *last - *first >= Duration::from_millis(300),
        "closes are spread, not simultaneous: {times:?}"
    );
}

#[tokio::test]
async fn a_backend_switching_with_the_wrong_accept_or_an_unoffered_subprotocol_is_502() {
    for head in [
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: d3Jvbmc=\r\n\r\n",
        // The right accept for some key, but not the router's: no backend
        // can guess the fresh key the router sent.
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    ] {
        let store = memory_store();
        // A 101 of the backend's own making, whatever it was asked.
        let (url, _) = scripted_backend(b"\r\n\r\n", head.as_bytes(), After::Hold).await;
        active_at(&store, "v1", url).await;
        let r = TestRouter::start(test_config(), store).await;
        let text = raw(
            r.addr,
            b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await;
        assert!(text.starts_with("HTTP/1.1 502"), "{text}");
        assert!(text.contains("x-switchyard: router"), "{text}");
        assert!(text.contains("Sec-WebSocket-Accept"), "{text}");
        r.shutdown().await;
    }
}

#[tokio::test]
async fn a_handshake_with_another_version_is_told_which_one_the_router_speaks() {
    let (_v1, r) = router_to_v1(test_config()).await;
    let text = raw(
        r.addr,
        b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 8\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nconnection: close\r\n\r\n",
    )
    .await;
    // RFC 6455 §4.4: 426 with the versions the server speaks.
    assert!(text.starts_with("HTTP/1.1 426"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{text}"
    );
    assert!(text.contains("x-request-id: "), "{text}");
    r.shutdown().await;
}
