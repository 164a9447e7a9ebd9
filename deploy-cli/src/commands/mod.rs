//! One subcommand per file.

pub mod dashboard;
pub mod delete;
pub mod deploy;
pub mod epoch;
pub mod init;
pub mod list;
pub mod preview;
pub mod promote;
pub mod redeploy;
pub mod restore;
pub mod revoke;
pub mod upgrade;

use std::time::Duration;

use switchyard_core::{DeploymentId, Snapshot};

use crate::{Context, Failure, usage};

/// Reads a health path: one the backend serves, so never a path the router
/// answers itself.
pub fn health_path(raw: &str) -> Result<String, String> {
    if reserved(raw) {
        return Err(format!(
            "the router answers that path itself (its own health, or its reserved /_switchyard and \
             /_pulse/internal prefixes), so the check would pass with no backend at all; use a path \
             the backend serves, such as {}",
            switchyard_core::names::backend_paths::META
        ));
    }
    if !raw.starts_with('/') {
        return Err("a path starting with '/'".into());
    }
    Ok(raw.to_string())
}

/// Whether the router answers `path` itself (as routers are configured
/// unless told otherwise), compared as the router compares it: case and
/// dot segments aside, on the path without its query.
fn reserved(path: &str) -> bool {
    let names = switchyard_core::RoutingNames::default();
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let path = path.replace("/./", "/");
    let under = |prefix: &str| {
        path == prefix
            || path.starts_with(&format!("{prefix}/"))
            || path.starts_with(&format!("{prefix};"))
    };
    path == names.health_path || under(&names.client_prefix) || under(&names.internal_prefix)
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

/// Reads the public router URL: an `https://` origin with no path,
/// query, credentials or fragment (`http://` only for loopback, where no
/// one else can listen in).
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

/// The pin settings the live routers report (strict if any is strict: a
/// check must be signed for those).
pub async fn router_pins(
    store: &switchyard_store::SharedStore,
) -> Result<Option<switchyard_core::pin::PinPolicy>, Failure> {
    let replicas = store.replicas().await?;
    let mut reports: Vec<_> = replicas.iter().filter_map(|r| r.report.as_ref()).collect();
    reports.sort_by_key(|r| !r.pins.strict);
    Ok(reports.first().map(|r| r.pins.clone()))
}

/// The one answer for an id (or name) no deployment has, in every command.
pub fn not_found(what: impl std::fmt::Display) -> Failure {
    usage(format!(
        "deployment {what} does not exist; `switchyard status` lists those that do"
    ))
}

pub fn parse_id(raw: &str) -> Result<DeploymentId, Failure> {
    DeploymentId::new(raw).map_err(|e| usage(format!("{e}")))
}

/// The store's snapshot, refused when the store has lost its data (routers
/// still route on deployments it no longer has): acting on it would make
/// things worse, and `status` would otherwise show an empty store as fine.
pub async fn snapshot(ctx: &Context) -> Result<Snapshot, Failure> {
    let snap = ctx
        .store
        .snapshot()
        .await
        .map_err(|e| anyhow::anyhow!("{e}; check --redis-url / REDIS_URL"))?;
    if snap.deployments.is_empty()
        && let Some(lost) = lost_store(ctx).await
    {
        return Err(anyhow::anyhow!("{lost}").into());
    }
    Ok(snap)
}

/// Why an empty store looks like one that lost its data: a live router
/// still routes on deployments, or refuses the store's snapshot. Says how
/// to restore it, naming the routers' private listeners.
async fn lost_store(ctx: &Context) -> Option<String> {
    let replicas = ctx.store.replicas().await.ok()?;
    let holding: Vec<_> = replicas
        .iter()
        .filter_map(|r| Some((r, r.report.as_ref()?)))
        .filter(|(_, report)| report.deployments > 0 || report.store_diverged)
        .collect();
    let (first, report) = holding.first()?;
    let listener = report
        .private_listener
        .as_deref()
        .map(private_url)
        .unwrap_or_else(|| "http://<router's private host>:9091".into());
    Some(format!(
        "the store has no deployments, but {} router {} still {} on {} (replica {}, snapshot version {}): \
         the store lost its data (a Redis restart without persistence, or a flush). Refill it from a \
         router's private listener, then run this again:\n  switchyard restore --from-router {listener}",
        holding.len(),
        if holding.len() == 1 {
            "replica"
        } else {
            "replicas"
        },
        if holding.len() == 1 {
            "routes"
        } else {
            "route"
        },
        match report.deployments {
            1 => "1 deployment".to_string(),
            n => format!("{n} deployments"),
        },
        first.replica,
        report
            .snapshot_version
            .map_or_else(|| "none".to_string(), |v| v.to_string()),
    ))
}

/// A private listener's bound address as a URL to reach it: a wildcard bind
/// says where the host goes.
pub fn private_url(bound: &str) -> String {
    match bound.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => {
            format!("http://<router's private host>:{}", a.port())
        }
        Ok(a) => format!("http://{a}"),
        Err(_) => format!("http://{bound}"),
    }
}
