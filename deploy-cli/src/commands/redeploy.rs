//! `switchyard redeploy [ID]`: restart a deployment's Railway service from
//! its latest build, without building again, so it picks up changed
//! variables (on the env service, say). The active deployment by default.
//! Traffic and state in the store do not change; the router keeps routing
//! to the service while Railway swaps its instance.

use std::time::Duration;

use clap::Args;
use switchyard_core::DeploymentId;

use super::parse_id;
use crate::{Context, Failure, usage};

#[derive(Debug, Args)]
pub struct RedeployArgs {
    /// The deployment to redeploy [default: the active one]
    #[arg(value_name = "ID")]
    pub deployment_id: Option<String>,
    /// The same, as a flag
    #[arg(
        long = "deployment-id",
        id = "deployment_id_flag",
        value_name = "ID",
        conflicts_with = "deployment_id"
    )]
    pub deployment_id_flag: Option<String>,
    /// How long Railway may take to bring it up [default: 15m]
    #[arg(long)]
    pub timeout: Option<String>,
}

pub async fn run(ctx: &Context, args: RedeployArgs) -> Result<(), Failure> {
    let Some(rp) = &ctx.railway else {
        return Err(usage(
            "redeploy restarts a Railway service; on the static platform restart the backend yourself",
        ));
    };
    let timeout = super::timeout(
        "--timeout",
        args.timeout.as_deref(),
        Duration::from_secs(900),
    )?;
    let snap = super::snapshot(ctx).await?;
    let id: DeploymentId = match args.deployment_id.or(args.deployment_id_flag) {
        Some(raw) => parse_id(&raw)?,
        None => snap
            .active
            .clone()
            .ok_or_else(|| usage("nothing is active; name the deployment to redeploy"))?,
    };
    let Some(d) = snap.get(id.as_str()) else {
        return Err(super::not_found(&id));
    };
    let client = rp.client();
    let env = rp.environment_id();
    let service_id = match &d.service_id {
        Some(s) => s.clone(),
        None => client
            .project(rp.project_id())
            .await?
            .services
            .into_iter()
            .find(|s| s.name == d.service_name)
            .map(|s| s.id)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "deployment {id}'s service {} is gone from the project",
                    d.service_name
                )
            })?,
    };
    let before = client
        .latest_deployment(&service_id, env)
        .await?
        .map(|(id, _)| id);
    client.redeploy(&service_id, env).await?;
    eprintln!("redeploying {id} (service {})", d.service_name);
    let started = tokio::time::Instant::now();
    let mut last = String::new();
    loop {
        if let Some((dep, status)) = client.latest_deployment(&service_id, env).await?
            && Some(&dep) != before.as_ref()
        {
            if status != last {
                eprintln!("  {:>4}s  {status}", started.elapsed().as_secs());
                last = status.clone();
            }
            match status.as_str() {
                "SUCCESS" => break,
                "FAILED" | "CRASHED" | "REMOVED" => {
                    return Err(anyhow::anyhow!(
                        "the redeploy of {id} ended {status}; the previous instance keeps serving if Railway kept it. See the deploy logs in Railway"
                    )
                    .into());
                }
                _ => {}
            }
        }
        if started.elapsed() >= timeout {
            return Err(anyhow::anyhow!(
                "the redeploy of {id} was not up after {timeout:?} (last: {}); see Railway",
                if last.is_empty() {
                    "not started"
                } else {
                    &last
                }
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ctx.say(
        || format!("{id} redeployed\n"),
        || serde_json::json!({ "redeployed": id, "service": d.service_name }),
    );
    Ok(())
}
