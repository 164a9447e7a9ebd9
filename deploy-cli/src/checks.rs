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
) -> Result<(), NotServing> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| NotServing::Unknown(e.to_string()))?;
    let url = format!("{}/", router.trim_end_matches('/'));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut consecutive = 0;
    let (mut failed, mut asked) = (0u32, 0u32);
    let mut last = String::from("no answer yet");
    while tokio::time::Instant::now() < deadline {
        match client.get(&url).send().await {
            Ok(res) => {
                asked += 1;
                let selected = res
                    .headers()
                    .get(switchyard_core::names::headers::SELECTED_DEPLOYMENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                // A 5xx naming the deployment: the router routed there and
                // the backend failed (the router's 502/504, or the
                // backend's own error).
                let backend_failed = selected == id.as_str() && res.status().is_server_error();
                if backend_failed {
                    consecutive = 0;
                    failed += 1;
                    last = format!("router answered {} for {id}", res.status());
                    // Every answer so far was the new backend failing: it
                    // is not a router that has not caught up.
                    if failed >= 10 && failed == asked {
                        return Err(NotServing::Failing {
                            failed,
                            asked,
                            last,
                        });
                    }
                } else if selected == id.as_str() {
                    consecutive += 1;
                    // Several in a row: behind a load balancer each may hit another replica.
                    if consecutive >= 5 {
                        return Ok(());
                    }
                    continue;
                } else {
                    consecutive = 0;
                    last = format!(
                        "router answered {} from deployment {selected:?}",
                        res.status()
                    );
                }
            }
            Err(e) => {
                consecutive = 0;
                last = format!("the router at {router} is unreachable: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if failed > 0 && failed * 2 >= asked {
        return Err(NotServing::Failing {
            failed,
            asked,
            last,
        });
    }
    Err(NotServing::Unknown(format!(
        "the router at {router} did not serve {id} within {timeout:?} ({last}); a router replica may be stuck on an old snapshot: check its logs and switchyard_store_up metric"
    )))
}

/// Why the routers do not serve a promoted deployment.
#[derive(Debug)]
pub enum NotServing {
    /// The router routes to it and its backend fails: roll back.
    Failing {
        failed: u32,
        asked: u32,
        last: String,
    },
    /// Anything else (a router that has not caught up, or unreachable).
    Unknown(String),
}

impl std::fmt::Display for NotServing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failing {
                failed,
                asked,
                last,
            } => write!(
                f,
                "{failed} of {asked} requests through the router failed at the new backend ({last})"
            ),
            Self::Unknown(why) => f.write_str(why),
        }
    }
}

impl From<NotServing> for Failure {
    fn from(e: NotServing) -> Self {
        anyhow::anyhow!("{e}").into()
    }
}

/// Refuses, before anything is changed, a check through routers that
/// sign their pins (strict mode) when their secret is not given here: a
/// bare id is stale to them, so every check would fail for the wrong
/// reason.
pub async fn strict_needs_secret(
    store: &switchyard_store::SharedStore,
    env: &dyn switchyard_core::config::EnvSource,
) -> Result<(), Failure> {
    let policy = crate::commands::router_pins(store).await?;
    if policy.is_some_and(|p| p.strict) && pin_keys(env)?.is_none() {
        return Err(crate::usage(format!(
            "the routers are in strict mode (they publish signed pins), and {PIN_SECRET} is not set here: \
             the CLI's checks and preview links must be signed with the routers' secret. Set {PIN_SECRET} \
             to it (on Railway it is on the env service) and run this again"
        )));
    }
    Ok(())
}

/// A health check that never passed.
#[derive(Debug)]
pub struct Unhealthy {
    /// The last answer or connection error, with the wait.
    pub why: String,
    /// Nothing ever answered: the URL's host is down or wrong, which
    /// through a router means the router, not the deployment.
    pub never_answered: bool,
}

impl Unhealthy {
    /// One sentence blaming the part that failed: the router when it never
    /// answered, else the deployment (with what its answer suggests).
    pub fn explain(&self, id: &DeploymentId, url: &str, router: Option<&str>) -> String {
        match router {
            Some(router) if self.never_answered => format!(
                "the router at {router} never answered the health check of {id} ({url}): {}. \
                 Is the router running, and is --router-url (SWITCHYARD_ROUTER_URL) its public address?",
                self.why
            ),
            _ => format!(
                "{id} failed its health check at {url}: {}{}",
                self.why,
                health_hint(&self.why)
            ),
        }
    }
}

/// Polls `url` until it answers 2xx, up to `timeout`.
pub async fn wait_healthy(url: &str, timeout: Duration) -> Result<(), Unhealthy> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Unhealthy {
            why: e.to_string(),
            never_answered: true,
        })?;
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut told = started;
    let mut answered = false;
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
                return Err(Unhealthy {
                    why: format!("answered {}", res.status()),
                    never_answered: false,
                });
            }
            Ok(res) => {
                answered = true;
                format!("answered {}", res.status())
            }
            Err(e) => format!("unreachable ({e})"),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Unhealthy {
                why: format!("{last} after {timeout:?}"),
                never_answered: !answered,
            });
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
    wait_healthy(&url, timeout).await.map_err(|u| {
        anyhow::anyhow!(
            "{}; nothing was promoted",
            u.explain(id, &url, Some(router))
        )
        .into()
    })
}

/// The routers' pin keys, when the routers' secret is given here (strict
/// mode): what preview links and the CLI's own checks sign with.
pub fn pin_keys(
    env: &dyn switchyard_core::config::EnvSource,
) -> Result<Option<switchyard_core::pin::PinKeys>, Failure> {
    switchyard_core::config::Resolver::new(env)
        .optional(&PIN_SECRET)
        .map_err(crate::usage)
}

/// The pin the CLI's own checks through the router use: in strict mode
/// (the routers' `SWITCHYARD_PIN_SECRET` is set here too) a short-lived
/// signed token, else the bare id.
pub fn check_pin(env: &dyn switchyard_core::config::EnvSource, id: &DeploymentId) -> String {
    pin_keys(env).ok().flatten().map_or_else(
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
fn health_hint(why: &str) -> &'static str {
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
