//! `switchyard revoke ID [--promote OTHER]`: stop serving a deployment now.

use clap::Args;
use switchyard_core::UnixTime;

use super::parse_id;
use crate::{Context, Failure, commands::promote::usage_if_caller};

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
    ctx.store
        .revoke(&id, successor.as_ref(), UnixTime::now())
        .await
        .map_err(usage_if_caller)?;
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
