//! Shared by the CLI tests: an in-process router reading the store at a
//! Redis URL, and (in `railway`) the stack Railway tests start from.

#![allow(dead_code, clippy::unwrap_used)]

pub mod railway;

use std::{
    process::{Command, Output, Stdio},
    sync::Arc,
};

/// Runs the `switchyard` binary against the store at `redis`, with nothing
/// else from this process's environment but `env`.
pub async fn cli_env(redis: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.env_clear()
        .env("REDIS_URL", redis)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

pub async fn cli(redis: &str, args: &[&str]) -> Output {
    cli_env(redis, &[], args).await
}

/// Both output streams, for failure messages.
pub fn output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", output(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

type RouterTask = tokio::task::JoinHandle<switchyard_router::Exit>;

/// Starts a router on a free loopback port; returns its URL and task.
pub async fn spawn_router(redis_url: &str) -> (String, RouterTask) {
    let config = switchyard_router::RouterConfig {
        replica_id: "cli-test".into(),
        ..Default::default()
    };
    spawn_router_with(redis_url, config).await
}

/// The same with a given configuration (replica id, rollout key, heartbeat).
pub async fn spawn_router_with(
    redis_url: &str,
    config: switchyard_router::RouterConfig,
) -> (String, RouterTask) {
    let settings = switchyard_store::RedisSettings::new(redis_url, "pulse:railway");
    let store: switchyard_store::SharedStore =
        Arc::new(switchyard_store::RedisStore::new(&settings).unwrap());
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", public.local_addr().unwrap());
    let listeners = switchyard_router::Listeners {
        public,
        metrics: None,
    };
    let task = tokio::spawn(switchyard_router::run(
        config,
        store,
        listeners,
        std::future::pending(),
    ));
    (url, task)
}
