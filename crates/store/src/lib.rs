//! The deployment store: every fact the router, janitor and CLI share.
//!
//! One interface, [`Store`], with two implementations: [`RedisStore`] for
//! production (every multi-key change is one Lua script, so it is atomic
//! across router replicas, janitor runs and CLI invocations) and
//! [`MemoryStore`] for the single-process demo and unit tests. Both pass the
//! same behavioural suite (`tests/suite`).
//!
//! Writes scale with replicas × deployments, never with requests: routers
//! count traffic in memory and report it in one [`Heartbeat`] per interval.

mod error;
mod event;
pub mod keys;
mod memory;
mod primary;
mod redis_store;
mod types;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use switchyard_core::{DeploymentId, Snapshot, UnixTime};

pub use error::StoreError;
pub use event::{ReloadNotice, StoreEvent, Subscription};
pub use memory::MemoryStore;
pub use redis_store::{RedisSettings, RedisStore};
pub use types::{
    DeleteOutcome, Heartbeat, JOURNAL_LEN, JournalEntry, JournalKind, LockToken, NewDeployment,
    Promotion, ReplicaView, RequestStats, RouterReport, STATS_RETENTION_SECS, STATS_WINDOW_SECS,
    StatsWindow, WindowStats,
};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A shared handle to whichever store a process uses.
pub type SharedStore = Arc<dyn Store>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records a new deployment as `pending`. Fails when the id or the
    /// service name is already taken.
    async fn register(&self, new: NewDeployment) -> Result<()>;

    /// Makes `id` the active deployment and every other live deployment
    /// `draining`, in one atomic step. Ends any rollout. Promoting the
    /// active deployment again changes nothing.
    async fn promote(&self, id: &DeploymentId, now: UnixTime) -> Result<Promotion>;

    /// Sends `percent` (1..=99) of unpinned traffic to the pending or
    /// draining deployment `id`, the rest to the active one. `None` ends the
    /// rollout, returning all unpinned traffic to the active deployment.
    async fn set_rollout(&self, rollout: Option<(&DeploymentId, u8)>) -> Result<()>;

    /// Stops `id` serving at once: pins to it become stale, routers close its
    /// WebSockets. Refuses the active deployment unless `promote` names the
    /// deployment that takes over in the same step.
    async fn revoke(
        &self,
        id: &DeploymentId,
        promote: Option<&DeploymentId>,
        now: UnixTime,
    ) -> Result<()>;

    /// Reads deployments, active id, rollout and version in one atomic step.
    async fn snapshot(&self) -> Result<Snapshot>;

    /// Change notifications. The subscription reconnects by itself and says
    /// so with [`StoreEvent::Resync`], after which the snapshot must be
    /// reloaded because notifications may have been missed.
    async fn subscribe(&self) -> Result<Subscription>;

    /// Tells every router replica to close the deployment's WebSockets.
    async fn publish_reload(&self, notice: &ReloadNotice) -> Result<()>;

    /// Replaces this replica's leases, and merges its activity and request
    /// statistics. Leases live until `beat.ttl` unless refreshed, so a
    /// crashed replica's leases expire by themselves.
    async fn heartbeat(&self, beat: &Heartbeat) -> Result<()>;

    /// Drops a replica's leases at once (clean shutdown).
    async fn remove_replica(&self, replica: &str) -> Result<()>;

    /// The live router replicas: their leases and what they report.
    async fn replicas(&self) -> Result<Vec<ReplicaView>>;

    /// Open WebSockets per deployment, summed over live replicas.
    async fn live_leases(&self) -> Result<BTreeMap<DeploymentId, u64>> {
        Ok(ReplicaView::lease_totals(&self.replicas().await?))
    }

    /// Request statistics per deployment over the last `windows` windows.
    async fn request_stats(
        &self,
        now: UnixTime,
        windows: u32,
    ) -> Result<BTreeMap<DeploymentId, RequestStats>>;

    /// Each registered deployment's statistics windows among the last
    /// `windows` up to `now`, oldest first; windows with nothing in them are
    /// left out.
    async fn history(
        &self,
        now: UnixTime,
        windows: u32,
    ) -> Result<BTreeMap<DeploymentId, Vec<WindowStats>>>;

    /// Adds an entry to the journal, dropping the oldest past
    /// [`JOURNAL_LEN`].
    async fn append_journal(&self, entry: &JournalEntry) -> Result<()>;

    /// The newest `limit` journal entries, newest first. Entries that no
    /// longer parse are skipped.
    async fn journal(&self, limit: usize) -> Result<Vec<JournalEntry>>;

    /// Deletes the deployment's record unless it is the active one, in one
    /// atomic step, so a promotion racing a janitor run cannot lose.
    async fn delete_unless_active(&self, id: &DeploymentId) -> Result<DeleteOutcome>;

    /// Takes the named lock if nobody holds it. Expires after `ttl` so a
    /// crashed holder cannot block others forever.
    async fn acquire_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockToken>>;

    /// Releases the lock only if `token` still holds it.
    async fn release_lock(&self, token: &LockToken) -> Result<bool>;

    /// Stores a small document one program publishes for the others (the
    /// janitor's policy, read by `switchyard status`).
    async fn put_meta(&self, name: &str, value: &str) -> Result<()>;

    async fn get_meta(&self, name: &str) -> Result<Option<String>>;

    /// Revokes, in one atomic step, every live deployment whose state epoch
    /// is below `epoch` (their pins go stale, their sockets close), for
    /// after a migration old builds cannot live with. Refuses, changing
    /// nothing, when the active deployment is below it. Returns the ids
    /// revoked.
    async fn retire_below_epoch(&self, epoch: u64, now: UnixTime) -> Result<Vec<DeploymentId>>;

    /// Writes a snapshot a router still holds into an empty store (one that
    /// lost its data: a restart without persistence, a flush), with a
    /// version past the snapshot's so every router installs it. Refuses a
    /// store that has any deployment or an active id. Returns the new
    /// version.
    async fn restore(&self, snap: &Snapshot) -> Result<u64>;
}
