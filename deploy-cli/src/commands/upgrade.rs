//! `switchyard upgrade`: bring the stack in a Railway project to what this
//! version of Switchyard wants (images, start commands, the variables the
//! stack manages, cron schedule, health check, overlap, domain), printing
//! the plan as a diff first. Backend deployments and user variables are
//! not part of the stack and are never touched.

use clap::Args;
use switchyard_core::config::EnvSource;

use super::init::StackArgs;
use crate::{
    Failure, GlobalArgs, context,
    railway::stack::{self, ROUTER},
    usage,
};

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(
    global: &GlobalArgs,
    env: &dyn EnvSource,
    args: UpgradeArgs,
) -> Result<(), Failure> {
    let rp = context::railway_platform(env).await?;
    let project = rp.client().project(rp.project_id()).await?;
    if project.service(ROUTER).is_none() {
        return Err(usage(format!(
            "project {} has no {ROUTER} service: there is no stack to upgrade; create one with `switchyard init`",
            project.name
        )));
    }
    // REDIS_URL: an explicit --redis-url wins; else the Redis service when
    // the project has one; else whatever the stack uses now is left alone.
    let redis_service = context::redis_service(env)?;
    let redis_url = match env.flag(crate::settings::REDIS_URL.flag) {
        Some(url) => Some(url),
        None => project
            .service(&redis_service)
            .map(|_| stack::reference(&redis_service, "REDIS_URL")),
    };
    let specs = stack::desired(&args.stack.wanted(env, redis_url.clone()).await?);
    let existing = stack::read(&rp, &project, &specs).await?;
    if redis_url.is_none()
        && existing
            .get(ROUTER)
            .is_some_and(|r| !r.variables.contains_key("REDIS_URL"))
    {
        return Err(usage(format!(
            "{ROUTER} has no REDIS_URL and the project has no {redis_service} service: pass --redis-url"
        )));
    }
    let plan = stack::plan(&specs, &existing);

    if plan.is_empty() {
        if global.json {
            println!(
                "{}",
                serde_json::json!({ "project_id": rp.project_id(), "up_to_date": true, "plan": [], "applied": false })
            );
        } else {
            println!(
                "up to date: project {} runs the stack of switchyard {}",
                project.name,
                env!("CARGO_PKG_VERSION")
            );
        }
        return Ok(());
    }
    let report = |applied: bool| {
        if global.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "project_id": rp.project_id(),
                    "up_to_date": false,
                    "plan": plan.to_json(),
                    "applied": applied,
                }))
                .unwrap_or_default()
            );
        }
    };
    if !global.json {
        println!(
            "project {} differs from switchyard {} in {} place{}:",
            project.name,
            env!("CARGO_PKG_VERSION"),
            plan.len(),
            if plan.len() == 1 { "" } else { "s" }
        );
        print!("{plan}");
    }
    if args.dry_run {
        report(false);
        if !global.json {
            println!("dry run: nothing was changed");
        }
        return Ok(());
    }
    context::confirm(global.yes, "Apply this plan?")?;
    let say = |line: &str| {
        if global.json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };
    let mut applied = stack::Applied::default();
    if let Err(e) = stack::apply(&rp, &plan, &mut applied, &say).await {
        return Err(anyhow::anyhow!(
            "{e}; the plan was applied only in part: run `switchyard upgrade` again to finish it"
        )
        .into());
    }
    report(true);
    if !global.json {
        println!(
            "upgraded: {} change{} applied; Railway is redeploying the changed services",
            plan.len(),
            if plan.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}
