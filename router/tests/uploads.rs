//! Request bodies on their way to a backend, over real sockets: a small
//! upload is read before a backend connection is taken, so trickling
//! clients cannot hold a backend's connections; uploads slower than the
//! minimum rate are cut with 408 (RFC 9110 §15.5.9) and counted as the
//! client's, never the deployment's; larger bodies still stream intact.

#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::atomic::Ordering::SeqCst, time::Duration};

use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn one_backend(
    config: switchyard_router::RouterConfig,
) -> (
    TestRouter,
    Backend,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let v1 = Backend::start("v1").await;
    let (url, count) = counted(&v1).await;
    let store = memory_store();
    active_at(&store, "v1", url).await;
    (TestRouter::start(config, store).await, v1, count)
}

async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn trickling_small_uploads_hold_no_backend_connection() {
    let mut config = test_config();
    // No minimum rate: these clients may take as long as they like, and
    // still cost the backend nothing until their bodies are complete.
    config.limits.min_upload_rate = None;
    let (r, _v1, connections) = one_backend(config).await;

    let mut uploads = vec![];
    for _ in 0..20 {
        let mut s = TcpStream::connect(r.addr).await.unwrap();
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n0123456789",
        )
        .await
        .unwrap();
        uploads.push(s);
    }
    // A complete request after them, answered through the backend.
    let done = get(r.addr, "/after", &[]).await;
    assert_eq!(done.status, 200);
    assert!(
        connections.load(SeqCst) <= 1,
        "{} backend connections while 20 uploads trickle",
        connections.load(SeqCst)
    );
    // The rest of each body: every upload reaches the backend whole.
    for mut s in uploads {
        s.write_all(&[b'x'; 990]).await.unwrap();
        let text = read_response(&mut s).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("\"body_bytes\":1000"), "{text}");
        assert!(text.contains("\"content-length\":[\"1000\"]"), "{text}");
    }
}

#[tokio::test]
async fn an_upload_slower_than_the_minimum_rate_is_cut_with_408() {
    let mut config = test_config();
    config.limits.min_upload_rate = Some(1000);
    config.limits.upload_grace = Duration::from_millis(500);
    let (r, _v1, connections) = one_backend(config).await;

    // Ten bytes of a 100 kB upload, then nothing.
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
        .await
        .unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("x-switchyard: router"), "{text}");
    assert!(lower.contains("x-request-id: "), "{text}");
    assert!(lower.contains("connection: close"), "{text}");
    assert_eq!(connections.load(SeqCst), 0, "the backend was never asked");

    // A client's fault: counted as an abort, never the backend's error.
    let metrics = String::from_utf8_lossy(&get(r.metrics, "/metrics", &[]).await.body).into_owned();
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{deployment=\"v1\"")))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("0")
            .to_string()
    };
    assert_eq!(value("switchyard_client_aborts_total"), "1", "{metrics}");
    assert_eq!(value("switchyard_backend_errors_total"), "0", "{metrics}");
}

#[tokio::test]
async fn a_large_upload_streams_and_is_cut_if_it_stalls_past_the_buffer() {
    let mut config = test_config();
    config.limits.request_buffer = 1024;
    config.limits.min_upload_rate = Some(1000);
    config.limits.upload_grace = Duration::from_millis(500);
    let (r, _v1, _connections) = one_backend(config).await;

    // 1 MiB, chunked, sent at once: streamed through whole.
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    let mut req =
        b"POST /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..64 {
        req.extend_from_slice(b"4000\r\n");
        req.extend_from_slice(&[b'y'; 0x4000]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"body_bytes\":1048576"), "{text}");

    // 4 kB past a 1 kB buffer (so a backend connection is taken), then a
    // stall: the upload is cut for its pace mid-stream.
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[b'z'; 4096]).await.unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-switchyard: router"),
        "{text}"
    );
}

async fn router_at(url: String) -> TestRouter {
    let store = memory_store();
    active_at(&store, "v1", url).await;
    TestRouter::start(test_config(), store).await
}

#[tokio::test]
async fn a_chunked_upload_reaches_the_backend_re_framed_and_the_next_request_follows() {
    let (url, mut got) = scripted_backend(
        b"0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        After::Hold,
    )
    .await;
    // The pipelined request after the upload gets no answer from this
    // backend: the router's own 504 comes after a second.
    let mut config = test_config();
    config.limits.backend_timeout = Duration::from_secs(1);
    let store = memory_store();
    active_at(&store, "v1", url).await;
    let r = TestRouter::start(config, store).await;
    // Extensions and trailers are the client's framing, not the message
    // (RFC 9112 §7.1.1, §7.1.2): the backend gets the data in the
    // router's own chunks. A pipelined request follows the body in the
    // same packet and is still read as a request.
    let text = raw(
        r.addr,
        b"POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n\
          5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n\
          GET /next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let sent = String::from_utf8(got.recv().await.unwrap()).unwrap();
    let (head, body) = sent.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /up HTTP/1.1\r\n"), "{sent}");
    assert!(head.contains("transfer-encoding: chunked"), "{sent}");
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{sent}"
    );
    assert_eq!(body, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    // The second request was read as one: it reached the (silent)
    // backend and the router answered it, never as body bytes.
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
    assert!(text.contains("HTTP/1.1 504"), "{text}");
    r.shutdown().await;
}

#[tokio::test]
async fn a_get_with_a_body_is_forwarded_with_it() {
    let (url, mut got) = scripted_backend(
        b"abc",
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        After::Hold,
    )
    .await;
    let r = router_at(url).await;
    let text = raw(
        r.addr,
        b"GET /q HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let sent = String::from_utf8(got.recv().await.unwrap()).unwrap();
    assert!(sent.starts_with("GET /q HTTP/1.1\r\n"), "{sent}");
    assert!(sent.contains("\r\ncontent-length: 3\r\n"), "{sent}");
    assert!(sent.ends_with("\r\n\r\nabc"), "{sent}");
    r.shutdown().await;
}

#[tokio::test]
async fn a_backend_that_answers_before_the_upload_ends_is_heard_and_the_client_closed() {
    // The backend refuses on the head alone and closes without reading a
    // byte of the body, as a server with a body limit does.
    let (url, _got) = scripted_backend(
        b"\r\n\r\n",
        b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbig!",
        After::Close,
    )
    .await;
    let mut config = test_config();
    config.limits.request_buffer = 0;
    let store = memory_store();
    active_at(&store, "v1", url).await;
    let r = TestRouter::start(config, store).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 8388608\r\n\r\n")
        .await
        .unwrap();
    // The client goes on sending while the router tells it the answer;
    // its writes may fail once the router has closed.
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..128 {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
        s
    });
    let mut s = writer.await.unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.ends_with("big!"), "{text}");
    r.shutdown().await;
}

#[tokio::test]
async fn a_client_that_leaves_mid_upload_gets_400_and_costs_the_backend_nothing() {
    let (r, _v1, connections) = one_backend(test_config()).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("x-switchyard: router"), "{text}");
    assert!(text.contains("x-request-id: "), "{text}");
    assert_eq!(connections.load(SeqCst), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn a_client_expecting_100_continue_is_told_to_send_and_its_body_arrives() {
    let (r, _v1, _connections) = one_backend(test_config()).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    // The client sends nothing more until it is told to (RFC 9110 §10.1.1).
    let mut interim = vec![0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut interim))
        .await
        .expect("a 100 Continue in time")
        .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").await.unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"body_bytes\":5"), "{text}");
    // The expectation was met by the router: the backend is not asked it.
    assert!(!text.to_ascii_lowercase().contains("\"expect\""), "{text}");
    r.shutdown().await;
}

#[tokio::test]
async fn an_expectation_other_than_100_continue_is_417() {
    let (r, _v1, connections) = one_backend(test_config()).await;
    let text = raw(
        r.addr,
        b"POST /echo HTTP/1.1\r\nhost: x\r\nexpect: teapot\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 417"), "{text}");
    assert!(text.contains("x-switchyard: router"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert_eq!(connections.load(SeqCst), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn a_refused_request_with_an_unread_body_closes_so_its_body_is_never_read_as_a_request() {
    let (r, _v1, connections) = one_backend(test_config()).await;
    // Two pins that disagree: the router refuses before reading the body,
    // whose bytes happen to look like a request of their own.
    let smuggled = b"GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\nx-pulse-deployment: v1\r\n\
         x-pulse-deployment: v2\r\ncontent-length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    req.extend_from_slice(smuggled);
    let text = raw(r.addr, &req).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    assert_eq!(connections.load(SeqCst), 0);
    r.shutdown().await;
}
