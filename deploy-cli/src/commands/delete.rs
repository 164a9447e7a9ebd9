//! `switchyard delete ID` and `switchyard remove NAME`. Both refuse the
//! active deployment.

use clap::Args;
use switchyard_core::Deployment;
use switchyard_platform::Retired;

use super::parse_id;
use crate::{Context, Failure, usage};

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The deployment to delete (positional, as for promote; --deployment-id still works)
    #[arg(value_name = "ID", required_unless_present = "deployment_id_flag")]
    pub deployment_id: Option<String>,
    /// The same, as a flag (older scripts)
    #[arg(
        long = "deployment-id",
        id = "deployment_id_flag",
        value_name = "ID",
        hide = true
    )]
    pub deployment_id_flag: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The deployment name (ids are NAME-<suffix>); fails if several match
    #[arg(value_name = "NAME", required_unless_present = "deployment_name_flag")]
    pub deployment_name: Option<String>,
    /// The same, as a flag (older scripts)
    #[arg(
        long = "deployment-name",
        id = "deployment_name_flag",
        value_name = "NAME",
        hide = true
    )]
    pub deployment_name_flag: Option<String>,
}

pub async fn run(ctx: &Context, args: DeleteArgs) -> Result<(), Failure> {
    let raw = args
        .deployment_id
        .or(args.deployment_id_flag)
        .unwrap_or_default();
    let id = parse_id(&raw)?;
    let snap = super::snapshot(ctx).await?;
    let Some(d) = snap.get(id.as_str()) else {
        return Err(super::not_found(&id));
    };
    delete(ctx, d.clone()).await
}

pub async fn remove(ctx: &Context, args: RemoveArgs) -> Result<(), Failure> {
    let name = &args
        .deployment_name
        .or(args.deployment_name_flag)
        .unwrap_or_default();
    let snap = super::snapshot(ctx).await?;
    let matches: Vec<&Deployment> = snap
        .deployments
        .values()
        .filter(|d| {
            d.deployment_id.as_str() == name
                || d.deployment_id
                    .as_str()
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
        })
        .collect();
    match matches.as_slice() {
        [] => Err(super::not_found(format!("named {name:?}"))),
        [d] => delete(ctx, (*d).clone()).await,
        many => {
            let ids: Vec<String> = many.iter().map(|d| d.deployment_id.to_string()).collect();
            Err(usage(format!(
                "{} deployments match {name:?}: {}; use `switchyard delete ID`",
                ids.len(),
                ids.join(", ")
            )))
        }
    }
}

async fn delete(ctx: &Context, d: Deployment) -> Result<(), Failure> {
    let id = d.deployment_id.clone();
    let active = ctx.store.snapshot().await?.active;
    if active.as_ref() == Some(&id) {
        return Err(usage(format!(
            "{id} is the active deployment; promote another one first"
        )));
    }
    ctx.confirm(&format!(
        "Delete {id} ({})?",
        switchyard_core::redact::url(&d.backend_url)
    ))?;
    match switchyard_platform::retire(&ctx.store, &ctx.platform, &d).await? {
        Retired::Deleted | Retired::AlreadyGone => {
            ctx.journal(
                switchyard_store::JournalKind::Deleted,
                &id,
                "deleted by hand",
            )
            .await;
            ctx.say(
                || format!("{id} deleted\n"),
                || serde_json::json!({ "deleted": id }),
            );
            Ok(())
        }
        Retired::Active => Err(usage(format!(
            "{id} became the active deployment; not deleted"
        ))),
    }
}
