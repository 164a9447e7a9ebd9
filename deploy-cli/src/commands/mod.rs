//! One subcommand per file.

pub mod delete;
pub mod deploy;
pub mod init;
pub mod list;
pub mod promote;
pub mod provision;
pub mod restore;
pub mod revoke;
pub mod upgrade;

use std::time::Duration;

use switchyard_core::{DeploymentId, Snapshot};

use crate::{Context, Failure, usage};

pub fn parse_id(raw: &str) -> Result<DeploymentId, Failure> {
    DeploymentId::new(raw).map_err(|e| usage(format!("{e}")))
}

/// Polls the public router until an unpinned request is answered by `id`,
/// so a command only reports success once users actually reach it. Every
/// replica must have it: a replica stuck on an old snapshot keeps failing.
pub async fn wait_until_serving(
    router: &str,
    id: &DeploymentId,
    timeout: Duration,
) -> Result<(), Failure> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let url = format!("{}/", router.trim_end_matches('/'));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut consecutive = 0;
    let mut last = String::from("no answer yet");
    while tokio::time::Instant::now() < deadline {
        match client.get(&url).send().await {
            Ok(res) => {
                let selected = res
                    .headers()
                    .get("x-pulse-selected-deployment")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if selected == id.as_str() {
                    consecutive += 1;
                    // Several in a row: behind a load balancer each may hit another replica.
                    if consecutive >= 5 {
                        return Ok(());
                    }
                    continue;
                }
                consecutive = 0;
                last = format!(
                    "router answered {} from deployment {selected:?}",
                    res.status()
                );
            }
            Err(e) => {
                consecutive = 0;
                last = format!("router unreachable: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(anyhow::anyhow!("the router at {router} did not serve {id} within {timeout:?} ({last}); a router replica may be stuck on an old snapshot: check its logs and switchyard_store_up metric").into())
}

pub async fn snapshot(ctx: &Context) -> Result<Snapshot, Failure> {
    ctx.store
        .snapshot()
        .await
        .map_err(|e| anyhow::anyhow!("{e}; check --redis-url / REDIS_URL").into())
}

/// Polls `url` until it answers 2xx, up to `timeout`.
pub async fn wait_healthy(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match client.get(url).send().await {
            Ok(res) if res.status().is_success() => return Ok(()),
            Ok(res) => format!("answered {}", res.status()),
            Err(e) => format!("unreachable ({e})"),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{last} after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The pinned health check through the public router that precedes every
/// promotion.
pub async fn check_pinned(
    router: &str,
    id: &DeploymentId,
    health_path: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let url = format!(
        "{}{health_path}?pulse_deployment={id}",
        router.trim_end_matches('/')
    );
    wait_healthy(&url, timeout).await.map_err(|why| {
        anyhow::anyhow!("{id} failed its health check at {url}: {why}; nothing was promoted").into()
    })
}
