//! What the page shows, read from the store in one pass.

use std::{collections::BTreeMap, sync::Arc};

use switchyard_core::{Deployment, DeploymentId, DeploymentState, Snapshot, UnixTime};
use switchyard_retention::plan::{Action, Policy, plan};
use switchyard_store::{
    JournalEntry, ReplicaView, RequestStats, STATS_RETENTION_SECS, STATS_WINDOW_SECS, SharedStore,
    StoreError, WindowStats,
};

/// How many journal entries the page lists.
const JOURNAL_SHOWN: usize = 50;

pub type History = BTreeMap<DeploymentId, Vec<WindowStats>>;

pub struct View {
    pub now: UnixTime,
    pub snap: Snapshot,
    pub replicas: Vec<ReplicaView>,
    /// Requests over the last five minutes, per deployment.
    pub recent: BTreeMap<DeploymentId, RequestStats>,
    /// The last hour in statistics windows (read less often than the rest:
    /// it only moves when a router beats).
    pub history: Arc<History>,
    pub journal: Vec<JournalEntry>,
    /// The janitor's plan for each draining or revoked deployment, by the
    /// policy it last published; empty before its first run.
    pub plan: BTreeMap<DeploymentId, Action>,
    pub policy: Option<Policy>,
}

/// Statistics windows in the charts: the store keeps an hour of them.
pub const WINDOWS: u32 = (STATS_RETENTION_SECS / STATS_WINDOW_SECS) as u32;

impl View {
    /// Reads everything the page shows. `history` is the last read of the
    /// hour's windows, used again unless `refresh_history`.
    pub async fn read(
        store: &SharedStore,
        history: Option<Arc<History>>,
    ) -> Result<Self, StoreError> {
        let now = UnixTime::now();
        let snap = store.snapshot().await?;
        let replicas = store.replicas().await?;
        let recent = store.request_stats(now, 5).await?;
        let history = match history {
            Some(h) => h,
            None => Arc::new(store.history(now, WINDOWS).await?),
        };
        let journal = store.journal(JOURNAL_SHOWN).await?;
        let policy = switchyard_retention::published_policy(store).await?;
        let leases = ReplicaView::lease_totals(&replicas);
        let plan = match &policy {
            Some(p) => plan(&snap, &leases, &BTreeMap::new(), now, p)
                .into_iter()
                .map(|a| (a.deployment_id().clone(), a))
                .collect(),
            None => BTreeMap::new(),
        };
        Ok(Self {
            now,
            snap,
            replicas,
            recent,
            history,
            journal,
            plan,
            policy,
        })
    }

    /// Deployments newest first, as `status` lists them.
    pub fn deployments(&self) -> Vec<&Deployment> {
        let mut rows: Vec<_> = self.snap.deployments.values().collect();
        rows.sort_by(|a, b| {
            let key = |d: &Deployment| d.created_at.map_or(0.0, UnixTime::secs);
            key(b)
                .total_cmp(&key(a))
                .then_with(|| a.deployment_id.cmp(&b.deployment_id))
        });
        rows
    }

    /// Open WebSockets per replica for one deployment.
    pub fn sockets(&self, id: &DeploymentId) -> Vec<(&str, u64)> {
        let mut out: Vec<_> = self
            .replicas
            .iter()
            .filter_map(|r| {
                let n = r.leases.iter().find(|(d, _)| d == id)?.1;
                Some((r.replica.as_str(), n))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The state as a person reads it: a pending deployment with a rollout
    /// share is a canary, one without is a preview.
    pub fn state(&self, d: &Deployment) -> (String, &'static str) {
        let rollout = self
            .snap
            .rollout
            .as_ref()
            .filter(|r| r.deployment_id == d.deployment_id);
        match (d.state, rollout) {
            (_, Some(r)) => (format!("rollout {}%", r.percent), "rollout"),
            (DeploymentState::Pending, None) => ("pending (preview)".into(), "pending"),
            (DeploymentState::Active, None) => ("active".into(), "active"),
            (DeploymentState::Draining, None) => ("draining".into(), "draining"),
            (DeploymentState::Revoked, None) => ("revoked".into(), "revoked"),
        }
    }

    /// When and why the janitor retires a deployment, for the ones it will.
    pub fn retirement(&self, d: &Deployment) -> Option<String> {
        if !matches!(
            d.state,
            DeploymentState::Draining | DeploymentState::Revoked | DeploymentState::Pending
        ) {
            return None;
        }
        let Some(policy) = &self.policy else {
            return (d.state != DeploymentState::Pending)
                .then(|| "unknown until the janitor has run once".into());
        };
        Some(match self.plan.get(&d.deployment_id) {
            Some(Action::Delete { reason, .. }) => format!("deleted on the next run: {reason}"),
            Some(Action::Reload { reason, .. }) => {
                format!("clients reloaded on the next run: {reason}")
            }
            Some(Action::Keep { reason, .. }) => {
                let start = d.drain_started_at.or(d.revoked_at).or(d.created_at);
                match start {
                    Some(s) => format!(
                        "kept: {reason}; at the latest {} (max drain age {})",
                        clock(s.plus(policy.max_drain_age)),
                        switchyard_core::time::human_duration(policy.max_drain_age)
                    ),
                    None => format!("kept: {reason}"),
                }
            }
            None if d.state == DeploymentState::Pending => match policy.preview_max_age {
                Some(age)
                    if self.snap.rollout.as_ref().map(|r| &r.deployment_id)
                        != Some(&d.deployment_id) =>
                {
                    match d.created_at {
                        Some(c) => format!("preview deleted after {}", clock(c.plus(age))),
                        None => return None,
                    }
                }
                _ => return None,
            },
            None => return None,
        })
    }
}

/// A time as the page prints it: UTC date and time to the second.
pub fn clock(t: UnixTime) -> String {
    let s = t.rfc3339();
    // 2026-12-06T05:07:57Z → 2026-12-06 05:07:57
    s.get(..19).map_or(s.clone(), |c| c.replace('T', " "))
}

/// How long ago, in the words `status` uses.
pub fn ago(now: UnixTime, t: Option<UnixTime>) -> String {
    match t {
        Some(t) => format!(
            "{} ago",
            switchyard_core::time::human_duration(now.since(t))
        ),
        None => "-".into(),
    }
}
