//! `switchyard-janitor`: one cleanup run. Exit codes: 0 the run completed
//! (or another run holds the lock), 1 the store or platform could not be
//! used at all, 2 bad configuration.

use std::{process::ExitCode, sync::Arc};

use clap::CommandFactory;
use switchyard_core::config::{Flags, ProcessEnv};
use switchyard_janitor::{JanitorArgs, JanitorConfig};
use switchyard_store::{RedisSettings, RedisStore, SharedStore};

#[tokio::main]
async fn main() -> ExitCode {
    let all = switchyard_janitor::all_settings();
    let matches = switchyard_core::config::parse_args(switchyard_core::config::command(
        JanitorArgs::command(),
        &all,
    ));
    let src = Flags::new(&matches, &all, &ProcessEnv);
    let config = match JanitorConfig::resolve(&src) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard-janitor: {e}");
            return ExitCode::from(2);
        }
    };
    // A missing token is a configuration error, found before anything runs.
    let railway = match config.platform {
        switchyard_janitor::PlatformKind::Railway => {
            match switchyard_janitor::RailwayTarget::resolve(&src) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("switchyard-janitor: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        switchyard_janitor::PlatformKind::Static => None,
    };
    init_logging(config.log_format);
    let store: SharedStore = match RedisStore::new(&RedisSettings::new(
        config.redis_url.clone(),
        config.redis_prefix.clone(),
    )) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let e = match e {
                switchyard_store::StoreError::Invalid(why) => why,
                other => other.to_string(),
            };
            eprintln!(
                "switchyard-janitor: invalid value {:?} for {}: {e}",
                switchyard_core::redact::url(&config.redis_url),
                switchyard_core::config::common::REDIS_URL
            );
            return ExitCode::from(2);
        }
    };
    let platform = match switchyard_janitor::platform_for(&config, railway) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("switchyard-janitor: {e}");
            return ExitCode::from(1);
        }
    };
    match switchyard_janitor::run(&config, &store, &platform).await {
        Ok(report) => {
            if config.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", report.human());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The store is the one thing every run needs: name its setting.
            let e = match &e {
                switchyard_janitor::JanitorError::Store(s) if s.is_transient() => format!(
                    "{e}; check {} (the store's URL)",
                    switchyard_core::config::common::REDIS_URL
                ),
                _ => e.to_string(),
            };
            if config.json {
                println!("{}", serde_json::json!({ "error": e }));
            }
            eprintln!("switchyard-janitor: {e}");
            ExitCode::from(1)
        }
    }
}

/// Warnings and errors only, on stderr: stdout is the run's report.
fn init_logging(format: switchyard_core::config::LogFormat) {
    switchyard_core::logging::init(format, "warn", switchyard_core::logging::Output::Stderr);
}
