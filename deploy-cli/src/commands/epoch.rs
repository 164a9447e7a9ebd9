//! `switchyard retire-below-epoch N`: after a contract-phase migration,
//! revoke every deployment whose state epoch is below N in one atomic step
//! (their pins go stale and their clients reload onto the active one).

use clap::Args;
use switchyard_core::UnixTime;
use switchyard_store::JournalKind;

use crate::{Context, Failure, commands::promote::usage_if_caller};

#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The lowest state epoch that may keep serving
    pub epoch: u64,
}

pub async fn run(ctx: &Context, args: RetireArgs) -> Result<(), Failure> {
    let n = args.epoch;
    ctx.confirm(&format!(
        "Revoke every deployment below state epoch {n}? Their pinned clients reload now."
    ))?;
    let revoked = ctx
        .store
        .retire_below_epoch(n, UnixTime::now())
        .await
        .map_err(usage_if_caller)?;
    for id in &revoked {
        ctx.journal(
            JournalKind::EpochRetired,
            id,
            format!("below state epoch {n}"),
        )
        .await;
    }
    ctx.say(
        || match revoked.len() {
            0 => format!("nothing below state epoch {n}\n"),
            1 => format!(
                "revoked 1 deployment below state epoch {n}: {}\n",
                revoked[0]
            ),
            k => format!(
                "revoked {k} deployments below state epoch {n}: {}\n",
                revoked
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        || serde_json::json!({ "epoch": n, "revoked": revoked }),
    );
    Ok(())
}
