//! Streaming without buffering, store outages, and connection limits.

#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use support::*;
use switchyard_store::{RedisSettings, RedisStore, SharedStore};
use tokio::sync::mpsc;

/// The backend answers the upload's first chunk before the client sends the
/// second: a router that buffered whole bodies would deadlock here.
#[tokio::test]
async fn uploads_stream_through() {
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let r = TestRouter::start(test_config(), store).await;

    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
    let body = StreamBody::new(tokio_stream_from(rx));
    let client: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(r.url("/upload")).body(body).unwrap();
    let response = tokio::spawn(async move { client.request(req).await });

    tx.send(Ok(Frame::data(Bytes::from(vec![1u8; 64 * 1024]))))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        v1.state.first_upload_chunk.notified(),
    )
    .await
    .expect("backend saw the first chunk while the upload was still open");
    // Then a large remainder, which flows at the backend's pace.
    for _ in 0..(64 * 16) {
        tx.send(Ok(Frame::data(Bytes::from(vec![2u8; 64 * 1024]))))
            .await
            .unwrap();
    }
    drop(tx);
    let res = response.await.unwrap().unwrap();
    let total = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        String::from_utf8_lossy(&total),
        ((1 + 64 * 16) * 64 * 1024).to_string()
    );
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The client receives the download's first chunk before the backend has
/// produced the second.
#[tokio::test]
async fn downloads_stream_through() {
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let r = TestRouter::start(test_config(), store).await;
    let client: Client<_, http_body_util::Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .request(
            http::Request::get(r.url("/download?chunks=256"))
                .body(Default::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.headers()["x-pulse-selected-deployment"], "v1");
    let mut body = res.into_body().into_data_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("first chunk before the rest exists");
    let mut total = first.unwrap().unwrap().len();
    v1.state.release_download.notify_one();
    while let Some(chunk) = body.next().await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 256 * 64 * 1024);
}

fn redis_store(server: &RedisServer) -> SharedStore {
    let mut s = RedisSettings::new(server.url(), "t");
    s.timeout = Duration::from_millis(300);
    Arc::new(RedisStore::new(&s).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_survives_redis_going_away_and_catches_up_after() {
    let mut redis = RedisServer::start();
    let store = redis_store(&redis);
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let r = TestRouter::start(test_config(), store.clone()).await;
    assert_eq!(get(r.addr, "/", &[]).await.deployment(), "v1");

    redis.stop();
    for _ in 0..50 {
        let res = get(r.addr, "/", &[]).await;
        assert_eq!(res.status, 200, "routing continues on the last snapshot");
        assert_eq!(res.deployment(), "v1");
    }
    let addr = r.metrics;
    eventually(Duration::from_secs(10), "store_up to drop", || async move {
        String::from_utf8_lossy(&get(addr, "/metrics", &[]).await.body)
            .contains("switchyard_store_up 0")
            .then_some(())
    })
    .await;

    redis.restart();
    deploy(&store, &[("v2", &v2)], &["v2"]).await;
    let addr = r.addr;
    eventually(
        Duration::from_secs(10),
        "router to catch up with the restarted store",
        || async move { (get(addr, "/", &[]).await.deployment() == "v2").then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_at_start_means_503_until_it_arrives() {
    let mut redis = RedisServer::start();
    let store = redis_store(&redis);
    let v1 = Backend::start("v1").await;
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let port = redis.port();
    redis.stop();

    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = public.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(switchyard_router::run(
        test_config(),
        store.clone(),
        switchyard_router::Listeners {
            public,
            metrics: None,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let res = get(addr, "/", &[]).await;
    assert_eq!(res.status, 503);
    assert!(
        res.json()["detail"]
            .as_str()
            .unwrap()
            .contains("no deployment snapshot"),
        "{:?}",
        res.body
    );
    assert_eq!(
        get(addr, "/healthz", &[]).await.status,
        503,
        "not ready while it can only answer 503"
    );

    redis.restart();
    assert_eq!(redis.port(), port);
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    eventually(Duration::from_secs(10), "first snapshot", || async move {
        (get(addr, "/", &[]).await.status == 200).then_some(())
    })
    .await;
    assert_eq!(
        get(addr, "/healthz", &[]).await.status,
        200,
        "ready once it routes"
    );
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn over_the_connection_limit_is_503() {
    let v1 = Backend::start("v1").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let mut config = test_config();
    config.limits.max_connections = 1;
    // One worker: which worker accepts which connection is not what this
    // test is about.
    config.worker_threads = Some(1);
    let r = TestRouter::start(config, store).await;
    // The readiness probe's connection must be gone before the held one
    // arrives, or the held one is refused instead of holding the slot.
    let metrics = r.metrics;
    let open_is = |n: u64| async move {
        let m = try_get(metrics, "/metrics").await?;
        let want = format!("switchyard_connections_open {n}");
        String::from_utf8_lossy(&m.body)
            .lines()
            .any(|l| l == want)
            .then_some(())
    };
    eventually(Duration::from_secs(10), "no connection open", || open_is(0)).await;
    // Hold the only slot with an open keep-alive connection.
    let held = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    eventually(Duration::from_secs(10), "the held connection", || {
        open_is(1)
    })
    .await;
    let addr = r.addr;
    let answer = eventually(Duration::from_secs(5), "a refusal", || async move {
        let a = raw(
            addr,
            b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        a.starts_with("HTTP/1.1 503").then_some(a)
    })
    .await;
    assert!(answer.contains("connection limit"), "{answer}");
    drop(held);
}

/// A failover that lost the primary's last writes leaves the store's
/// version behind the routers'. Routers follow the store (the new primary
/// is the truth) instead of refusing it until the version catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_version_went_back_is_followed() {
    let (v1, v2, v3) = (
        Backend::start("v1").await,
        Backend::start("v2").await,
        Backend::start("v3").await,
    );
    let server = RedisServer::start();
    let store = redis_store(&server);
    deploy(&store, &[("v1", &v1), ("v2", &v2)], &["v1", "v2"]).await;
    let r = TestRouter::start(test_config(), store.clone()).await;
    assert_eq!(get(r.addr, "/", &[]).await.deployment(), "v2");
    // What a replica that missed the last writes looks like: an older
    // version, the same deployments.
    assert_eq!(server.command("SET t:version 1").trim(), "+OK");
    deploy(&store, &[("v3", &v3)], &["v3"]).await;
    eventually(
        Duration::from_secs(10),
        "the router to follow the store",
        || async { (get(r.addr, "/", &[]).await.deployment() == "v3").then_some(()) },
    )
    .await;
    r.shutdown().await;
}
