//! The `switchyard` command. Each subcommand is one file under `commands/`
//! with its clap arguments (whose doc comments are the help text) and an
//! async `run`. Exit codes: 0 success, 1 the operation failed, 2 bad usage
//! or configuration.

pub mod checks;
pub mod commands;
pub mod context;
pub mod dashboard;
pub mod demo;
mod failure;
pub mod file;
pub mod progress;
pub mod railway;
pub mod rollout;
pub mod settings;
pub mod source;

use clap::{Parser, Subcommand};
use switchyard_core::config::Flags;

pub use context::{Context, GlobalArgs};
pub use failure::{Failure, usage};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Ship new versions of a web app without breaking the people using the old one"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a router with two example deployments on this machine (no Redis, no Railway)
    Demo(demo::DemoArgs),
    /// Bootstrap router, Redis, env and janitor services into a Railway project (created when none is given)
    Init(Box<commands::init::InitArgs>),
    /// Bring a stack made by an older version up to date: print the plan, apply it with --yes
    Upgrade(Box<commands::upgrade::UpgradeArgs>),
    /// Register a new deployment, check its health, and promote it
    Deploy(Box<commands::deploy::DeployArgs>),
    /// List deployments with state, age, drain age, leases and activity (also: status)
    #[command(visible_alias = "status")]
    List(commands::list::ListArgs),
    /// Serve a live page of deployments, traffic, routers and events (read-only; prints its URL)
    Dashboard(commands::dashboard::DashboardArgs),
    /// Make a deployment active; every other one drains
    Promote(commands::promote::PromoteArgs),
    /// Promote the deployment that drained most recently
    Rollback(commands::promote::RollbackArgs),
    /// Stop a deployment serving now: pins become stale, its websockets close
    Revoke(commands::revoke::RevokeArgs),
    /// Delete one deployment by id (never the active one)
    Delete(commands::delete::DeleteArgs),
    /// Delete the deployment with a given name (never the active one)
    Remove(commands::delete::RemoveArgs),
    /// Railway: restart a deployment's service from its latest build (the active one by default), e.g. to pick up changed variables
    Redeploy(commands::redeploy::RedeployArgs),
    /// Revoke every deployment below a state epoch in one step (after a contract-phase migration)
    RetireBelowEpoch(commands::epoch::RetireArgs),
    /// Print a link that opens a deployment by its pin (signed and expiring in strict mode)
    PreviewUrl(commands::preview::PreviewArgs),
    /// Refill a store that lost its data from what a router still routes on (never overwrites)
    Restore(commands::restore::RestoreArgs),
}

/// Runs `cli`, its settings read from `flags` (the command line's, over the
/// environment), with `switchyard.toml` layered under the environment.
pub async fn run(cli: Cli, flags: &Flags<'_>) -> Result<(), Failure> {
    if let (Command::Demo(_), Some(flag)) = (&cli.command, demo::ignored_option(&cli.global, flags))
    {
        return Err(usage(format!(
            "demo runs on this machine with its own store and backends; {flag} does not apply to it (only --redis-url and --redis-prefix do)"
        )));
    }
    // The default file is optional; one named with --config must exist.
    let config_path = match &cli.global.config {
        Some(p) if !std::path::Path::new(p).exists() => {
            return Err(usage(format!("--config {p}: no such file")));
        }
        Some(p) => p.clone(),
        None => "switchyard.toml".into(),
    };
    let layered =
        file::layered(flags.under(), std::path::Path::new(&config_path)).map_err(usage)?;
    let src = flags.over(&layered);
    let env: &dyn switchyard_core::config::EnvSource = &src;
    match cli.command {
        Command::Demo(args) => {
            demo::run(
                args,
                env.flag(settings::REDIS_URL.flag),
                env.flag(settings::REDIS_PREFIX.flag),
            )
            .await
        }
        Command::Init(args) => commands::init::run(&cli.global, env, *args).await,
        Command::Upgrade(args) => commands::upgrade::run(&cli.global, env, *args).await,
        command => {
            let ctx = Context::new(&cli.global, env).await?;
            match command {
                Command::Deploy(a) => commands::deploy::run(&ctx, env, *a).await,
                Command::List(a) => commands::list::run(&ctx, a).await,
                Command::Dashboard(a) => commands::dashboard::run(&ctx, a).await,
                Command::Promote(a) => commands::promote::run(&ctx, env, a).await,
                Command::Rollback(a) => commands::promote::rollback(&ctx, env, a).await,
                Command::Revoke(a) => commands::revoke::run(&ctx, a).await,
                Command::Delete(a) => commands::delete::run(&ctx, a).await,
                Command::Remove(a) => commands::delete::remove(&ctx, a).await,
                Command::Restore(a) => commands::restore::run(&ctx, a).await,
                Command::Redeploy(a) => commands::redeploy::run(&ctx, a).await,
                Command::RetireBelowEpoch(a) => commands::epoch::run(&ctx, a).await,
                Command::PreviewUrl(a) => commands::preview::run(&ctx, env, a).await,
                Command::Demo(_) | Command::Init(_) | Command::Upgrade(_) => Ok(()),
            }
        }
    }
}
