//! What the in-memory store holds, and the changes that touch more than
//! one part of it (promotion, ending a rollout, expiring replicas).

use std::collections::{HashMap, VecDeque};

use switchyard_core::{DeploymentId, DeploymentState, Snapshot, UnixTime};
use tokio::time::Instant;

use crate::{JournalEntry, RequestStats, Result, RouterReport, StatsWindow, StoreError};

#[derive(Default)]
pub(super) struct State {
    pub(super) snap: Snapshot,
    pub(super) services: HashMap<String, DeploymentId>,
    pub(super) replicas: HashMap<String, Replica>,
    pub(super) stats: HashMap<(DeploymentId, StatsWindow), Window>,
    pub(super) locks: HashMap<String, (String, Instant)>,
    pub(super) meta: HashMap<String, String>,
    pub(super) journal: VecDeque<JournalEntry>,
}

/// One deployment's statistics window: requests, and each replica's latest
/// count of open WebSockets.
#[derive(Default)]
pub(super) struct Window {
    pub(super) requests: RequestStats,
    pub(super) websockets: HashMap<String, u64>,
}

pub(super) struct Replica {
    pub(super) expires: Instant,
    pub(super) seen: UnixTime,
    pub(super) leases: Vec<(DeploymentId, u64)>,
    pub(super) report: Option<RouterReport>,
}

impl State {
    pub(super) fn promote(
        &mut self,
        id: &DeploymentId,
        now: UnixTime,
    ) -> Result<Option<DeploymentId>> {
        let target = self
            .snap
            .deployments
            .get(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        if target.state == DeploymentState::Revoked {
            return Err(StoreError::WrongState {
                id: id.clone(),
                state: "revoked".into(),
                action: "promote",
            });
        }
        // The previous active one, and a rollout candidate that had a share
        // of unpinned traffic, drain; other pending deployments are
        // previews and stay pending.
        let candidate = self.snap.rollout.as_ref().map(|r| r.deployment_id.clone());
        for d in self.snap.deployments.values_mut() {
            let had_traffic = d.state == DeploymentState::Active
                || (d.state == DeploymentState::Pending
                    && candidate.as_ref() == Some(&d.deployment_id));
            if d.deployment_id == *id {
                d.state = DeploymentState::Active;
                d.drain_started_at = None;
            } else if had_traffic {
                d.state = DeploymentState::Draining;
                d.drain_started_at = Some(now);
            }
        }
        self.snap.rollout = None;
        Ok(self.snap.active.replace(id.clone()).filter(|p| p != id))
    }

    /// A deployment that stops serving ends any rollout it was the candidate of.
    pub(super) fn end_rollout_of(&mut self, id: &DeploymentId) {
        if self
            .snap
            .rollout
            .as_ref()
            .is_some_and(|r| r.deployment_id == *id)
        {
            self.snap.rollout = None;
        }
    }

    pub(super) fn expire_replicas(&mut self) {
        let now = Instant::now();
        self.replicas.retain(|_, r| r.expires > now);
    }
}
