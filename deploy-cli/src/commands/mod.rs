//! One subcommand per file.

pub mod delete;
pub mod deploy;
pub mod init;
pub mod list;
pub mod preview;
pub mod promote;
pub mod provision;
pub mod restore;
pub mod revoke;
pub mod upgrade;

use std::time::Duration;

use switchyard_core::{DeploymentId, Snapshot};

use crate::{Context, Failure, usage};

pub const HEALTH_PATH: switchyard_core::config::Setting =
    switchyard_core::config::Setting::new("--health-path", &["SWITCHYARD_HEALTH_PATH"]);

/// The path a deployment must answer 2xx on before it is promoted: flag,
/// `SWITCHYARD_HEALTH_PATH`, `health_path` in switchyard.toml, else Pulse's
/// `/_pulse/meta`.
pub fn health_path(
    env: &dyn switchyard_core::config::EnvSource,
    flag: Option<&str>,
) -> Result<String, Failure> {
    let r = switchyard_core::config::Resolver::new(env);
    match r.raw(HEALTH_PATH, flag) {
        None => Ok("/_pulse/meta".into()),
        Some((p, _)) if p.starts_with('/') => Ok(p),
        Some((p, from)) => Err(usage(format!(
            "invalid value {p:?} for {HEALTH_PATH} (from {from}): a path starting with '/'"
        ))),
    }
}

/// A wait limit from a flag: a duration longer than zero.
pub fn timeout(flag: &str, raw: Option<&str>, default: Duration) -> Result<Duration, Failure> {
    let d = match raw {
        Some(t) => {
            switchyard_core::config::parse_duration(t).map_err(|e| usage(format!("{flag}: {e}")))?
        }
        None => default,
    };
    if d.is_zero() {
        return Err(usage(format!("{flag} must be longer than 0s")));
    }
    Ok(d)
}

pub const ROUTER_URL: switchyard_core::config::Setting =
    switchyard_core::config::Setting::new("--router-url", &["SWITCHYARD_ROUTER_URL"]);

/// The public router URL, when given: an `https://` origin with no path,
/// query, credentials or fragment (`http://` only for loopback, where no
/// one else can listen in).
pub fn router_url(
    env: &dyn switchyard_core::config::EnvSource,
    flag: Option<&str>,
) -> Result<Option<String>, Failure> {
    let r = switchyard_core::config::Resolver::new(env);
    let Some((raw, from)) = r.raw(ROUTER_URL, flag) else {
        return Ok(None);
    };
    public_origin(&raw).map(Some).map_err(|why| {
        usage(format!(
            "invalid value {raw:?} for {ROUTER_URL} (from {from}): {why}"
        ))
    })
}

pub fn public_origin(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => return Err("no host".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("use https:// (plain http:// only for a router on loopback)".into()),
        other => return Err(format!("{other}:// is not a web origin; use https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(
            "must be an origin only, like https://app.example.com (no path, query or fragment)"
                .into(),
        );
    }
    Ok(url.origin().ascii_serialization())
}

/// The pin the CLI's own checks through the router use: in strict mode
/// (the routers' `SWITCHYARD_PIN_SECRET` is set here too) a short-lived
/// signed token, else the bare id.
pub fn check_pin(env: &dyn switchyard_core::config::EnvSource, id: &DeploymentId) -> String {
    env.var("SWITCHYARD_PIN_SECRET")
        .and_then(|s| switchyard_core::pin::PinKeys::new(s.trim().as_bytes()).ok())
        .map_or_else(
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
    env: &dyn switchyard_core::config::EnvSource,
    router: &str,
    id: &DeploymentId,
    health_path: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let url = format!(
        "{}{health_path}?pulse_deployment={}",
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
