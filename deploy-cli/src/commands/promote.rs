//! `switchyard promote ID [--percent N]` and `switchyard rollback`:
//! instant, no rebuild.

use std::time::Duration;
use switchyard_store::JournalKind;

use clap::Args;
use switchyard_core::{DeploymentId, UnixTime, config::EnvSource};

use super::parse_id;
use crate::{
    Context, Failure,
    checks::{check_pinned, wait_until_serving},
    usage,
};

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The deployment to make active
    pub deployment_id: String,
    /// Send only this share (1-99) of unpinned traffic to it; 100 completes the rollout
    #[arg(long)]
    pub percent: Option<u8>,
    #[command(flatten)]
    pub verify: Verify,
    /// Raise the share step by step, watching the 5xx ratio, and roll back by itself when it is too high
    #[arg(long)]
    pub watch: bool,
    /// With --watch: roll back when the deployment's 5xx ratio exceeds this (0.0-1.0) [default: 0.05]
    #[arg(long)]
    pub max_5xx_ratio: Option<f64>,
    /// With --watch: the shares to go through, in percent [default: 10,25,50,100]
    #[arg(long, value_delimiter = ',')]
    pub steps: Option<Vec<u8>>,
    /// With --watch: how long each step runs before the next [default: 60s]
    #[arg(long)]
    pub step_interval: Option<String>,
    /// With --watch: a step holds until it has this many requests to judge by [default: 20]
    #[arg(long)]
    pub min_requests: Option<u64>,
    /// Move unpinned traffic to a lower state epoch than the active one's
    #[arg(long)]
    pub force: bool,
    /// With --watch: a step still short of --min-requests this long after it started rolls back and fails [default: 5 x --step-interval]
    #[arg(long)]
    pub step_deadline: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub verify: Verify,
    /// Roll back to a lower state epoch than the active one's
    #[arg(long)]
    pub force: bool,
}

/// How a promotion is verified through the public router: the pinned
/// health check before, the unpinned check after. The flags `deploy`,
/// `promote` and `rollback` share.
/// (`--router-url` and `--health-path` are settings: `settings.rs`.)
#[derive(Debug, Args)]
pub struct Verify {
    /// How long each check may take [default: 60s]
    #[arg(long)]
    pub timeout: Option<String>,
}

impl Verify {
    /// The checks these flags (or their variables) ask for, read once: a
    /// bad value is an error now, whether or not a router is given.
    pub fn resolve(&self, env: &dyn EnvSource) -> Result<Checks, Failure> {
        use crate::settings::{HEALTH_PATH, ROUTER_URL};
        let r = switchyard_core::config::Resolver::new(env);
        Ok(Checks {
            router: r.optional(&ROUTER_URL).map_err(usage)?,
            health_path: r.get(&HEALTH_PATH).map_err(usage)?,
            timeout: super::timeout(
                "--timeout",
                self.timeout.as_deref(),
                Duration::from_secs(60),
            )?,
        })
    }
}

/// The checks of a promotion, resolved.
#[derive(Debug, Clone)]
pub struct Checks {
    pub router: Option<String>,
    pub health_path: String,
    pub timeout: Duration,
}

impl Checks {
    /// The pinned check; nothing to do without a router URL.
    pub(crate) async fn before(
        &self,
        env: &dyn EnvSource,
        id: &DeploymentId,
    ) -> Result<(), Failure> {
        if let Some(r) = &self.router {
            check_pinned(env, r, id, &self.health_path, self.timeout).await?;
        }
        Ok(())
    }

    /// The unpinned check: every replica serves `id`.
    async fn after(&self, id: &DeploymentId) -> Result<(), Failure> {
        if let Some(r) = &self.router {
            wait_until_serving(r, id, self.timeout).await?;
        }
        Ok(())
    }
}

pub async fn run(ctx: &Context, env: &dyn EnvSource, args: PromoteArgs) -> Result<(), Failure> {
    let id = parse_id(&args.deployment_id)?;
    // Fail at once where a health check could not help.
    let snap = super::snapshot(ctx).await?;
    match snap.get(id.as_str()) {
        None => {
            return Err(super::not_found(&id));
        }
        Some(d) if d.state == switchyard_core::DeploymentState::Revoked => {
            return Err(usage(format!(
                "deployment {id} is revoked and cannot serve again; deploy it anew"
            )));
        }
        Some(d) => epoch_guard(&snap, d, args.force)?,
    }
    let checks = args.verify.resolve(env)?;
    if checks.router.is_some() {
        crate::checks::strict_needs_secret(&ctx.store, env).await?;
    } else if !ctx.json {
        eprintln!(
            "note: no --router-url (SWITCHYARD_ROUTER_URL): promoting without the checks through the router \
             (pinned health before, unpinned serving after)"
        );
    }
    if args.watch {
        return crate::rollout::watch(ctx, env, &id, &args, &checks).await;
    }
    match args.percent {
        Some(0) | Some(101..) => return Err(usage("--percent must be 1 to 100")),
        Some(p @ 1..=99) => {
            checks.before(env, &id).await?;
            ctx.store
                .set_rollout(Some((&id, p)))
                .await
                .map_err(usage_if_caller)?;
            ctx.journal(
                JournalKind::Rollout,
                &id,
                format!("{p}% of unpinned traffic"),
            )
            .await;
            ctx.say(
                || format!("{id} now gets {p}% of unpinned traffic\n"),
                || serde_json::json!({ "deployment_id": id, "rollout_percent": p }),
            );
            return Ok(());
        }
        _ => {}
    }
    promote(ctx, env, &id, &checks, JournalKind::Promoted).await
}

pub async fn rollback(
    ctx: &Context,
    env: &dyn EnvSource,
    args: RollbackArgs,
) -> Result<(), Failure> {
    let snap = super::snapshot(ctx).await?;
    if let Some(r) = &snap.rollout {
        ctx.store.set_rollout(None).await?;
        ctx.journal(
            JournalKind::RolledBack,
            &r.deployment_id,
            format!("rollout stopped at {}%", r.percent),
        )
        .await;
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
    epoch_guard(&snap, target, args.force)?;
    let id = target.deployment_id.clone();
    let checks = args.verify.resolve(env)?;
    promote(ctx, env, &id, &checks, JournalKind::RolledBack).await
}

pub(crate) async fn promote(
    ctx: &Context,
    env: &dyn EnvSource,
    id: &DeploymentId,
    checks: &Checks,
    kind: JournalKind,
) -> Result<(), Failure> {
    checks.before(env, id).await?;
    let p = ctx
        .store
        .promote(id, UnixTime::now())
        .await
        .map_err(usage_if_caller)?;
    let from = p
        .previous
        .as_ref()
        .map_or(String::new(), |prev| format!("{prev} drains"));
    ctx.journal(kind, id, from).await;
    checks.after(id).await?;
    ctx.say(
        || match &p.previous {
            Some(prev) => format!("{id} is active; {prev} is draining\n"),
            None => format!("{id} is active\n"),
        },
        || serde_json::json!({ "deployment_id": id, "previous": p.previous, "version": p.version }),
    );
    Ok(())
}

/// Pinning protects code, not shared data: a build older than the active
/// one's state epoch may not understand what the newer one wrote (a
/// migrated schema, a new session format), so unpinned traffic does not
/// move down an epoch unless asked to.
fn epoch_guard(
    snap: &switchyard_core::Snapshot,
    target: &switchyard_core::Deployment,
    force: bool,
) -> Result<(), Failure> {
    let Some(active) = snap.active_deployment() else {
        return Ok(());
    };
    if force || target.epoch() >= active.epoch() {
        return Ok(());
    }
    Err(usage(format!(
        "{} is at state epoch {}, below the active {}'s {}: it may not understand the state the newer build wrote. Pass --force if the state is compatible",
        target.deployment_id,
        target.epoch(),
        active.deployment_id,
        active.epoch()
    )))
}

/// Store refusals caused by the request (unknown id, wrong state) are usage
/// errors; the store being down is not.
pub fn usage_if_caller(e: switchyard_store::StoreError) -> Failure {
    match e {
        switchyard_store::StoreError::NotFound(id) => super::not_found(id),
        e if e.is_transient() => e.into(),
        e => usage(e),
    }
}
