//! The in-memory store: one process, one mutex, the same rules as Redis.
//!
//! Expiry uses tokio's clock so tests can pause time instead of sleeping.

mod state;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use switchyard_core::{DeploymentId, DeploymentState, Rollout, Snapshot, UnixTime};
use tokio::{
    sync::{broadcast, mpsc},
    time::Instant,
};

use crate::{
    DeleteOutcome, Heartbeat, JOURNAL_LEN, JournalEntry, LockToken, NewDeployment, Promotion,
    ReloadNotice, ReplicaView, RequestStats, Result, StatsWindow, Store, StoreError, StoreEvent,
    Subscription, WindowStats,
    types::{STATS_RETENTION_SECS, STATS_WINDOW_SECS},
};

use state::{Replica, State};

#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<StoreEvent>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(256);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                events,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change
        // (every change is computed before it is written), so keep going.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bumps the version and notifies subscribers; call with the lock held
    /// so versions are published in order.
    fn bump(&self, state: &mut State) -> u64 {
        state.snap.version += 1;
        let _ = self.inner.events.send(StoreEvent::Changed {
            version: state.snap.version,
        });
        state.snap.version
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn register(&self, new: NewDeployment) -> Result<()> {
        let mut st = self.lock();
        if st.snap.deployments.contains_key(&new.id) {
            return Err(StoreError::AlreadyExists(new.id));
        }
        if let Some(owner) = st.services.get(&new.service_name) {
            return Err(StoreError::ServiceTaken {
                service: new.service_name.clone(),
                owner: owner.to_string(),
            });
        }
        st.services.insert(new.service_name.clone(), new.id.clone());
        st.snap.deployments.insert(new.id.clone(), new.record());
        self.bump(&mut st);
        Ok(())
    }

    async fn promote(&self, id: &DeploymentId, now: UnixTime) -> Result<Promotion> {
        let mut st = self.lock();
        let previous = st.promote(id, now)?;
        let version = self.bump(&mut st);
        Ok(Promotion { previous, version })
    }

    async fn set_rollout(&self, rollout: Option<(&DeploymentId, u8)>) -> Result<()> {
        let mut st = self.lock();
        let Some((id, percent)) = rollout else {
            if st.snap.rollout.take().is_some() {
                self.bump(&mut st);
            }
            return Ok(());
        };
        if !(1..=99).contains(&percent) {
            return Err(StoreError::Invalid(format!(
                "rollout percent must be 1..=99, got {percent}"
            )));
        }
        let state = st
            .snap
            .deployments
            .get(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?
            .state;
        if state != DeploymentState::Pending {
            return crate::error::rollout_status("state", state.to_string(), Some(id));
        }
        if st.snap.active.is_none() {
            return crate::error::rollout_status("no_active", String::new(), Some(id));
        }
        st.snap.rollout = Some(Rollout {
            deployment_id: id.clone(),
            percent,
        });
        self.bump(&mut st);
        Ok(())
    }

    async fn revoke(
        &self,
        id: &DeploymentId,
        promote: Option<&DeploymentId>,
        now: UnixTime,
    ) -> Result<()> {
        let mut st = self.lock();
        if !st.snap.deployments.contains_key(id) {
            return Err(StoreError::NotFound(id.clone()));
        }
        match promote {
            Some(s) if s == id => {
                return crate::error::revoke_status("self", id, promote);
            }
            Some(s) => {
                st.promote(s, now)?;
            }
            None if st.snap.active.as_ref() == Some(id) => {
                return crate::error::revoke_status("active", id, promote);
            }
            None => {}
        }
        if let Some(d) = st.snap.deployments.get_mut(id) {
            if d.state == DeploymentState::Revoked && promote.is_none() {
                return Ok(());
            }
            d.state = DeploymentState::Revoked;
            d.revoked_at = Some(now);
        }
        st.end_rollout_of(id);
        self.bump(&mut st);
        Ok(())
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        Ok(self.lock().snap.clone())
    }

    async fn retire_below_epoch(&self, epoch: u64, now: UnixTime) -> Result<Vec<DeploymentId>> {
        let mut st = self.lock();
        if let Some(a) = st.snap.active_deployment()
            && a.epoch() < epoch
        {
            return Err(StoreError::Invalid(format!(
                "the active deployment {} is below state epoch {epoch}: promote one at or above it first",
                a.deployment_id
            )));
        }
        let mut revoked = Vec::new();
        for d in st.snap.deployments.values_mut() {
            if d.state != DeploymentState::Revoked && d.epoch() < epoch {
                d.state = DeploymentState::Revoked;
                d.revoked_at = Some(now);
                revoked.push(d.deployment_id.clone());
            }
        }
        for id in &revoked {
            st.end_rollout_of(id);
        }
        if !revoked.is_empty() {
            self.bump(&mut st);
        }
        Ok(revoked)
    }

    async fn restore(&self, snap: &Snapshot) -> Result<u64> {
        let mut st = self.lock();
        if !st.snap.deployments.is_empty() || st.snap.active.is_some() {
            return Err(StoreError::NotEmpty(
                "it has deployments or an active id".into(),
            ));
        }
        let version = st.snap.version.max(snap.version);
        st.snap = Snapshot {
            version,
            ..snap.clone()
        };
        st.services = snap
            .deployments
            .values()
            .map(|d| (d.service_name.clone(), d.deployment_id.clone()))
            .collect();
        Ok(self.bump(&mut st))
    }

    async fn subscribe(&self) -> Result<Subscription> {
        let mut rx = self.inner.events.subscribe();
        let (tx, out) = mpsc::channel(64);
        tokio::spawn(async move {
            if tx.send(StoreEvent::Resync).await.is_err() {
                return;
            }
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    // Fell behind: whatever was dropped is in the snapshot.
                    Err(broadcast::error::RecvError::Lagged(_)) => StoreEvent::Resync,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        });
        Ok(Subscription::new(out))
    }

    async fn publish_reload(&self, notice: &ReloadNotice) -> Result<()> {
        let _ = self.inner.events.send(StoreEvent::Reload(notice.clone()));
        Ok(())
    }

    async fn heartbeat(&self, beat: &Heartbeat) -> Result<()> {
        let mut st = self.lock();
        let window = StatsWindow::at(beat.now);
        // As in Redis: this replica's sockets go into the window, and a
        // deployment whose last socket closed is written as 0.
        let before: Vec<DeploymentId> = st
            .replicas
            .get(&beat.replica)
            .map(|r| r.leases.iter().map(|(id, _)| id.clone()).collect())
            .unwrap_or_default();
        for id in before {
            st.stats
                .entry((id, window))
                .or_default()
                .websockets
                .insert(beat.replica.clone(), 0);
        }
        for (id, open) in &beat.leases {
            st.stats
                .entry((id.clone(), window))
                .or_default()
                .websockets
                .insert(beat.replica.clone(), *open);
        }
        let replica = Replica {
            expires: Instant::now() + beat.ttl,
            seen: beat.now,
            report: beat.report.clone(),
            leases: beat
                .leases
                .iter()
                .filter(|(_, n)| *n > 0)
                .cloned()
                .collect(),
        };
        st.replicas.insert(beat.replica.clone(), replica);
        for (id, seen) in &beat.activity {
            if let Some(d) = st.snap.deployments.get_mut(id)
                && d.last_seen_at.is_none_or(|t| t < *seen)
            {
                d.last_seen_at = Some(*seen);
            }
        }
        for (id, s) in &beat.stats {
            st.stats
                .entry((id.clone(), window))
                .or_default()
                .requests
                .add(s);
        }
        let oldest = window
            .0
            .saturating_sub(STATS_RETENTION_SECS / STATS_WINDOW_SECS);
        st.stats.retain(|(_, w), _| w.0 >= oldest);
        Ok(())
    }

    async fn remove_replica(&self, replica: &str) -> Result<()> {
        self.lock().replicas.remove(replica);
        Ok(())
    }

    async fn replicas(&self) -> Result<Vec<ReplicaView>> {
        let mut st = self.lock();
        st.expire_replicas();
        Ok(st
            .replicas
            .iter()
            .map(|(name, r)| ReplicaView {
                replica: name.clone(),
                seen: r.seen,
                leases: r.leases.clone(),
                report: r.report.clone(),
            })
            .collect())
    }

    async fn request_stats(
        &self,
        now: UnixTime,
        windows: u32,
    ) -> Result<BTreeMap<DeploymentId, RequestStats>> {
        let st = self.lock();
        let last = StatsWindow::at(now).0;
        let first = last.saturating_sub(u64::from(windows.max(1)) - 1);
        let mut out: BTreeMap<DeploymentId, RequestStats> = BTreeMap::new();
        for ((id, w), s) in &st.stats {
            if (first..=last).contains(&w.0) && st.snap.deployments.contains_key(id) {
                out.entry(id.clone()).or_default().add(&s.requests);
            }
        }
        Ok(out)
    }

    async fn history(
        &self,
        now: UnixTime,
        windows: u32,
    ) -> Result<BTreeMap<DeploymentId, Vec<WindowStats>>> {
        let st = self.lock();
        let last = StatsWindow::at(now).0;
        let first = last.saturating_sub(u64::from(windows.max(1)) - 1);
        let mut out: BTreeMap<DeploymentId, Vec<WindowStats>> = BTreeMap::new();
        for ((id, w), s) in &st.stats {
            if (first..=last).contains(&w.0) && st.snap.deployments.contains_key(id) {
                out.entry(id.clone()).or_default().push(WindowStats {
                    window: w.0,
                    requests: s.requests,
                    websockets: s.websockets.values().sum(),
                });
            }
        }
        for points in out.values_mut() {
            points.sort_by_key(|p| p.window);
        }
        Ok(out)
    }

    async fn append_journal(&self, entry: &JournalEntry) -> Result<()> {
        let mut st = self.lock();
        st.journal.push_front(entry.clone());
        st.journal.truncate(JOURNAL_LEN);
        Ok(())
    }

    async fn journal(&self, limit: usize) -> Result<Vec<JournalEntry>> {
        Ok(self.lock().journal.iter().take(limit).cloned().collect())
    }

    async fn delete_unless_active(&self, id: &DeploymentId) -> Result<DeleteOutcome> {
        let mut st = self.lock();
        if st.snap.active.as_ref() == Some(id) {
            return Ok(DeleteOutcome::Active);
        }
        let Some(d) = st.snap.deployments.remove(id) else {
            return Ok(DeleteOutcome::Missing);
        };
        if st.services.get(&d.service_name) == Some(id) {
            st.services.remove(&d.service_name);
        }
        st.end_rollout_of(id);
        self.bump(&mut st);
        Ok(DeleteOutcome::Deleted)
    }

    async fn acquire_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let mut st = self.lock();
        let now = Instant::now();
        if st.locks.get(name).is_some_and(|(_, exp)| *exp > now) {
            return Ok(None);
        }
        let token = LockToken::fresh(name);
        st.locks
            .insert(name.to_string(), (token.token.clone(), now + ttl));
        Ok(Some(token))
    }

    async fn release_lock(&self, token: &LockToken) -> Result<bool> {
        let mut st = self.lock();
        let now = Instant::now();
        match st.locks.get(&token.name) {
            Some((held, exp)) if *held == token.token && *exp > now => {
                st.locks.remove(&token.name);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn put_meta(&self, name: &str, value: &str) -> Result<()> {
        self.lock().meta.insert(name.to_string(), value.to_string());
        Ok(())
    }

    async fn get_meta(&self, name: &str) -> Result<Option<String>> {
        Ok(self.lock().meta.get(name).cloned())
    }
}
