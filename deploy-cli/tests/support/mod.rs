//! Shared by the CLI tests: an in-process router reading the store at a
//! Redis URL, and (in `railway`) the stack Railway tests start from.

#![allow(dead_code, clippy::unwrap_used)]

pub mod railway;

use std::{
    process::{Command, Output, Stdio},
    sync::Arc,
};

/// The `switchyard` binary against the store at `redis`, with nothing else
/// from this process's environment but `env`.
pub fn command(redis: &str, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.env_clear()
        .env("REDIS_URL", redis)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Runs [`command`] off the async runtime.
pub async fn cli_env(redis: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = command(redis, env, args);
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// The CLI as a person at a shell runs it (with `PATH`), waited for in
/// place, for tests that read like a session.
pub struct Cli {
    pub redis_url: String,
}

impl Cli {
    pub fn run(&self, args: &[&str]) -> Output {
        let path = std::env::var("PATH").unwrap_or_default();
        command(&self.redis_url, &[("PATH", &path)], args)
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", output(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", output(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn list(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["list", "--json"])).unwrap()
    }
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
    let r = InProcessRouter::start(redis_url, config).await;
    (r.url, r.task)
}

/// A router in this process, with its private listener, on free loopback
/// ports.
pub struct InProcessRouter {
    pub url: String,
    /// The private listener (`/metrics`, `/snapshot`).
    pub private: String,
    pub task: RouterTask,
}

impl InProcessRouter {
    pub async fn start(redis_url: &str, config: switchyard_router::RouterConfig) -> Self {
        let settings = switchyard_store::RedisSettings::new(redis_url, "pulse:railway");
        let store: switchyard_store::SharedStore =
            Arc::new(switchyard_store::RedisStore::new(&settings).unwrap());
        let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let private = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", public.local_addr().unwrap());
        let private_url = format!("http://{}", private.local_addr().unwrap());
        let listeners = switchyard_router::Listeners {
            public,
            metrics: Some(private),
        };
        let task = tokio::spawn(switchyard_router::run(
            config,
            store,
            listeners,
            std::future::pending(),
        ));
        Self {
            url,
            private: private_url,
            task,
        }
    }

    /// One unlabelled sample of its metrics.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.private))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        switchyard_testkit::metrics::sample(&text, name)
    }
}

/// `(deployment id, state)` of every deployment in `list --json`'s answer,
/// in its order.
pub fn states(list: &serde_json::Value) -> Vec<(String, String)> {
    list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["deployment_id"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
