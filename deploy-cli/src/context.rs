//! What every store-backed command needs: the store, the platform, and how
//! to print. Settings resolve flag, then environment, then default.

use crate::settings::{
    ENVIRONMENT_ID, PLATFORM, PROJECT_ID, REDIS_PREFIX, REDIS_SERVICE, REDIS_URL,
};
use std::sync::Arc;

use clap::Args;
use switchyard_core::DeploymentId;
use switchyard_core::config::ConfigError;
use switchyard_core::{
    config::{EnvSource, Resolver},
    names::DEFAULT_PREFIX,
};
use switchyard_platform::{SharedPlatform, StaticPlatform};
use switchyard_railway::RailwayPlatform;
use switchyard_railway::{Client, ClientSettings};
use switchyard_store::{
    JournalEntry, JournalKind, RedisSettings, RedisStore, SharedStore, StoreError,
};

use crate::{Failure, usage};

#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Redis URL of the stack's store (redis://, rediss:// or redis+sentinel://)
    #[arg(long, global = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key
    #[arg(long, global = true)]
    pub redis_prefix: Option<String>,
    /// Where backends run: static (given by URL) or railway
    #[arg(long, global = true)]
    pub platform: Option<String>,
    /// Railway project of the stack
    #[arg(long, global = true)]
    pub project_id: Option<String>,
    /// Railway environment
    #[arg(long, global = true)]
    pub environment_id: Option<String>,
    /// Redis service whose REDIS_PUBLIC_URL is the store when no --redis-url is given
    #[arg(long, global = true)]
    pub redis_service: Option<String>,
    /// Print one JSON object instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Settings file [default: ./switchyard.toml when present]
    #[arg(long, global = true)]
    pub config: Option<String>,
    /// Answer yes to confirmations (required when not on a terminal)
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
}

pub struct Context {
    pub store: SharedStore,
    pub platform: SharedPlatform,
    /// Set on the railway platform, for the operations only Railway has.
    pub railway: Option<RailwayPlatform>,
    pub json: bool,
    pub yes: bool,
    /// The stack's Redis service on Railway: backends get its URL.
    pub redis_service: String,
}

impl Context {
    pub async fn new(args: &GlobalArgs, env: &dyn EnvSource) -> Result<Self, Failure> {
        let r = Resolver::new(env);
        let railway = match r.raw(PLATFORM, args.platform.as_deref()) {
            None => None,
            Some((p, _)) if p == "static" => None,
            Some((p, _)) if p == "railway" => Some(railway_platform(args, env).await?),
            Some((p, from)) => {
                return Err(usage(format!(
                    "invalid value {p:?} for {PLATFORM} (from {from}): expected static or railway"
                )));
            }
        };
        let url = match r.raw(REDIS_URL, args.redis_url.as_deref()) {
            Some((url, _)) => url,
            None => match &railway {
                Some(rp) => redis_public_url(rp, args, env).await?,
                None => {
                    return Err(usage(ConfigError::missing(
                        REDIS_URL,
                        "set --redis-url or REDIS_URL to the stack's Redis",
                    )));
                }
            },
        };
        let prefix: String = r
            .value(
                REDIS_PREFIX,
                args.redis_prefix.as_deref(),
                DEFAULT_PREFIX.to_string(),
            )
            .map_err(usage)?;
        let store = RedisStore::new(&RedisSettings::new(&url, prefix)).map_err(|e| {
            let e = match e {
                StoreError::Invalid(why) => why,
                other => other.to_string(),
            };
            usage(format!(
                "invalid value {:?} for {}: {e}; expected redis://[user:password@]host:port[/db] or rediss://... for TLS",
                switchyard_core::redact::url(&url),
                REDIS_URL
            ))
        })?;
        let platform: SharedPlatform = match &railway {
            Some(rp) => Arc::new(rp.clone()),
            None => Arc::new(StaticPlatform),
        };
        Ok(Self {
            store: Arc::new(store),
            platform,
            railway,
            json: args.json,
            yes: args.yes,
            redis_service: redis_service(args, env),
        })
    }

    /// Adds what a command did to the store's journal (the dashboard's
    /// list of events). The change itself is already made, so a journal
    /// that cannot be written is a warning, never the command's failure.
    pub async fn journal(&self, kind: JournalKind, id: &DeploymentId, detail: impl Into<String>) {
        let entry = JournalEntry::new("cli", kind).deployment(id).detail(detail);
        if let Err(e) = self.store.append_journal(&entry).await {
            eprintln!("warning: the change is made, but the journal could not record it: {e}");
        }
    }

    /// Prints a JSON value with --json, else the text.
    pub fn say(&self, text: impl FnOnce() -> String, json: impl FnOnce() -> serde_json::Value) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json()).unwrap_or_default()
            );
        } else {
            print!("{}", text());
        }
    }

    /// Asks for confirmation on a terminal; elsewhere requires --yes.
    pub fn confirm(&self, question: &str) -> Result<(), Failure> {
        confirm(self.yes, question)
    }
}

/// Asks for confirmation on a terminal; elsewhere requires --yes.
pub fn confirm(yes: bool, question: &str) -> Result<(), Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "{question} Not on a terminal: pass --yes to confirm."
        )));
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            error: anyhow::anyhow!("cancelled"),
        })
    }
}

/// The stack's Redis service: `--redis-service`, `SWITCHYARD_REDIS_SERVICE`, else pulse-redis.
pub(crate) fn redis_service(args: &GlobalArgs, env: &dyn EnvSource) -> String {
    Resolver::new(env)
        .raw(REDIS_SERVICE, args.redis_service.as_deref())
        .map_or_else(|| crate::railway::stack::REDIS.to_string(), |(v, _)| v)
}

pub(crate) async fn railway_platform(
    args: &GlobalArgs,
    env: &dyn EnvSource,
) -> Result<RailwayPlatform, Failure> {
    let r = Resolver::new(env);
    let settings = ClientSettings::from_env_or_login(env).ok_or_else(|| {
        usage("the railway platform needs a token: RAILWAY_API_TOKEN (account or workspace token) or RAILWAY_TOKEN (project token), or a login of the Railway CLI (`railway login`)")
    })?;
    let client = Client::new(settings)?;
    let project_id: String = r
        .required(
            PROJECT_ID,
            args.project_id.as_deref(),
            "the Railway project of the stack (its id is in the project's settings)",
        )
        .map_err(usage)?;
    let environment_id = match r.raw(ENVIRONMENT_ID, args.environment_id.as_deref()) {
        Some((id, _)) => id,
        None => {
            let project = client.project(&project_id).await?;
            let pick = project
                .environments
                .iter()
                .find(|e| e.name == "production")
                .or(project.environments.first());
            pick.map(|e| e.id.clone()).ok_or_else(|| {
                usage(format!(
                    "project {project_id} has no environment; pass --environment-id"
                ))
            })?
        }
    };
    Ok(RailwayPlatform::new(client, project_id, environment_id))
}

/// The Redis service's public URL (Railway's TCP proxy): the only way a
/// laptop or CI reaches the stack's Redis.
async fn redis_public_url(
    rp: &RailwayPlatform,
    args: &GlobalArgs,
    env: &dyn EnvSource,
) -> Result<String, Failure> {
    let service_name = redis_service(args, env);
    let project = rp.client().project(rp.project_id()).await?;
    let Some(service) = project.service(&service_name) else {
        return Err(usage(format!(
            "project {} has no service named {service_name}; pass --redis-url (or --redis-service)",
            rp.project_id()
        )));
    };
    let vars = rp
        .client()
        .variables(rp.project_id(), rp.environment_id(), Some(&service.id))
        .await?;
    vars.get("REDIS_PUBLIC_URL").cloned().ok_or_else(|| {
        usage(format!(
            "service {service_name} has no REDIS_PUBLIC_URL: enable its TCP proxy in Railway (service settings, Networking, TCP Proxy) or pass --redis-url"
        ))
    })
}
