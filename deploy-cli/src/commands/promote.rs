//! `switchyard promote ID [--percent N]` and `switchyard rollback`:
//! instant, no rebuild.

use std::time::Duration;

use clap::Args;
use switchyard_core::{
    DeploymentId, UnixTime,
    config::{EnvSource, Resolver, Setting},
};

use super::{parse_id, wait_until_serving};
use crate::{Context, Failure, usage};

const ROUTER_URL: Setting = Setting::new("--router-url", &["SWITCHYARD_ROUTER_URL"]);

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The deployment to make active
    pub deployment_id: String,
    /// Send only this share (1-99) of unpinned traffic to it; 100 completes the rollout
    #[arg(long)]
    pub percent: Option<u8>,
    /// Public router URL; after promotion, wait until it serves the deployment [env: SWITCHYARD_ROUTER_URL]
    #[arg(long)]
    pub router_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Public router URL; wait until it serves the restored deployment [env: SWITCHYARD_ROUTER_URL]
    #[arg(long)]
    pub router_url: Option<String>,
}

pub async fn run(ctx: &Context, env: &dyn EnvSource, args: PromoteArgs) -> Result<(), Failure> {
    let id = parse_id(&args.deployment_id)?;
    match args.percent {
        Some(0) | Some(101..) => return Err(usage("--percent must be 1 to 100")),
        Some(p @ 1..=99) => {
            ctx.store
                .set_rollout(Some((&id, p)))
                .await
                .map_err(usage_if_caller)?;
            ctx.say(
                || format!("{id} now gets {p}% of unpinned traffic\n"),
                || serde_json::json!({ "deployment_id": id, "rollout_percent": p }),
            );
            return Ok(());
        }
        _ => {}
    }
    promote(ctx, env, &id, args.router_url.as_deref()).await
}

pub async fn rollback(
    ctx: &Context,
    env: &dyn EnvSource,
    args: RollbackArgs,
) -> Result<(), Failure> {
    let snap = super::snapshot(ctx).await?;
    if let Some(r) = &snap.rollout {
        ctx.store.set_rollout(None).await?;
        let active = snap
            .active
            .as_ref()
            .map_or("-".into(), DeploymentId::to_string);
        ctx.say(
            || {
                format!(
                    "rollout of {} stopped; all unpinned traffic is back on {active}\n",
                    r.deployment_id
                )
            },
            || serde_json::json!({ "stopped_rollout": r.deployment_id, "active": snap.active }),
        );
        return Ok(());
    }
    // Most recently drained first; on Railway, only one whose service
    // still exists can serve again.
    let mut draining: Vec<_> = snap
        .in_state(switchyard_core::DeploymentState::Draining)
        .collect();
    draining.sort_by(|a, b| {
        let key = |d: &switchyard_core::Deployment| d.drain_started_at.map_or(0.0, UnixTime::secs);
        key(b).total_cmp(&key(a))
    });
    let live_services = match &ctx.railway {
        Some(rp) => Some(rp.client().project(rp.project_id()).await?.services),
        None => None,
    };
    let target = draining.into_iter().find(|d| {
        live_services.as_ref().is_none_or(|services| {
            services
                .iter()
                .any(|s| Some(&s.id) == d.service_id.as_ref() || s.name == d.service_name)
        })
    });
    let Some(target) = target else {
        return Err(anyhow::anyhow!("nothing to roll back to: no draining deployment with a live service is left (the janitor deletes drained ones)").into());
    };
    let id = target.deployment_id.clone();
    promote(ctx, env, &id, args.router_url.as_deref()).await
}

async fn promote(
    ctx: &Context,
    env: &dyn EnvSource,
    id: &DeploymentId,
    router_flag: Option<&str>,
) -> Result<(), Failure> {
    let p = ctx
        .store
        .promote(id, UnixTime::now())
        .await
        .map_err(usage_if_caller)?;
    let router = Resolver::new(env)
        .raw(ROUTER_URL, router_flag)
        .map(|(v, _)| v);
    if let Some(r) = &router {
        wait_until_serving(r, id, Duration::from_secs(60)).await?;
    }
    ctx.say(
        || match &p.previous {
            Some(prev) => format!("{id} is active; {prev} is draining\n"),
            None => format!("{id} is active\n"),
        },
        || serde_json::json!({ "deployment_id": id, "previous": p.previous, "version": p.version }),
    );
    Ok(())
}

/// Store refusals caused by the request (unknown id, wrong state) are usage
/// errors; the store being down is not.
pub fn usage_if_caller(e: switchyard_store::StoreError) -> Failure {
    if e.is_transient() { e.into() } else { usage(e) }
}
