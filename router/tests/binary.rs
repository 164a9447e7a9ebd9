//! The real `switchyard-router` binary: SIGTERM drain, health probe, bad
//! configuration.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::StreamExt;
use support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn router(redis_url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", redis_url)
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_METRICS_LISTEN", "off")
        .env("SWITCHYARD_SHUTDOWN_TIMEOUT", "5s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn health_check(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .arg("--health-check")
        .status()
        .unwrap()
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websockets_with_1001_and_exits_zero() {
    let redis = RedisServer::start();
    let store: switchyard_store::SharedStore = std::sync::Arc::new(
        switchyard_store::RedisStore::new(&switchyard_store::RedisSettings::new(
            redis.url(),
            "pulse:railway",
        ))
        .unwrap(),
    );
    let v1 = Backend::start("v1").await;
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let port = free_port();
    assert!(!health_check(port), "nothing listens yet");
    let mut child = router(&redis.url(), port);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    eventually(
        Duration::from_secs(10),
        "router binary to serve",
        || async move {
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
    assert!(health_check(port));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                break u16::from(f.code);
            }
            Some(Ok(_)) => continue,
            other => panic!("expected close, got {other:?}"),
        }
    };
    assert_eq!(close, 1001);
    let _ = ws.next().await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn bad_config_exits_two_naming_the_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDIS_URL"));
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("SWITCHYARD_BACKEND_TIMEOUT", "whenever")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SWITCHYARD_BACKEND_TIMEOUT"));
}
