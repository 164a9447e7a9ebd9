//! The backend side of forwarding: kept-alive connections reused across
//! requests and clients, a backend that closes between requests, a body
//! that ends early, pipelining. The backend here is raw TCP so each test
//! controls exactly what the router's connection sees.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use bytes::Bytes;
use support::*;
use switchyard_core::UnixTime;
use switchyard_store::{NewDeployment, SharedStore};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

#[derive(Clone, Copy)]
enum Mode {
    /// HTTP/1.1 keep-alive, as most backends.
    KeepAlive,
    /// Closes after each response without saying so (`Connection: close`
    /// absent), as a backend whose keep-alive timeout just ran out.
    CloseAfterEach,
    /// Reads the second request on a connection and closes without an
    /// answer: a keep-alive timeout firing as the request arrives.
    DropSecondRequest,
}

struct RawBackend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: mpsc::UnboundedReceiver<()>,
}

impl RawBackend {
    async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, SeqCst) + 1;
                let closed = closed_tx.clone();
                tokio::spawn(async move {
                    serve(stream, n, mode).await;
                    let _ = closed.send(());
                });
            }
        });
        Self {
            addr,
            accepted,
            closed,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(SeqCst)
    }
}

/// Answers each request with `<path> on <connection number>`; `/short`
/// promises 100 bytes, sends 10 and closes.
async fn serve(mut stream: TcpStream, conn_no: usize, mode: Mode) {
    let mut buf = Vec::new();
    let mut served = 0;
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        served += 1;
        if served == 2 && matches!(mode, Mode::DropSecondRequest) {
            return;
        }
        if path == "/short" {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                .await;
            return;
        }
        let body = format!("{path} on {conn_no}, {length} bytes in");
        let res = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(res.as_bytes()).await.is_err() {
            return;
        }
        if let Mode::CloseAfterEach = mode {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// A store whose active deployment is `backend`.
async fn store_for(backend: &RawBackend) -> SharedStore {
    let store = memory_store();
    store
        .register(NewDeployment {
            id: id("raw"),
            service_name: "raw".into(),
            backend_url: format!("http://{}", backend.addr),
            service_id: None,
            state_epoch: None,
            now: UnixTime::now(),
        })
        .await
        .unwrap();
    store.promote(&id("raw"), UnixTime::now()).await.unwrap();
    store
}

async fn router_to(backend: &RawBackend) -> TestRouter {
    let store = store_for(backend).await;
    // One worker: each worker keeps its own backend connections, so with
    // more, which worker a client lands on would change the counts below.
    let mut config = test_config();
    config.worker_threads = Some(1);
    TestRouter::start(config, store).await
}

#[tokio::test]
async fn one_backend_connection_serves_sequential_requests_from_many_clients() {
    let backend = RawBackend::start(Mode::KeepAlive).await;
    let router = router_to(&backend).await;
    for i in 0..30 {
        // A new client connection each time: the backend connection is
        // the router's, not the client's.
        let reply = get(router.addr, &format!("/r{i}"), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, format!("/r{i} on 1, 0 bytes in"));
    }
    assert_eq!(backend.accepted(), 1);
    router.shutdown().await;
}

#[tokio::test]
async fn each_worker_keeps_its_own_backend_connections() {
    let backend = RawBackend::start(Mode::KeepAlive).await;
    let store = store_for(&backend).await;
    let mut config = test_config();
    config.worker_threads = Some(3);
    let router = TestRouter::start(config, store).await;
    for _ in 0..60 {
        assert_eq!(get(router.addr, "/w", &[]).await.status, 200);
    }
    // Sequential requests: at most one backend connection per worker.
    let accepted = backend.accepted();
    assert!(
        (1..=3).contains(&accepted),
        "{accepted} backend connections"
    );
    router.shutdown().await;
}

#[tokio::test]
async fn a_request_body_streams_through_and_the_connection_is_kept() {
    let backend = RawBackend::start(Mode::KeepAlive).await;
    let router = router_to(&backend).await;
    let body = Bytes::from(vec![b'x'; 300_000]);
    let reply = request(router.addr, "POST", "/upload", &[], body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "/upload on 1, 300000 bytes in");
    let reply = get(router.addr, "/after", &[]).await;
    assert_eq!(reply.body, "/after on 1, 0 bytes in");
    assert_eq!(backend.accepted(), 1);
    router.shutdown().await;
}

#[tokio::test]
async fn a_backend_that_closes_between_requests_costs_no_failed_request() {
    let mut backend = RawBackend::start(Mode::CloseAfterEach).await;
    let router = router_to(&backend).await;
    for i in 1..=20 {
        let reply = get(router.addr, "/x", &[]).await;
        assert_eq!(reply.status, 200, "request {i}: {reply:?}");
        assert_eq!(reply.body, format!("/x on {i}, 0 bytes in"));
        // The backend has closed that connection before the next request
        // is sent: the router must notice instead of answering 502.
        tokio::time::timeout(Duration::from_secs(5), backend.closed.recv())
            .await
            .expect("backend closed its connection")
            .unwrap();
    }
    router.shutdown().await;
}

#[tokio::test]
async fn a_close_racing_an_idempotent_request_is_retried_once_and_a_post_is_not() {
    let backend = RawBackend::start(Mode::DropSecondRequest).await;
    let router = router_to(&backend).await;
    // The scenario needs the connection idle past the point where the
    // router treats a reuse as at risk (a backend keep-alive timeout).
    let gap = Duration::from_millis(300);
    assert_eq!(get(router.addr, "/one", &[]).await.status, 200);
    tokio::time::sleep(gap).await;
    // The backend reads this request and closes without an answer: the
    // router repeats it on a fresh connection.
    let reply = get(router.addr, "/two", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "/two on 2, 0 bytes in");
    tokio::time::sleep(gap).await;
    // A request with a body cannot be repeated: 502, with the reason.
    let reply = request(
        router.addr,
        "POST",
        "/three",
        &[],
        Bytes::from_static(b"data"),
    )
    .await;
    assert_eq!(reply.status, 502, "{reply:?}");
    assert_eq!(backend.accepted(), 2);
    router.shutdown().await;
}

#[tokio::test]
async fn a_body_that_ends_early_fails_that_response_and_not_the_next() {
    let backend = RawBackend::start(Mode::KeepAlive).await;
    let router = router_to(&backend).await;
    let mut s = TcpStream::connect(router.addr).await.unwrap();
    s.write_all(b"GET /short HTTP/1.1\r\nhost: app\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    // The router cannot finish a body it promised as 100 bytes: it closes
    // the client connection (RFC 9112 §8: an incomplete message), so the
    // client never sees a complete wrong one. What it got before the close
    // (hyper may not flush the head) is at most the head and those bytes.
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("router closed the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    if let Some((head, body)) = text.split_once("\r\n\r\n") {
        assert!(head.starts_with("HTTP/1.1 200"), "{text}");
        assert!(head.contains("content-length: 100"), "{text}");
        assert!(body.len() < 100, "{text}");
    }
    let reply = get(router.addr, "/next", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "/next on 2, 0 bytes in");
    router.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let backend = RawBackend::start(Mode::KeepAlive).await;
    let router = router_to(&backend).await;
    let text = raw(
        router.addr,
        b"GET /a HTTP/1.1\r\nhost: app\r\n\r\nGET /b HTTP/1.1\r\nhost: app\r\n\r\nGET /c HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n",
    )
    .await;
    let a = text.find("/a on 1").expect("first answer");
    let b = text.find("/b on 1").expect("second answer");
    let c = text.find("/c on 1").expect("third answer");
    assert!(a < b && b < c, "{text}");
    assert_eq!(text.matches("HTTP/1.1 200").count(), 3, "{text}");
    router.shutdown().await;
}
