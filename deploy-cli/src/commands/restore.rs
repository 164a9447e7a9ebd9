//! `switchyard restore --from-router URL`: refill a store that lost its data
//! (Redis restarted without persistence, a flush) from what a router still
//! routes on. Routers refuse an emptied store's snapshot and keep serving
//! their last good one; this writes that one back, so promote, the janitor
//! and `status` see the deployments again. It never overwrites: a store
//! with any deployment or an active id is refused.

use std::time::Duration;
use switchyard_store::JournalKind;

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
    // The public listener forwards /snapshot to a backend (or answers it
    // itself with no snapshot): its answers carry the router's marks.
    let public = res.headers().contains_key("x-switchyard")
        || res
            .headers()
            .get_all("server-timing")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("switchyard")));
    let status = res.status();
    let snap: Option<Snapshot> = if status.is_success() {
        res.json().await.ok()
    } else {
        None
    };
    let Some(snap) = snap else {
        if public {
            return Err(usage(format!(
                "{base} is a router's public listener; restore reads its private one (the metrics \
                 listener, SWITCHYARD_METRICS_LISTEN, port 9091 unless set). {}",
                listeners_hint(ctx).await
            )));
        }
        return Err(anyhow::anyhow!(
            "the router at {url} answered {status} without a snapshot; it has none to restore from"
        )
        .into());
    };
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
    if let Some(active) = &snap.active {
        ctx.journal(
            JournalKind::Restored,
            active,
            format!("{n} deployments from the router at {base}, store version {version}"),
        )
        .await;
    }
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

/// Where the live routers' private listeners are, as they report them.
async fn listeners_hint(ctx: &Context) -> String {
    let listeners: Vec<String> = match ctx.store.replicas().await {
        Ok(replicas) => replicas
            .iter()
            .filter_map(|r| r.report.as_ref()?.private_listener.as_deref())
            .map(super::private_url)
            .collect(),
        Err(_) => Vec::new(),
    };
    match listeners.as_slice() {
        [] => "No router reports its private listener in the store right now.".into(),
        l => format!("The routers report theirs at: {}", l.join(", ")),
    }
}
