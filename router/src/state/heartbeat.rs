//! The lease heartbeat: every interval, one store write carrying this
//! replica's open WebSockets per deployment, the latest HTTP activity and
//! the request counts since the last beat, with what the replica reports
//! of itself (snapshot, store health, pin settings). On stop, a final beat and the
//! replica's leases are dropped.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering::Relaxed},
};

use switchyard_core::{DeploymentId, UnixTime};
use switchyard_store::{
    Heartbeat, JournalEntry, JournalKind, RequestStats, RouterReport, SharedStore,
};
use tokio_util::sync::CancellationToken;

use crate::{shared::Shared, state::traffic::Totals};

pub async fn run(shared: Arc<Shared>, store: SharedStore, stop: CancellationToken) {
    let mut reported: HashMap<DeploymentId, Totals> = HashMap::new();
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut anchored = false;
    let mut journal = Journaled::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if beat(&shared, &store, &mut reported).await {
                    journal.update(&shared, &store).await;
                }
                if !anchored {
                    anchored = anchor_rotation(&shared, &store).await;
                }
            }
            _ = stop.cancelled() => break,
        }
    }
    beat(&shared, &store, &mut reported).await;
    match store.remove_replica(&shared.config.replica_id).await {
        Ok(()) => tracing::info!(replica = %shared.config.replica_id, "leases released"),
        Err(e) => {
            tracing::warn!(error = %e, "could not release leases; they expire with their TTL")
        }
    }
}

/// What this replica has told the journal: that it started, and that it
/// refuses the store's snapshot (once per episode, not once per beat).
#[derive(Default)]
struct Journaled {
    started: bool,
    diverged: bool,
}

impl Journaled {
    async fn update(&mut self, shared: &Shared, store: &SharedStore) {
        let actor = format!("router {}", shared.config.replica_id);
        let diverged = shared.health.store_diverged.load(Relaxed);
        let entry = if !self.started {
            let report = report(shared);
            let detail = match report.snapshot_version {
                Some(v) => format!(
                    "routing on snapshot version {v} ({} deployments)",
                    report.deployments
                ),
                None => "no snapshot yet".into(),
            };
            JournalEntry::new(actor, JournalKind::RouterStarted).detail(detail)
        } else if diverged && !self.diverged {
            JournalEntry::new(actor, JournalKind::StoreDiverged).detail(
                "the store holds less than this router routes on; `switchyard restore` refills it",
            )
        } else {
            self.diverged = diverged;
            return;
        };
        match store.append_journal(&entry).await {
            Ok(()) => {
                self.diverged |= self.started && diverged;
                self.started = true;
            }
            Err(e) => {
                tracing::debug!(error = %e, "journal entry not written; tried again next beat")
            }
        }
    }
}

/// One beat; whether the store took it.
async fn beat(
    shared: &Shared,
    store: &SharedStore,
    reported: &mut HashMap<DeploymentId, Totals>,
) -> bool {
    let mut beat = Heartbeat {
        replica: shared.config.replica_id.clone(),
        ttl: shared.config.lease_ttl,
        leases: Vec::new(),
        activity: Vec::new(),
        stats: Vec::new(),
        report: Some(report(shared)),
        now: UnixTime::now(),
    };
    let mut current = Vec::new();
    for (id, traffic) in shared.traffic.all() {
        let open = traffic.open_sockets();
        if open > 0 {
            beat.leases.push((id.clone(), open));
        }
        let now = traffic.totals();
        let before = reported.get(&id).copied().unwrap_or_default();
        if now.last_seen_ms > before.last_seen_ms {
            beat.activity
                .push((id.clone(), UnixTime(now.last_seen_ms as f64 / 1000.0)));
        }
        if now.requests > before.requests {
            beat.stats.push((
                id.clone(),
                RequestStats {
                    requests: now.requests - before.requests,
                    errors_5xx: now.errors_5xx.saturating_sub(before.errors_5xx),
                    latency_ms_sum: now.latency_ms_sum.saturating_sub(before.latency_ms_sum),
                },
            ));
        }
        current.push((id, now));
    }
    match store.heartbeat(&beat).await {
        Ok(()) => {
            shared.health.store.succeeded();
            // Only advance on success, so a failed beat's counts go out
            // with the next one.
            reported.extend(current);
            let table = shared.table.load();
            if let Some(table) = table.as_ref() {
                shared
                    .traffic
                    .retain(|id, _| table.get(id.as_str()).is_some());
                reported.retain(|id, _| table.get(id.as_str()).is_some());
            }
            true
        }
        Err(e) => {
            shared
                .health
                .store
                .failed("heartbeat", &e, shared.table.load().is_some());
            false
        }
    }
}

/// Ends the previous pin secret's grace at the time the store records for
/// this rotation (the first router to see it records now), so a restart
/// never starts the grace again. Until the store answers, the grace runs
/// from this router's start.
async fn anchor_rotation(shared: &Shared, store: &SharedStore) -> bool {
    use switchyard_core::pin::{ROTATION_META, Rotation};
    let pins = &shared.config.pins;
    let Some(keys) = &pins.keys else {
        return true;
    };
    let Some(previous) = keys.previous_id() else {
        return true;
    };
    let recorded = match store.get_meta(ROTATION_META).await {
        Ok(raw) => raw.and_then(|r| serde_json::from_str::<Rotation>(&r).ok()),
        Err(_) => return false,
    };
    let rotation = match recorded {
        Some(r) if r.previous == previous => r,
        _ => {
            let r = Rotation {
                previous,
                rotated_at: switchyard_core::UnixTime::now().0 as u64,
            };
            let Ok(json) = serde_json::to_string(&r) else {
                return true;
            };
            if store.put_meta(ROTATION_META, &json).await.is_err() {
                return false;
            }
            r
        }
    };
    let at = switchyard_core::UnixTime(rotation.rotated_at as f64);
    pins.anchor_rotation(at);
    tracing::info!(rotated_at = %at.rfc3339(), grace = ?pins.previous_grace,
        "previous pin secret accepted until the grace after the recorded rotation");
    true
}

/// What this replica says of itself on every beat: the snapshot it routes
/// on, whether it refuses the store's, its pin settings (so `status` knows
/// them again after a restore) and where its private listener is.
fn report(shared: &Shared) -> RouterReport {
    let pins = &shared.config.pins;
    let table = shared.table.load();
    RouterReport {
        snapshot_version: table.as_ref().map(|t| t.version),
        deployments: table.as_ref().map_or(0, |t| t.snapshot.deployments.len()),
        store_diverged: shared.health.store_diverged.load(Relaxed),
        pins: pins.policy(),
        private_listener: shared.private_addr.clone(),
    }
}
