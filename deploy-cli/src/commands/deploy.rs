//! `switchyard deploy`: register, check health, promote.

use std::time::Duration;

use clap::Args;
use switchyard_core::{
    DeploymentId, UnixTime,
    config::{EnvSource, Resolver, Setting, parse_duration},
};
use switchyard_store::{NewDeployment, StoreError};

use super::{parse_id, wait_until_serving};
use crate::{Context, Failure, usage};

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Backend base URL on the static platform, e.g. http://10.0.0.5:8000
    #[arg(long)]
    pub url: Option<String>,
    /// Deployment name; the id becomes NAME-<6 hex> [env: PULSE_RAILWAY_DEPLOYMENT_NAME, default: prod]
    #[arg(long)]
    pub deployment_name: Option<String>,
    /// Use exactly this deployment id instead of generating one
    #[arg(long)]
    pub deployment_id: Option<String>,
    /// Leave it pending: a preview reachable only with a pin
    #[arg(long)]
    pub no_promote: bool,
    /// Path that must answer 2xx before promotion [default: /_pulse/meta]
    #[arg(long)]
    pub health_path: Option<String>,
    /// Public router URL; checks go through it (pinned before promotion, unpinned after) [env: SWITCHYARD_ROUTER_URL]
    #[arg(long)]
    pub router_url: Option<String>,
    /// How long to wait for the health check and for the router [default: 60s]
    #[arg(long)]
    pub timeout: Option<String>,
}

const NAME: Setting = Setting::new("--deployment-name", &["PULSE_RAILWAY_DEPLOYMENT_NAME"]);
const ROUTER_URL: Setting = Setting::new("--router-url", &["SWITCHYARD_ROUTER_URL"]);

pub fn new_id(name: &str) -> Result<DeploymentId, Failure> {
    use rand::Rng;
    let suffix: u32 = rand::rng().random_range(0..0x100_0000);
    DeploymentId::new(&format!("{name}-{suffix:06x}"))
        .map_err(|e| usage(format!("deployment name {name:?} cannot form an id: {e}")))
}

pub async fn run(ctx: &Context, env: &dyn EnvSource, args: DeployArgs) -> Result<(), Failure> {
    let r = Resolver::new(env);
    let Some(url) = args.url.clone() else {
        return Err(usage(
            "the static platform needs --url, the backend's base URL (for example http://10.0.0.5:8000)",
        ));
    };
    if !url.starts_with("http://") || reqwest::Url::parse(&url).is_err() {
        return Err(usage(format!(
            "--url {url:?} must be an http:// URL of the backend"
        )));
    }
    let id = match &args.deployment_id {
        Some(raw) => parse_id(raw)?,
        None => {
            let name = r
                .raw(NAME, args.deployment_name.as_deref())
                .map_or_else(|| "prod".to_string(), |(v, _)| v);
            new_id(&name)?
        }
    };
    let timeout = match &args.timeout {
        Some(t) => parse_duration(t).map_err(|e| usage(format!("--timeout: {e}")))?,
        None => Duration::from_secs(60),
    };
    let router = r
        .raw(ROUTER_URL, args.router_url.as_deref())
        .map(|(v, _)| v);
    let health_path = args
        .health_path
        .clone()
        .unwrap_or_else(|| "/_pulse/meta".into());
    let before = super::snapshot(ctx).await?;

    let new = NewDeployment {
        id: id.clone(),
        service_name: id.to_string(),
        backend_url: url.clone(),
        service_id: None,
        now: UnixTime::now(),
    };
    match ctx.store.register(new).await {
        Ok(()) => {}
        Err(e @ (StoreError::AlreadyExists(_) | StoreError::ServiceTaken { .. })) => {
            return Err(usage(e));
        }
        Err(e) => return Err(e.into()),
    }
    step(ctx, &format!("registered {id} (pending) -> {url}"));

    // Health: through the router with the pin when we know it, else direct.
    let check_url = match &router {
        Some(r) => format!(
            "{}{health_path}?pulse_deployment={id}",
            r.trim_end_matches('/')
        ),
        None => format!("{}{health_path}", url.trim_end_matches('/')),
    };
    if let Err(why) = wait_healthy(&check_url, timeout).await {
        // Leave nothing half made: the pending record goes, the active stays.
        let _ = ctx.store.delete_unless_active(&id).await;
        let serving = before
            .active
            .as_ref()
            .map_or("nothing".to_string(), |a| a.to_string());
        return Err(anyhow::anyhow!(
            "{id} failed its health check at {check_url}: {why}. It was removed; {serving} keeps serving. Fix the backend (or pass --health-path) and run deploy again."
        )
        .into());
    }
    step(ctx, &format!("health check passed: {check_url}"));

    let mut previous = None;
    if !args.no_promote {
        let p = ctx.store.promote(&id, UnixTime::now()).await?;
        previous = p.previous;
        step(
            ctx,
            &format!(
                "promoted {id}{}",
                previous
                    .as_ref()
                    .map_or(String::new(), |p| format!("; {p} is draining"))
            ),
        );
        if let Some(r) = &router {
            wait_until_serving(r, &id, timeout).await?;
            step(ctx, &format!("router {r} serves {id}"));
        }
    } else {
        step(
            ctx,
            &format!(
                "left pending: reach it with ?pulse_deployment={id}; promote with `switchyard promote {id}`"
            ),
        );
    }
    if ctx.json {
        ctx.say(String::new, || {
            serde_json::json!({
                "deployment_id": id,
                "backend_url": url,
                "state": if args.no_promote { "pending" } else { "active" },
                "previous": previous,
            })
        });
    }
    Ok(())
}

fn step(ctx: &Context, line: &str) {
    if ctx.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

async fn wait_healthy(url: &str, timeout: Duration) -> Result<(), String> {
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
