//! The checks through the public router that deploy, promote, rollback
//! and `--watch` share: a deployment must answer its health path with its
//! pin before it gets traffic, and users must reach it unpinned after.

use crate::settings::PIN_SECRET;
use std::time::Duration;
use switchyard_core::names::DEFAULT_QUERY_PARAM;

use switchyard_core::DeploymentId;

use crate::Failure;

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
                    .get(switchyard_core::names::headers::SELECTED_DEPLOYMENT)
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

/// Polls `url` until it answers 2xx, up to `timeout`.
pub async fn wait_healthy(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut told = started;
    loop {
        let last = match client.get(url).send().await {
            Ok(res) if res.status().is_success() => return Ok(()),
            // The backend's own 404 will not fix itself: the path is
            // wrong. (The router's 404, a deployment it has not heard of
            // yet, may.)
            Ok(res)
                if res.status() == reqwest::StatusCode::NOT_FOUND
                    && !res.headers().contains_key("x-switchyard") =>
            {
                return Err(format!("answered {}", res.status()));
            }
            Ok(res) => format!("answered {}", res.status()),
            Err(e) => format!("unreachable ({e})"),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(format!("{last} after {timeout:?}"));
        }
        if now.duration_since(told) >= Duration::from_secs(5) {
            told = now;
            eprintln!(
                "  waiting for {url} to answer 2xx: {}s of {}s, last {last}",
                now.duration_since(started).as_secs(),
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The pinned health check through the public router that precedes every
/// promotion.
pub async fn check_pinned(
    env: &dyn switchyard_core::config::EnvSource,
    router: &str,
    id: &DeploymentId,
    health_path: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let url = format!(
        "{}{health_path}?{DEFAULT_QUERY_PARAM}={}",
        router.trim_end_matches('/'),
        check_pin(env, id)
    );
    wait_healthy(&url, timeout).await.map_err(|why| {
        anyhow::anyhow!(
            "{id} failed its health check at {url}: {why}{}; nothing was promoted",
            health_hint(&why)
        )
        .into()
    })
}

/// The routers' pin keys, when the routers' secret is given here (strict
/// mode): what preview links and the CLI's own checks sign with.
pub fn pin_keys(
    env: &dyn switchyard_core::config::EnvSource,
    flag: Option<&str>,
) -> Result<Option<switchyard_core::pin::PinKeys>, Failure> {
    let r = switchyard_core::config::Resolver::new(env);
    let Some((secret, from)) = r.raw(PIN_SECRET, flag) else {
        return Ok(None);
    };
    switchyard_core::pin::PinKeys::new(secret.trim().as_bytes())
        .map(Some)
        .map_err(|why| {
            crate::usage(format!(
                "invalid value for {PIN_SECRET} (from {from}): {why}"
            ))
        })
}

/// The pin the CLI's own checks through the router use: in strict mode
/// (the routers' `SWITCHYARD_PIN_SECRET` is set here too) a short-lived
/// signed token, else the bare id.
pub fn check_pin(env: &dyn switchyard_core::config::EnvSource, id: &DeploymentId) -> String {
    pin_keys(env, None).ok().flatten().map_or_else(
        || id.to_string(),
        |keys| {
            keys.mint(
                id,
                switchyard_core::UnixTime::now(),
                Duration::from_secs(600),
            )
        },
    )
}

/// What a failed health check's last answer means for the person running
/// the command.
pub fn health_hint(why: &str) -> &'static str {
    if why.contains("404") {
        " (the path is missing on the backend: pass --health-path, or set SWITCHYARD_HEALTH_PATH or health_path in switchyard.toml)"
    } else if why.contains("502") {
        " (the router could not reach the backend: is its URL right and is it listening?)"
    } else if why.contains("409") {
        " (the router calls the pin stale: the deployment is gone or revoked)"
    } else {
        ""
    }
}
