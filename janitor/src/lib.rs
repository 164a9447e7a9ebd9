//! Switchyard's janitor: one run per invocation (Railway cron, every 5
//! minutes). Takes the store's lock so overlapping runs never act twice,
//! plans from one snapshot (`plan`), carries the plan out (`apply`), and
//! reports (`report`).

pub mod apply;
pub mod config;
pub mod plan;
pub mod probe;
pub mod report;

use std::time::Duration;

use switchyard_core::UnixTime;
use switchyard_platform::SharedPlatform;
use switchyard_store::{SharedStore, StoreError};

pub use config::{JanitorArgs, JanitorConfig, PlatformKind};
pub use report::Report;

/// pulse-railway's lock lifetime: shorter than the 5-minute cron period, so
/// a crashed run never blocks the next one.
pub const LOCK_TTL: Duration = Duration::from_secs(55);

/// Where the janitor publishes its policy (`<prefix>:meta:janitor-policy`).
pub const POLICY_META: &str = "janitor-policy";

#[derive(Debug, thiserror::Error)]
pub enum JanitorError {
    #[error("cannot read the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot reach the platform: every deletion failed ({0})")]
    Platform(String),
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
    report.absorb(outcomes);
    let attempted = report
        .decisions
        .iter()
        .filter(|a| matches!(a, plan::Action::Delete { .. }))
        .count();
    let platform_failures = report
        .errors
        .iter()
        .filter(|e| e.error.contains("platform:"))
        .count();
    if attempted > 0 && platform_failures == attempted {
        return Err(JanitorError::Platform(report.errors[0].error.clone()));
    }
    Ok(())
}
