//! Arguments and results of store operations.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::{Deployment, DeploymentId, DeploymentState, UnixTime};

#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub id: DeploymentId,
    pub service_name: String,
    pub backend_url: String,
    pub service_id: Option<String>,
    /// See [`Deployment::state_epoch`].
    pub state_epoch: Option<u64>,
    pub now: UnixTime,
}

impl NewDeployment {
    /// The record as first stored: pending, never seen, never drained.
    pub fn record(&self) -> Deployment {
        Deployment {
            deployment_id: self.id.clone(),
            state: DeploymentState::Pending,
            service_name: self.service_name.clone(),
            backend_url: self.backend_url.clone(),
            created_at: Some(self.now),
            last_seen_at: None,
            drain_started_at: None,
            revoked_at: None,
            service_id: self.service_id.clone(),
            state_epoch: self.state_epoch,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The deployment that was active before, if any and if different.
    pub previous: Option<DeploymentId>,
    /// Snapshot version that carries the promotion.
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteOutcome {
    Deleted,
    /// Refused: the deployment is (or just became) the active one.
    Active,
    Missing,
}

/// Requests served for one deployment, as counted by router replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    pub requests: u64,
    pub errors_5xx: u64,
    pub latency_ms_sum: u64,
}

impl RequestStats {
    pub fn add(&mut self, other: &RequestStats) {
        self.requests += other.requests;
        self.errors_5xx += other.errors_5xx;
        self.latency_ms_sum += other.latency_ms_sum;
    }

    pub fn error_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors_5xx as f64 / self.requests as f64
        }
    }
}

/// Statistics are kept in fixed windows of this length.
pub const STATS_WINDOW_SECS: u64 = 60;
/// How long the store keeps a statistics window.
pub const STATS_RETENTION_SECS: u64 = 3600;

/// The statistics window a timestamp falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatsWindow(pub u64);

impl StatsWindow {
    pub fn at(t: UnixTime) -> Self {
        Self(t.secs().max(0.0) as u64 / STATS_WINDOW_SECS)
    }
}

/// One router replica's report for one interval.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub replica: String,
    pub ttl: Duration,
    /// Open WebSockets per deployment, the whole current count.
    pub leases: Vec<(DeploymentId, u64)>,
    /// Latest HTTP activity per deployment since the last beat.
    pub activity: Vec<(DeploymentId, UnixTime)>,
    /// Requests since the last beat, per deployment.
    pub stats: Vec<(DeploymentId, RequestStats)>,
    /// What the replica says of itself (kept with its leases, gone with them).
    pub report: Option<RouterReport>,
    pub now: UnixTime,
}

/// What a router replica says of itself on every heartbeat, so `status`
/// (and an operator's tools) can tell routers that serve from a store that
/// lost its data, and know their pin settings after a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterReport {
    /// The store version of the snapshot it routes on; `None` before its
    /// first snapshot.
    pub snapshot_version: Option<u64>,
    /// How many deployments that snapshot holds.
    pub deployments: usize,
    /// It refuses the store's current snapshot (the store looks like it
    /// lost its data) and routes on its last good one.
    pub store_diverged: bool,
    pub pins: switchyard_core::pin::PinPolicy,
    /// The private listener's bound address (`/snapshot` for `restore`).
    pub private_listener: Option<String>,
}

/// A live router replica as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaView {
    pub replica: String,
    /// Its last heartbeat.
    pub seen: UnixTime,
    /// Open WebSockets per deployment.
    pub leases: Vec<(DeploymentId, u64)>,
    /// `None` from routers older than the report (or an unreadable one).
    pub report: Option<RouterReport>,
}

impl ReplicaView {
    /// Open WebSockets per deployment, summed over `replicas`.
    pub fn lease_totals(replicas: &[Self]) -> std::collections::BTreeMap<DeploymentId, u64> {
        let mut totals = std::collections::BTreeMap::new();
        for r in replicas {
            for (id, n) in &r.leases {
                *totals.entry(id.clone()).or_insert(0) += n;
            }
        }
        totals
    }

    /// Parses the replicas script's flat answer: per replica its id, last
    /// beat, report ('' when none), lease count and (id, open) pairs.
    pub(crate) fn parse_flat(flat: &[String]) -> Vec<Self> {
        let mut out = Vec::new();
        let mut it = flat.iter();
        while let (Some(replica), Some(seen), Some(report), Some(n)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            let n: usize = n.parse().unwrap_or(0);
            let mut leases = Vec::with_capacity(n);
            for _ in 0..n {
                let (Some(id), Some(open)) = (it.next(), it.next()) else {
                    break;
                };
                if let (Ok(id), Ok(open)) = (DeploymentId::new(id), open.parse()) {
                    leases.push((id, open));
                }
            }
            out.push(Self {
                replica: replica.clone(),
                seen: UnixTime(seen.parse().unwrap_or(0.0)),
                leases,
                report: serde_json::from_str(report).ok(),
            });
        }
        out
    }
}

/// Proof of holding a lock; only its holder can release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockToken {
    pub name: String,
    pub token: String,
}

impl LockToken {
    pub(crate) fn fresh(name: &str) -> Self {
        use rand::Rng;
        let bits: u128 = rand::rng().random();
        Self {
            name: name.to_string(),
            token: format!("{bits:032x}"),
        }
    }
}

/// One statistics window of one deployment, as [`Store::history`] returns
/// it: the requests counted in the window and the open WebSockets last
/// reported in it, summed over replicas.
///
/// [`Store::history`]: crate::Store::history
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowStats {
    pub window: u64,
    pub requests: RequestStats,
    pub websockets: u64,
}

/// How many entries the journal keeps; older ones fall off.
pub const JOURNAL_LEN: usize = 200;

/// One thing that happened to the deployments, as the program that did it
/// tells it: the journal a dashboard shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at: UnixTime,
    /// Who did it: `cli`, `janitor`, `router <replica>`.
    pub actor: String,
    pub kind: JournalKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<DeploymentId>,
    /// One line for a person: why, from what, to what.
    #[serde(default)]
    pub detail: String,
}

impl JournalEntry {
    pub fn new(actor: impl Into<String>, kind: JournalKind) -> Self {
        Self {
            at: UnixTime::now(),
            actor: actor.into(),
            kind,
            deployment_id: None,
            detail: String::new(),
        }
    }

    pub fn deployment(mut self, id: &DeploymentId) -> Self {
        self.deployment_id = Some(id.clone());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    Registered,
    Promoted,
    RolledBack,
    Rollout,
    Revoked,
    Reloaded,
    Deleted,
    EpochRetired,
    Restored,
    RouterStarted,
    StoreDiverged,
    /// A kind a newer program wrote.
    #[serde(other)]
    Other,
}

impl JournalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Promoted => "promoted",
            Self::RolledBack => "rolled back",
            Self::Rollout => "rollout",
            Self::Revoked => "revoked",
            Self::Reloaded => "reloaded",
            Self::Deleted => "deleted",
            Self::EpochRetired => "retired by epoch",
            Self::Restored => "restored",
            Self::RouterStarted => "router started",
            Self::StoreDiverged => "store diverged",
            Self::Other => "other",
        }
    }
}
