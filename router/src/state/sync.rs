//! Keeps the routing table in step with the store: a full snapshot at
//! start, on every change notification that is newer than what we hold,
//! on every (re)subscription, and periodically as a safety net. When the
//! store is unreachable the last table keeps serving.
//!
//! A snapshot that would lose the active deployment is refused: that is a
//! store that lost its data (a Redis restarted without persistence, a
//! flush), not a decision anyone made, since no store operation removes
//! the active deployment. The router keeps routing on what it has and says
//! so until the store is restored (`switchyard restore`).
//!
//! A version that went backwards with the active deployment still there is
//! a failover that lost the primary's last writes (replication is
//! asynchronous): the new primary is now the truth, and every router must
//! follow it the same way, so the snapshot is installed and the rollback
//! logged. Refusing it would freeze every router on a state the store no
//! longer has, until enough new writes carried the version past it.

use std::{
    collections::HashSet,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use switchyard_core::{DeploymentId, DeploymentState, Snapshot, names::RELOAD_CLOSE_CODE};
use switchyard_store::{SharedStore, StoreEvent};
use tokio_util::sync::CancellationToken;

use crate::{
    shared::Shared,
    state::{closing::CloseOrder, table::Table},
};

/// Retry cadence until the first snapshot arrives.
const FIRST_LOAD_RETRY: Duration = Duration::from_secs(1);

pub async fn run(shared: Arc<Shared>, store: SharedStore, stop: CancellationToken) {
    let mut sub = match store.subscribe().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot subscribe to store changes; relying on periodic reloads");
            None
        }
    };
    let mut next_reload = tokio::time::Instant::now();
    let mut subscribed = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next_reload) => {
                reload(&shared, &store).await;
            }
            ev = async { match sub.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => {
                match ev {
                    Some(StoreEvent::Changed { version }) => {
                        // Any other version: newer, or a store that went
                        // back (a failover), which the reload sorts out.
                        let held = shared.table.load().as_ref().map(|t| t.version);
                        if held != Some(version) {
                            reload(&shared, &store).await;
                        }
                    }
                    Some(StoreEvent::Resync) => {
                        subscribed = true;
                        reload(&shared, &store).await
                    }
                    Some(StoreEvent::Reload(n)) => {
                        let order = CloseOrder { code: RELOAD_CLOSE_CODE, reason: n.reason.clone(), window: Duration::from_millis(n.window_ms) };
                        let closing = shared.sockets.order(&n.deployment_id, order);
                        tracing::info!(deployment = %n.deployment_id, sockets = closing, window_ms = n.window_ms, "reload broadcast received");
                    }
                    Some(StoreEvent::Disconnected { error }) => {
                        // The drop is news; the reconnect attempts that fail
                        // after it are the same outage, and one that began
                        // before the store came back must not reopen it.
                        if std::mem::take(&mut subscribed) {
                            shared
                                .health
                                .store
                                .failed("subscription", &error, shared.table.load().is_some());
                        }
                    }
                    None => sub = None,
                }
            }
        }
        let has_table = shared.table.load().is_some();
        let wait = if has_table {
            shared.config.reload_interval
        } else {
            FIRST_LOAD_RETRY
        };
        let proposed = tokio::time::Instant::now() + wait;
        if proposed < next_reload || next_reload <= tokio::time::Instant::now() {
            next_reload = proposed;
        }
    }
}

async fn reload(shared: &Shared, store: &SharedStore) {
    match store.snapshot().await {
        Ok(snap) => {
            shared.health.store.succeeded();
            let held = shared.table.load();
            if let Some(why) = held.as_ref().and_then(|t| regression(&t.snapshot, &snap)) {
                refuse(shared, &snap, held.as_ref().map_or(0, |t| t.version), why);
                return;
            }
            if let Some(t) = held.as_ref()
                && snap.version < t.version
            {
                tracing::warn!(
                    held_version = t.version,
                    store_version = snap.version,
                    "the store's version went back (a failover that lost its last writes?); following the store"
                );
            }
            if shared.health.store_diverged.swap(false, Relaxed) {
                tracing::info!(
                    version = snap.version,
                    "store consistent again; installing its snapshot"
                );
            }
            if held.is_none() {
                tracing::info!(
                    version = snap.version,
                    deployments = snap.deployments.len(),
                    "snapshot loaded"
                );
            }
            let table = Table::build(
                &snap,
                &shared.config.names,
                &shared.config.pins,
                &shared.traffic,
            );
            install(shared, table);
        }
        Err(e) => {
            let routing = shared.table.load().is_some();
            shared.health.store.failed("snapshot", &e, routing);
        }
    }
}

/// Why `new` cannot replace `held`, if it cannot.
fn regression(held: &Snapshot, new: &Snapshot) -> Option<&'static str> {
    (held.active.is_some() && new.active.is_none()).then_some("it lost the active deployment")
}

fn refuse(shared: &Shared, snap: &Snapshot, held: u64, why: &'static str) {
    shared.health.snapshots_refused.fetch_add(1, Relaxed);
    if !shared.health.store_diverged.swap(true, Relaxed) {
        tracing::error!(
            store_version = snap.version,
            held_version = held,
            store_deployments = snap.deployments.len(),
            "refusing the store's snapshot because {why}: the store looks like it lost its data; \
             routing on the last good snapshot. Restore it with `switchyard restore --from-router <router's private address>`"
        );
    }
}

/// Swaps the table in, and closes sockets to deployments that were revoked
/// or removed since the previous one.
fn install(shared: &Shared, table: Table) {
    let previous = shared.table.load_full();
    let gone: Vec<(DeploymentId, &'static str)> = match &previous {
        Some(old) => {
            let mut out = Vec::new();
            let still: HashSet<&DeploymentId> = table.ids().collect();
            for id in old.ids() {
                let now_revoked = table
                    .get(id.as_str())
                    .is_some_and(|t| t.state == DeploymentState::Revoked);
                let was_revoked = old
                    .get(id.as_str())
                    .is_some_and(|o| o.state == DeploymentState::Revoked);
                if now_revoked && !was_revoked {
                    out.push((id.clone(), "deployment revoked"));
                } else if !still.contains(id) {
                    out.push((id.clone(), "deployment removed"));
                }
            }
            out
        }
        None => Vec::new(),
    };
    if previous.as_ref().is_none_or(|p| p.version != table.version) {
        tracing::debug!(version = table.version, "routing table updated");
    }
    shared.table.store(Some(Arc::new(table)));
    for (id, reason) in gone {
        // A staggered reload already scheduled these closes; closing them
        // all now would undo the stagger.
        if shared.sockets.has_order(&id) {
            continue;
        }
        let n = shared.sockets.order(
            &id,
            CloseOrder {
                code: RELOAD_CLOSE_CODE,
                reason: reason.into(),
                window: Duration::ZERO,
            },
        );
        if n > 0 {
            tracing::info!(deployment = %id, sockets = n, reason, "closing websockets");
        }
    }
}
