//! `switchyard-router`: read configuration, install logging and signals,
//! run, map the outcome to an exit code (0 after a requested shutdown).

use std::{process::ExitCode, sync::Arc};

use clap::{CommandFactory, FromArgMatches};
use switchyard_core::config::{ConfigError, Flags, ProcessEnv, common};
use switchyard_platform::SharedPlatform;
use switchyard_retention::JanitorConfig;
use switchyard_router::{Exit, Listeners, RouterArgs, RouterConfig};
use switchyard_store::{RedisSettings, RedisStore, SharedStore};

fn main() -> ExitCode {
    use switchyard_router::config::settings::ALL;
    let matches = switchyard_core::config::parse_args(switchyard_core::config::command(
        RouterArgs::command(),
        ALL,
    ));
    let args = RouterArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let config = match RouterConfig::resolve(&Flags::new(&matches, ALL, &ProcessEnv)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard-router: {e}");
            return ExitCode::from(2);
        }
    };
    // The first worker's runtime; `run` starts the others, each on its own
    // thread with its own single-threaded runtime (see `workers`). The
    // single-threaded scheduler's run queue is plain FIFO: no LIFO slot
    // letting a few ping-ponging connections cut ahead of the rest.
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
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
        let e = ConfigError::missing(
            &common::REDIS_URL,
            "the router reads deployments from Redis",
        );
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
    let janitor = match config.janitor_interval {
        Some(every) => match janitor(&config) {
            Ok((janitor_config, platform)) => Some((every, janitor_config, platform)),
            Err(e) => {
                eprintln!("switchyard-router: --janitor-interval: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let listeners = match Listeners::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("switchyard-router: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(settings = %config.summary(), "configuration");
    // The janitor gets its own task, so a slow platform call never holds up
    // routing; each round is bounded by the janitor lock's lifetime.
    let stop_janitor = tokio_util::sync::CancellationToken::new();
    let janitor_task = janitor.map(|(every, janitor_config, platform)| {
        tokio::spawn(switchyard_retention::run_every(
            every,
            janitor_config,
            store.clone(),
            platform,
            stop_janitor.clone(),
        ))
    });
    let exit = switchyard_router::run(
        config,
        store,
        listeners,
        switchyard_router::shutdown_signal(),
    )
    .await;
    stop_janitor.cancel();
    if let Some(task) = janitor_task {
        let _ = task.await;
    }
    match exit {
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

/// The in-router janitor's settings: the janitor's own variables, with the
/// router's store, so a fleet configures the janitor once for cron and
/// routers alike.
fn janitor(config: &RouterConfig) -> Result<(JanitorConfig, SharedPlatform), String> {
    let store = [
        (common::REDIS_URL.flag, config.redis_url.clone()),
        (common::REDIS_PREFIX.flag, Some(config.redis_prefix.clone())),
    ];
    let src = Flags::given(
        store.into_iter().filter_map(|(flag, v)| Some((flag, v?))),
        &ProcessEnv,
    );
    // The public router never holds a platform token: on Railway its
    // janitor reloads and revokes, and services are deleted by cron.
    let janitor_config = JanitorConfig::resolve(&src).map_err(|e| e.to_string())?;
    let platform = switchyard_retention::store_only_platform(&janitor_config);
    Ok((janitor_config, platform))
}
