//! What every store-backed command needs: the store, the platform, and how
//! to print. Settings resolve flag, then environment, then
//! `switchyard.toml`, then default; the settings that are global flags are
//! declared in `settings.rs`.

use crate::settings::{
    ENVIRONMENT_ID, PLATFORM, PROJECT_ID, REDIS_PREFIX, REDIS_SERVICE, REDIS_URL,
};
use std::sync::Arc;

use clap::Args;
use switchyard_core::DeploymentId;
use switchyard_core::config::{ConfigError, EnvSource, Resolver};
use switchyard_platform::{SharedPlatform, StaticPlatform};
use switchyard_railway::RailwayPlatform;
use switchyard_railway::{Client, ClientSettings};
use switchyard_store::{
    JournalEntry, JournalKind, RedisSettings, RedisStore, SharedStore, StoreError,
};

use crate::{Failure, usage};

/// The global options that are not settings.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
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
        let railway = match r.get(&PLATFORM).map_err(usage)?.as_str() {
            "railway" => Some(railway_platform(env).await?),
            _ => None,
        };
        let url = match r.optional(&REDIS_URL).map_err(usage)? {
            Some(url) => url,
            None => match &railway {
                Some(rp) => redis_public_url(rp, env).await?,
                None => {
                    return Err(usage(ConfigError::missing(
                        &REDIS_URL,
                        "set --redis-url or REDIS_URL to the stack's Redis",
                    )));
                }
            },
        };
        let prefix = r.get(&REDIS_PREFIX).map_err(usage)?;
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
            redis_service: redis_service(env)?,
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
pub(crate) fn redis_service(env: &dyn EnvSource) -> Result<String, Failure> {
    Resolver::new(env).get(&REDIS_SERVICE).map_err(usage)
}

pub(crate) async fn railway_platform(env: &dyn EnvSource) -> Result<RailwayPlatform, Failure> {
    let r = Resolver::new(env);
    let settings = ClientSettings::from_env_or_login(env).ok_or_else(|| {
        usage("the railway platform needs a token: RAILWAY_API_TOKEN (account or workspace token) or RAILWAY_TOKEN (project token), or a login of the Railway CLI (`railway login`)")
    })?;
    let client = Client::new(settings)?;
    let project_id: String = r
        .required(
            &PROJECT_ID,
            "the Railway project of the stack (its id is in the project's settings)",
        )
        .map_err(usage)?;
    let environment_id = match r.optional(&ENVIRONMENT_ID).map_err(usage)? {
        Some(id) => id,
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
async fn redis_public_url(rp: &RailwayPlatform, env: &dyn EnvSource) -> Result<String, Failure> {
    let service_name = redis_service(env)?;
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
