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
