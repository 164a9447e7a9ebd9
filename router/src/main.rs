//! `switchyard-router`: read configuration, install logging and signals,
//! run, map the outcome to an exit code (0 after a requested shutdown).

use std::{process::ExitCode, sync::Arc};

use clap::Parser;
use switchyard_core::config::{ConfigError, ProcessEnv, common};
use switchyard_router::{Exit, Listeners, RouterArgs, RouterConfig};
use switchyard_store::{RedisSettings, RedisStore, SharedStore};

fn main() -> ExitCode {
    let args = RouterArgs::parse();
    let config = match RouterConfig::from_args(&args, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard-router: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: the single-threaded scheduler, whose run queue is plain
    // FIFO. The multi-thread scheduler's LIFO slot lets a few ping-ponging
    // connections cut ahead of the rest, which shows as tail latency with
    // hundreds of connections on one worker.
    let mut runtime = match config.worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all();
    match runtime.build() {
        Ok(rt) => rt.block_on(serve(args, config)),
        Err(e) => {
            eprintln!("switchyard-router: cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: RouterArgs, config: RouterConfig) -> ExitCode {
    if args.health_check {
        return match switchyard_router::probe_health(
            config.listen.port(),
            &config.names.health_path,
        )
        .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("switchyard-router: unhealthy: {e}");
                ExitCode::from(1)
            }
        };
    }
    switchyard_router::init_logging(config.log_format);
    let Some(url) = config.redis_url.clone() else {
        let e = ConfigError::missing(common::REDIS_URL, "the router reads deployments from Redis");
        eprintln!("switchyard-router: {e}");
        return ExitCode::from(2);
    };
    let store: SharedStore =
        match RedisStore::new(&RedisSettings::new(url, config.redis_prefix.clone())) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("switchyard-router: {e}");
                return ExitCode::from(2);
            }
        };
    let listeners = match Listeners::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("switchyard-router: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(settings = %config.summary(), "configuration");
    match switchyard_router::run(
        config,
        store,
        listeners,
        switchyard_router::shutdown_signal(),
    )
    .await
    {
        Exit::Requested { drained: true } => ExitCode::SUCCESS,
        Exit::Requested { drained: false } => {
            tracing::warn!("shutdown deadline passed with work still in flight");
            ExitCode::SUCCESS
        }
        Exit::Failed(why) => {
            tracing::error!("{why}");
            ExitCode::from(1)
        }
    }
}
