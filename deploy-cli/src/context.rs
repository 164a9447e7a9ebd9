//! What every store-backed command needs: the store, the platform, and how
//! to print. Settings resolve flag, then environment, then default.

use std::sync::Arc;

use clap::Args;
use switchyard_core::{
    config::{EnvSource, Resolver, Setting, common},
    names::DEFAULT_PREFIX,
};
use switchyard_platform::{SharedPlatform, StaticPlatform};
use switchyard_store::{RedisSettings, RedisStore, SharedStore};

use crate::{Failure, usage};

#[derive(Debug, Default, Args)]
pub struct GlobalArgs {
    /// Redis URL of the stack's store (redis:// or rediss://) [env: REDIS_URL]
    #[arg(long, global = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key [env: PULSE_RAILWAY_REDIS_PREFIX, default: pulse:railway]
    #[arg(long, global = true)]
    pub redis_prefix: Option<String>,
    /// Where backends run: static (given by URL) [env: SWITCHYARD_PLATFORM, default: static]
    #[arg(long, global = true)]
    pub platform: Option<String>,
    /// Print one JSON object instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Answer yes to confirmations (required when not on a terminal)
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
}

const PLATFORM: Setting = Setting::new("--platform", &["SWITCHYARD_PLATFORM"]);

pub struct Context {
    pub store: SharedStore,
    pub platform: SharedPlatform,
    pub json: bool,
    pub yes: bool,
}

impl Context {
    pub fn new(args: &GlobalArgs, env: &dyn EnvSource) -> Result<Self, Failure> {
        let r = Resolver::new(env);
        let platform: SharedPlatform = match r.raw(PLATFORM, args.platform.as_deref()) {
            None => Arc::new(StaticPlatform),
            Some((p, _)) if p == "static" => Arc::new(StaticPlatform),
            Some((p, from)) if p == "railway" => {
                return Err(usage(format!(
                    "the railway platform is not available in this build yet ({from}); use --platform static"
                )));
            }
            Some((p, from)) => {
                return Err(usage(format!(
                    "invalid value {p:?} for {PLATFORM} (from {from}): expected static"
                )));
            }
        };
        let url: String = r
            .required(
                common::REDIS_URL,
                args.redis_url.as_deref(),
                "set --redis-url or REDIS_URL to the stack's Redis",
            )
            .map_err(usage)?;
        let prefix: String = r
            .value(
                common::REDIS_PREFIX,
                args.redis_prefix.as_deref(),
                DEFAULT_PREFIX.to_string(),
            )
            .map_err(usage)?;
        let store = RedisStore::new(&RedisSettings::new(url, prefix)).map_err(usage)?;
        Ok(Self {
            store: Arc::new(store),
            platform,
            json: args.json,
            yes: args.yes,
        })
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
        use std::io::{BufRead, IsTerminal, Write};
        if self.yes {
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
}
