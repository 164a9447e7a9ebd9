//! What the janitor does, without any platform client: the retention rules
//! (`plan`, pure), the backend probes (`probe`), carrying a plan out
//! (`apply`) and saying what was done (`report`). One run per invocation
//! of `switchyard-janitor` (Railway cron, every 5 minutes, with the token
//! that deletes services), or every few seconds inside a router
//! (`run_every`, opt-in, with no token: see [`store_only_platform`]). Runs
//! take the store's lock, so overlapping ones, from cron or from any
//! number of routers, never act twice. `switchyard status` and the
//! dashboard show the same plan.

pub mod apply;
pub mod config;
pub mod plan;
pub mod probe;
pub mod report;

use std::{sync::Arc, time::Duration};

use switchyard_core::UnixTime;
use switchyard_platform::{SharedPlatform, StaticPlatform};
use switchyard_store::{SharedStore, StoreError};

pub use config::{JanitorArgs, JanitorConfig, PlatformKind};
pub use report::Report;

/// pulse-railway's lock lifetime: shorter than the 5-minute cron period, so
/// a crashed run never blocks the next one.
pub const LOCK_TTL: Duration = Duration::from_secs(55);

/// Where the janitor publishes its policy (`<prefix>:meta:janitor-policy`).
pub const POLICY_META: &str = "janitor-policy";

/// The policy the janitor last published; `None` before its first run (or
/// when what is stored no longer parses).
pub async fn published_policy(
    store: &SharedStore,
) -> Result<Option<plan::Policy>, switchyard_store::StoreError> {
    Ok(store
        .get_meta(POLICY_META)
        .await?
        .and_then(|raw| serde_json::from_str(&raw).ok()))
}

#[derive(Debug, thiserror::Error)]
pub enum JanitorError {
    #[error("cannot read the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot reach the platform: every deletion failed ({0})")]
    Platform(String),
}

/// The platform as a process without a platform token acts on it: on the
/// static platform forgetting a record is the whole job; on Railway what is
/// due is reloaded and revoked, and the service is left to the cron
/// janitor. (`switchyard-janitor` builds Railway's client itself.)
pub fn store_only_platform(config: &JanitorConfig) -> SharedPlatform {
    match config.platform {
        PlatformKind::Railway => Arc::new(NoPlatformToken),
        PlatformKind::Static => Arc::new(StaticPlatform),
    }
}

/// Railway as the janitor inside a router sees it: without a token, so it
/// deletes no service. What is due is reloaded and revoked; the cron
/// janitor (or `switchyard delete`) removes the service on its next run.
struct NoPlatformToken;

#[async_trait::async_trait]
impl switchyard_platform::Platform for NoPlatformToken {
    fn name(&self) -> &'static str {
        "railway (no token: services are left to the cron janitor)"
    }

    fn deletes_services(&self) -> bool {
        false
    }

    async fn delete_service(
        &self,
        _deployment: &switchyard_core::Deployment,
    ) -> Result<(), switchyard_platform::PlatformError> {
        Err(switchyard_platform::PlatformError::Permanent(
            "this process holds no platform token; the cron janitor deletes services".into(),
        ))
    }
}

/// Runs the janitor every `interval` until `stop`, for a process that has
/// no cron (a router with `--janitor-interval`). Each run is bounded by the
/// lock's lifetime, so a slow platform call can neither overlap the next
/// run nor outlive the lock; whichever process holds the lock acts, the
/// others skip that round.
pub async fn run_every(
    interval: Duration,
    config: JanitorConfig,
    store: SharedStore,
    platform: SharedPlatform,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let round = tokio::time::timeout(LOCK_TTL, run(&config, &store, &platform));
        let outcome = tokio::select! {
            r = round => r,
            _ = stop.cancelled() => return,
        };
        match outcome {
            Ok(Ok(report)) if report.lock_acquired => {
                if !(report.reloaded.is_empty()
                    && report.deleted.is_empty()
                    && report.force_deleted.is_empty()
                    && report.errors.is_empty())
                {
                    tracing::info!(
                        reloaded = report.reloaded.len(),
                        deleted = report.deleted.len() + report.force_deleted.len(),
                        errors = report.errors.len(),
                        "janitor round: {}",
                        report.human().trim_end().replace('\n', "; ")
                    );
                }
            }
            Ok(Ok(_)) => tracing::debug!("janitor round skipped: another process holds the lock"),
            Ok(Err(e)) => tracing::warn!(error = %e, "janitor round failed"),
            Err(_) => {
                tracing::warn!(limit = ?LOCK_TTL, "janitor round gave up at the lock's lifetime")
            }
        }
    }
}

pub async fn run(
    config: &JanitorConfig,
    store: &SharedStore,
    platform: &SharedPlatform,
) -> Result<Report, JanitorError> {
    let mut report = Report {
        dry_run: config.dry_run,
        platform: platform.name().into(),
        ..Default::default()
    };
    let lock = if config.dry_run {
        None
    } else {
        match store.acquire_lock("janitor", LOCK_TTL).await? {
            Some(token) => Some(token),
            None => return Ok(report),
        }
    };
    report.lock_acquired = lock.is_some();
    let result = plan_and_apply(config, store, platform, &mut report).await;
    if let Some(token) = lock {
        match store.release_lock(&token).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the janitor lock expired during the run"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the janitor lock; it expires by itself")
            }
        }
    }
    result.map(|()| report)
}

async fn plan_and_apply(
    config: &JanitorConfig,
    store: &SharedStore,
    platform: &SharedPlatform,
    report: &mut Report,
) -> Result<(), JanitorError> {
    let snap = store.snapshot().await?;
    let leases = store.live_leases().await?;
    let http = reqwest::Client::builder()
        .timeout(config.probe_timeout)
        .build()
        .map_err(|e| JanitorError::Platform(e.to_string()))?;
    // Only draining deployments can still be kept by their sessions.
    let probed: Vec<_> = snap
        .deployments
        .values()
        .filter(|d| {
            d.state == switchyard_core::DeploymentState::Draining
                && snap.active.as_ref() != Some(&d.deployment_id)
        })
        .collect();
    let sessions = probe::probe_all(
        &http,
        &probed,
        config.internal_token.as_deref(),
        config.probe_timeout,
        config.concurrency,
    )
    .await;
    let actions = plan::plan(&snap, &leases, &sessions, UnixTime::now(), &config.policy);
    report.active = snap.active.clone();
    report.scanned = actions.len();
    report.decisions = actions.clone();
    if config.dry_run {
        report.would(&actions);
        return Ok(());
    }
    // `switchyard status` predicts the next retirement from this policy.
    if let Ok(policy) = serde_json::to_string(&config.policy)
        && let Err(e) = store.put_meta(POLICY_META, &policy).await
    {
        tracing::warn!(error = %e, "could not publish the janitor policy");
    }
    let exec = apply::Executor {
        config,
        store,
        platform,
        http: &http,
    };
    let outcomes = exec.apply(&snap, actions).await;
    for entry in outcomes.iter().filter_map(report::Outcome::journal_entry) {
        if let Err(e) = store.append_journal(&entry).await {
            tracing::warn!(error = %e, "could not add to the journal");
        }
    }
    report.absorb(outcomes);
    let attempted = report
        .decisions
        .iter()
        .filter(|a| matches!(a, plan::Action::Delete { .. }))
        .count();
    let platform_failures = report
        .errors
        .iter()
        .filter(|e| e.step == report::Step::Platform)
        .count();
    if attempted > 0 && platform_failures == attempted {
        return Err(JanitorError::Platform(report.errors[0].error.clone()));
    }
    Ok(())
}
