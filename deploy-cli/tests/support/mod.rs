//! An in-process router for CLI tests, reading the store at a Redis URL.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

/// Starts a router on a free loopback port; returns its URL and task.
pub async fn spawn_router(
    redis_url: &str,
) -> (String, tokio::task::JoinHandle<switchyard_router::Exit>) {
    let store: switchyard_store::SharedStore = Arc::new(
        switchyard_store::RedisStore::new(&switchyard_store::RedisSettings::new(
            redis_url,
            "pulse:railway",
        ))
        .unwrap(),
    );
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", public.local_addr().unwrap());
    let config = switchyard_router::RouterConfig {
        replica_id: "cli-test".into(),
        ..Default::default()
    };
    let task = tokio::spawn(switchyard_router::run(
        config,
        store,
        switchyard_router::Listeners {
            public,
            metrics: None,
        },
        std::future::pending(),
    ));
    (url, task)
}
