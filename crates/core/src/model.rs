//! Deployments, their lifecycle states, and the snapshot every router replica
//! routes from.
//!
//! The record's field names match pulse-railway's `<prefix>:deployment:<id>`
//! JSON (`deployment_id`, `state`, `service_name`, `last_seen_at`,
//! `drain_started_at`) so either tool can read the other's records; the
//! fields Switchyard adds are optional on read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{DeploymentId, UnixTime};

/// What routes to a deployment in each state:
///
/// | state      | unpinned traffic          | pinned traffic | open WebSockets |
/// |------------|---------------------------|----------------|-----------------|
/// | `pending`  | only its rollout share    | yes (preview)  | yes             |
/// | `active`   | yes (minus rollout share) | yes            | yes             |
/// | `draining` | no                        | yes            | yes             |
/// | `revoked`  | no                        | stale affinity | closed (1012)   |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentState {
    Pending,
    Active,
    Draining,
    Revoked,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Revoked => "revoked",
        }
    }

    /// Whether a request pinned to a deployment in this state is served.
    pub fn accepts_pinned(self) -> bool {
        !matches!(self, Self::Revoked)
    }
}

impl std::fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub deployment_id: DeploymentId,
    pub state: DeploymentState,
    /// The platform service backing this deployment (Railway service name).
    pub service_name: String,
    /// Base URL the router forwards to, e.g. `http://app-v2.railway.internal:8000`.
    #[serde(default)]
    pub backend_url: String,
    #[serde(default)]
    pub created_at: Option<UnixTime>,
    #[serde(default)]
    pub last_seen_at: Option<UnixTime>,
    #[serde(default)]
    pub drain_started_at: Option<UnixTime>,
    #[serde(default)]
    pub revoked_at: Option<UnixTime>,
    /// Platform-specific handle (Railway service id) needed to delete it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// The shared-state generation this build works with (database schema,
    /// session format); `None` counts as 0. Unpinned traffic never moves to
    /// a lower epoch than the active one's without `--force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_epoch: Option<u64>,
}

impl Deployment {
    pub fn epoch(&self) -> u64 {
        self.state_epoch.unwrap_or(0)
    }
}

/// A gradual rollout in progress: `percent` of unpinned traffic goes to
/// `deployment_id` (a pending deployment), the rest to the active one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub deployment_id: DeploymentId,
    pub percent: u8,
}

/// Everything a router needs to route, read in one atomic step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Incremented by every routing-relevant change; lets a subscriber that
    /// missed a notification notice the gap.
    pub version: u64,
    pub active: Option<DeploymentId>,
    pub rollout: Option<Rollout>,
    pub deployments: BTreeMap<DeploymentId, Deployment>,
}

impl Snapshot {
    pub fn get(&self, id: &str) -> Option<&Deployment> {
        self.deployments.get(id)
    }

    pub fn active_deployment(&self) -> Option<&Deployment> {
        self.active.as_ref().and_then(|id| self.deployments.get(id))
    }

    pub fn in_state(&self, state: DeploymentState) -> impl Iterator<Item = &Deployment> {
        self.deployments.values().filter(move |d| d.state == state)
    }

    /// The deployment `rollback` returns to: the one that drained most recently.
    pub fn rollback_target(&self) -> Option<&Deployment> {
        self.in_state(DeploymentState::Draining).max_by(|a, b| {
            let key = |d: &Deployment| d.drain_started_at.map_or(0.0, UnixTime::secs);
            key(a).total_cmp(&key(b))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pulse_railway_records() {
        // Shape written by pulse-railway: no backend_url, float timestamps.
        let raw = r#"{"deployment_id":"prod-abc123","state":"draining","service_name":"prod-abc123",
                      "last_seen_at":1763891234.5,"drain_started_at":null}"#;
        let d: Deployment = serde_json::from_str(raw).unwrap();
        assert_eq!(d.deployment_id.as_str(), "prod-abc123");
        assert_eq!(d.state, DeploymentState::Draining);
        assert_eq!(d.last_seen_at, Some(UnixTime(1763891234.5)));
        assert_eq!(d.drain_started_at, None);
    }

    #[test]
    fn rollback_target_is_the_latest_drained() {
        let mut snap = Snapshot::default();
        for (id, drained) in [("a", 10.0), ("b", 30.0), ("c", 20.0)] {
            let id = DeploymentId::new(id).unwrap();
            snap.deployments.insert(
                id.clone(),
                Deployment {
                    deployment_id: id,
                    state: DeploymentState::Draining,
                    service_name: String::new(),
                    backend_url: String::new(),
                    created_at: None,
                    last_seen_at: None,
                    drain_started_at: Some(UnixTime(drained)),
                    revoked_at: None,
                    service_id: None,
                    state_epoch: None,
                },
            );
        }
        assert_eq!(snap.rollback_target().unwrap().deployment_id.as_str(), "b");
    }
}
