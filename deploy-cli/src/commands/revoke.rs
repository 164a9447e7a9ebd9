//! `switchyard revoke ID [--promote OTHER]`: stop serving a deployment now.

use clap::Args;
use switchyard_core::{DeploymentState, UnixTime};
use switchyard_store::JournalKind;
use switchyard_store::StoreError;

use super::parse_id;
use crate::{Context, Failure, commands::promote::usage_if_caller, usage};

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The deployment that must stop serving
    pub deployment_id: String,
    /// Promote this deployment in the same step (required to revoke the active one)
    #[arg(long)]
    pub promote: Option<String>,
}

pub async fn run(ctx: &Context, args: RevokeArgs) -> Result<(), Failure> {
    let id = parse_id(&args.deployment_id)?;
    let successor = args.promote.as_deref().map(parse_id).transpose()?;
    ctx.confirm(&format!(
        "Revoke {id}? Its pinned clients get stale affinity and its websockets close now."
    ))?;
    match ctx
        .store
        .revoke(&id, successor.as_ref(), UnixTime::now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::WrongState { state, .. })
            if successor.is_none() && state == DeploymentState::Active.to_string() =>
        {
            return Err(usage(format!(
                "{id} is the active deployment: revoking it needs a successor that takes over \
                 in the same step. Pass --promote OTHER, for example `switchyard revoke {id} --promote {}`",
                successor_hint(ctx).await
            )));
        }
        Err(e) => return Err(usage_if_caller(e)),
    }
    let detail = successor
        .as_ref()
        .map_or(String::new(), |s| format!("{s} promoted in its place"));
    ctx.journal(JournalKind::Revoked, &id, detail).await;
    ctx.say(
        || {
            format!(
                "{id} is revoked; the janitor deletes it on its next run{}\n",
                successor
                    .as_ref()
                    .map_or(String::new(), |s| format!("; {s} is active"))
            )
        },
        || serde_json::json!({ "revoked": id, "promoted": successor }),
    );
    Ok(())
}

/// The deployment a rollback would pick (the newest draining one), to
/// name in the hint; a placeholder when there is none.
async fn successor_hint(ctx: &Context) -> String {
    let Ok(snap) = ctx.store.snapshot().await else {
        return "OTHER".into();
    };
    snap.deployments
        .values()
        .filter(|d| d.state == DeploymentState::Draining)
        .max_by(|a, b| {
            let key = |d: &switchyard_core::Deployment| d.drain_started_at.map_or(0.0, |t| t.0);
            key(a).total_cmp(&key(b))
        })
        .map_or_else(|| "OTHER".into(), |d| d.deployment_id.to_string())
}
