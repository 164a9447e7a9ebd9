//! `switchyard restore --from-router URL`: refill a store that lost its data
//! (Redis restarted without persistence, a flush) from what a router still
//! routes on. Routers refuse an emptied store's snapshot and keep serving
//! their last good one; this writes that one back, so promote, the janitor
//! and `status` see the deployments again. It never overwrites: a store
//! with any deployment or an active id is refused.

use std::time::Duration;

use clap::Args;
use switchyard_core::Snapshot;

use crate::{Context, Failure, usage};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A router's private address (its metrics listener, default port 9091), e.g. http://pulse-router.railway.internal:9091
    #[arg(long, value_name = "URL")]
    pub from_router: String,
}

pub async fn run(ctx: &Context, args: RestoreArgs) -> Result<(), Failure> {
    let base = args.from_router.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(usage(format!(
            "--from-router must be an http:// URL of a router's private listener, got {base:?}"
        )));
    }
    let url = format!("{base}/snapshot");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let res = client
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the router's snapshot at {url}: {e}"))?;
    if !res.status().is_success() {
        return Err(anyhow::anyhow!(
            "the router at {url} answered {}; it has no snapshot to restore from",
            res.status()
        )
        .into());
    }
    let snap: Snapshot = res
        .json()
        .await
        .map_err(|e| anyhow::anyhow!("the router at {url} sent an unreadable snapshot: {e}"))?;
    if snap.deployments.is_empty() {
        return Err(anyhow::anyhow!(
            "the router at {url} holds no deployments; nothing to restore"
        )
        .into());
    }
    let version = ctx.store.restore(&snap).await.map_err(|e| match e {
        switchyard_store::StoreError::NotEmpty(_) => usage(format!(
            "{e}: restore only fills a store that lost its data. Check `switchyard status`"
        )),
        other => other.into(),
    })?;
    let n = snap.deployments.len();
    let active = snap
        .active
        .as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string);
    ctx.say(
        || {
            format!(
                "restored {n} {} from {base} (active: {active}); store version {version}\n",
                if n == 1 { "deployment" } else { "deployments" }
            )
        },
        || {
            serde_json::json!({
                "restored": n,
                "active": snap.active,
                "version": version,
                "from": base,
            })
        },
    );
    Ok(())
}
