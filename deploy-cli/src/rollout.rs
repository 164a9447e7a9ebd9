//! `promote --watch`: a gradual rollout that judges each step by the 5xx
//! ratio the routers report for the candidate, and rolls back by itself.

use std::time::Duration;

use switchyard_core::{
    DeploymentId, UnixTime,
    config::{EnvSource, parse_duration},
};
use switchyard_store::{JournalKind, RequestStats, StatsWindow};

use crate::{
    Context, Failure,
    commands::promote::{Checks, PromoteArgs, promote, usage_if_caller},
    usage,
};

/// A gradual rollout that watches itself: each step raises the share, runs
/// for the step interval, and is judged by the 5xx ratio the routers
/// report for the candidate. Too many errors (with enough requests to
/// judge) return all unpinned traffic to the active deployment at once.
pub async fn watch(
    ctx: &Context,
    env: &dyn EnvSource,
    id: &DeploymentId,
    args: &PromoteArgs,
    checks: &Checks,
) -> Result<(), Failure> {
    let max_ratio = args.max_5xx_ratio.unwrap_or(0.05);
    if !(0.0..=1.0).contains(&max_ratio) {
        return Err(usage("--max-5xx-ratio must be between 0 and 1"));
    }
    let first = args.percent.unwrap_or(0);
    let mut steps: Vec<u8> = args.steps.clone().unwrap_or_else(|| vec![10, 25, 50, 100]);
    if steps.iter().any(|p| *p == 0 || *p > 100) {
        return Err(usage("--steps are percentages from 1 to 100"));
    }
    steps.retain(|p| *p >= first);
    if first > 0 && steps.first() != Some(&first) {
        steps.insert(0, first);
    }
    if steps.last() != Some(&100) {
        steps.push(100);
    }
    let interval = match &args.step_interval {
        Some(raw) => parse_duration(raw).map_err(|e| usage(format!("--step-interval: {e}")))?,
        None => Duration::from_secs(60),
    };
    let min_requests = args.min_requests.unwrap_or(20);
    let step_deadline = match &args.step_deadline {
        Some(raw) => parse_duration(raw).map_err(|e| usage(format!("--step-deadline: {e}")))?,
        None => interval * 5,
    };
    if step_deadline < interval {
        return Err(usage(format!(
            "--step-deadline ({step_deadline:?}) must be at least --step-interval ({interval:?})"
        )));
    }
    checks.before(env, id).await?;
    for step in steps {
        if step == 100 {
            break;
        }
        ctx.store
            .set_rollout(Some((id, step)))
            .await
            .map_err(usage_if_caller)?;
        ctx.journal(
            JournalKind::Rollout,
            id,
            format!("{step}% of unpinned traffic (watched)"),
        )
        .await;
        let started = UnixTime::now();
        eprintln!("{id}: {step}% of unpinned traffic; watching for {interval:?}");
        let step_start = tokio::time::Instant::now();
        let (judged_at, give_up_at) = (step_start + interval, step_start + step_deadline);
        let mut reported_wait = None;
        loop {
            let stats = step_stats(ctx, id, started).await?;
            let enough = stats.requests >= min_requests;
            if enough && stats.error_ratio() > max_ratio {
                ctx.store.set_rollout(None).await?;
                ctx.journal(
                    JournalKind::RolledBack,
                    id,
                    format!(
                        "rollout ended at {step}%: {} of {} requests 5xx, over the {:.1}% limit",
                        stats.errors_5xx,
                        stats.requests,
                        max_ratio * 100.0
                    ),
                )
                .await;
                return Err(anyhow::anyhow!(
                    "rolled back: {id} answered {} of {} requests with 5xx ({:.1}%, over the {:.1}% limit) at {step}%; all unpinned traffic is back on the active deployment",
                    stats.errors_5xx,
                    stats.requests,
                    stats.error_ratio() * 100.0,
                    max_ratio * 100.0
                )
                .into());
            }
            let now = tokio::time::Instant::now();
            // A step passes only on evidence: its interval is over and it
            // saw enough requests to judge.
            if enough && now >= judged_at {
                eprintln!(
                    "  {step}% held: {} requests, {} 5xx",
                    stats.requests, stats.errors_5xx
                );
                break;
            }
            if now >= give_up_at {
                ctx.store.set_rollout(None).await?;
                ctx.journal(
                    JournalKind::RolledBack,
                    id,
                    format!(
                        "rollout ended at {step}%: {} requests in {step_deadline:?}, too few to judge",
                        stats.requests
                    ),
                )
                .await;
                return Err(anyhow::anyhow!(
                    "rolled back: at {step}% {id} got {} {} in {step_deadline:?}, fewer than the {min_requests} needed to judge it (--min-requests); all unpinned traffic is back on the active deployment. With little traffic, lower --min-requests or raise --step-deadline",
                    stats.requests,
                    if stats.requests == 1 { "request" } else { "requests" },
                )
                .into());
            }
            if now >= judged_at && reported_wait != Some(stats.requests) {
                reported_wait = Some(stats.requests);
                eprintln!(
                    "  {step}% waiting for traffic: {} of {min_requests} requests",
                    stats.requests
                );
            }
            tokio::time::sleep(Duration::from_millis(500).min(interval)).await;
        }
    }
    promote(ctx, env, id, checks, JournalKind::Promoted).await
}

/// The candidate's requests since `since` (whole statistics windows).
async fn step_stats(
    ctx: &Context,
    id: &DeploymentId,
    since: UnixTime,
) -> Result<RequestStats, Failure> {
    let now = UnixTime::now();
    let windows = (StatsWindow::at(now).0 - StatsWindow::at(since).0 + 1) as u32;
    Ok(ctx
        .store
        .request_stats(now, windows)
        .await?
        .get(id)
        .copied()
        .unwrap_or_default())
}
