//! The production store: Redis through one multiplexed, self-reconnecting
//! connection, with every multi-key change in a Lua script.
//!
//! Scripts build key names from the prefix inside Redis, so they assume a
//! single Redis (not Redis Cluster), which is what Railway provides.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crate::error::{revoke_status, rollout_status};
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::{AsyncCommands, Script, ScriptInvocation, aio::ConnectionManager};
use switchyard_core::{Deployment, DeploymentId, Rollout, Snapshot, UnixTime};
use tokio::sync::mpsc;

use crate::{
    DeleteOutcome, Heartbeat, JOURNAL_LEN, JournalEntry, LockToken, NewDeployment, Promotion,
    ReloadNotice, ReplicaView, RequestStats, Result, StatsWindow, Store, StoreError, StoreEvent,
    Subscription, WindowStats, event::WireEvent, keys::Keys, primary::Primary,
    types::STATS_RETENTION_SECS,
};

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` (TLS) URL, or a Sentinel URL
    /// (`redis+sentinel://host:26379,host:26379/primary-name`; see
    /// `primary`).
    pub url: String,
    pub prefix: String,
    /// Bound on connecting and on each command, so a dead Redis yields an
    /// error instead of a hang.
    pub timeout: Duration,
}

impl RedisSettings {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
            timeout: Duration::from_secs(3),
        }
    }
}

struct Scripts {
    register: Script,
    promote: Script,
    rollout: Script,
    revoke: Script,
    snapshot: Script,
    heartbeat: Script,
    replicas: Script,
    stats: Script,
    history: Script,
    delete: Script,
    restore: Script,
    retire_epoch: Script,
    unlock: Script,
}

impl Scripts {
    fn load() -> Self {
        let with_prelude =
            |body: &str| Script::new(&format!("{}\n{body}", include_str!("lua/prelude.lua")));
        Self {
            register: with_prelude(include_str!("lua/register.lua")),
            promote: with_prelude(include_str!("lua/promote.lua")),
            rollout: with_prelude(include_str!("lua/rollout.lua")),
            revoke: with_prelude(include_str!("lua/revoke.lua")),
            snapshot: with_prelude(include_str!("lua/snapshot.lua")),
            heartbeat: with_prelude(include_str!("lua/heartbeat.lua")),
            replicas: with_prelude(include_str!("lua/replicas.lua")),
            stats: with_prelude(include_str!("lua/stats.lua")),
            history: with_prelude(include_str!("lua/history.lua")),
            delete: with_prelude(include_str!("lua/delete.lua")),
            restore: with_prelude(include_str!("lua/restore.lua")),
            retire_epoch: with_prelude(include_str!("lua/retire_epoch.lua")),
            unlock: Script::new(include_str!("lua/unlock.lua")),
        }
    }
}

/// Cheap to clone: all clones share one connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    primary: Arc<Primary>,
    keys: Keys,
    scripts: Scripts,
    timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.keys.prefix())
            .finish()
    }
}

impl RedisStore {
    /// Prepares the store without connecting: a process can start while
    /// Redis is down and connect when it comes back.
    pub fn new(settings: &RedisSettings) -> Result<Self> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let primary = Primary::new(&settings.url, config, settings.timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                primary: Arc::new(primary),
                keys: Keys::new(&settings.prefix),
                scripts: Scripts::load(),
                timeout: settings.timeout,
            }),
        })
    }

    fn prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// Runs one command with an overall deadline (reconnect attempts and a
    /// Sentinel lookup included) so callers always get an answer. A command
    /// that failed because the connection had dropped (Redis restarted, or
    /// the primary moved) is sent once more, on the fresh connection or the
    /// new primary: every operation here is a single script or command that
    /// is safe to repeat.
    async fn call<T, F>(&self, f: impl Fn(ConnectionManager) -> F) -> Result<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let primary = &self.inner.primary;
        let timeout = self.inner.timeout;
        let deadline = timeout * 3;
        let attempt = async {
            let node = primary.node().await?;
            // The first try gets one timeout, so a primary that went away
            // leaves time to ask the Sentinels and try the new one.
            let first = tokio::time::timeout(timeout, f(node.conn.clone())).await;
            let moved = match &first {
                Ok(Err(e)) => primary.may_have_moved(e),
                Err(_) => primary.is_sentinel(),
                Ok(Ok(_)) => false,
            };
            if moved {
                tracing::debug!("Redis command failed; asking the Sentinels and retrying once");
                primary.forget(&node);
                let node = primary.resolve().await?;
                return f(node.conn.clone()).await.map_err(StoreError::from);
            }
            match first {
                Ok(Err(e)) if e.is_connection_dropped() => {
                    tracing::debug!(error = %e, "Redis connection dropped; retrying once");
                    f(node.conn.clone()).await.map_err(StoreError::from)
                }
                Ok(r) => r.map_err(StoreError::from),
                Err(_) => Err(StoreError::Unavailable(format!(
                    "no answer from Redis within {timeout:?}"
                ))),
            }
        };
        match tokio::time::timeout(deadline, attempt).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer from Redis within {deadline:?}"
            ))),
        }
    }
}

impl RedisStore {
    /// Deletes every key under this store's prefix, and nothing else: for
    /// a store that belongs to one process (the demo's), never for a
    /// store routers share. Returns how many keys went.
    pub async fn purge(&self) -> Result<u64> {
        // SCAN's MATCH is a glob: the prefix is matched literally.
        let mut pattern = String::new();
        for c in self.prefix().chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(":*");
        let pattern = &pattern;
        let mut cursor = 0u64;
        let mut deleted = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .call(|mut c| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            if !keys.is_empty() {
                let keys = &keys;
                let n: u64 =
                    self.call(|mut c| async move {
                        redis::cmd("DEL").arg(keys).query_async(&mut c).await
                    })
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

impl RedisStore {
    /// Starts an invocation of a prelude script with the prefix as ARGV[1].
    fn script<'a>(&'a self, pick: impl FnOnce(&'a Scripts) -> &'a Script) -> ScriptInvocation<'a> {
        let mut inv = pick(&self.inner.scripts).prepare_invoke();
        inv.arg(self.prefix());
        inv
    }

    async fn run<T: redis::FromRedisValue>(&self, inv: ScriptInvocation<'_>) -> Result<T> {
        let inv = &inv;
        self.call(|mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }
}

fn active_below(active: &str, epoch: u64) -> StoreError {
    StoreError::Invalid(format!(
        "the active deployment {active} is below state epoch {epoch}: promote one at or above it first"
    ))
}

fn parse_record(raw: &str) -> Result<Deployment> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("deployment record: {e}")))
}

#[async_trait]
impl Store for RedisStore {
    async fn register(&self, new: NewDeployment) -> Result<()> {
        let record = new.record();
        let json =
            serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut inv = self.script(|s| &s.register);
        inv.arg(new.id.as_str()).arg(&json).arg(&new.service_name);
        let (status, owner): (String, String) = self.run(inv).await?;
        match status.as_str() {
            "ok" => Ok(()),
            "exists" => Err(StoreError::AlreadyExists(new.id)),
            _ => Err(StoreError::ServiceTaken {
                service: new.service_name,
                owner,
            }),
        }
    }

    async fn promote(&self, id: &DeploymentId, now: UnixTime) -> Result<Promotion> {
        let mut inv = self.script(|s| &s.promote);
        inv.arg(id.as_str()).arg(now.secs());
        let (status, previous, version): (String, String, u64) = self.run(inv).await?;
        match status.as_str() {
            "promoted" => Ok(Promotion {
                previous: DeploymentId::new(&previous).ok().filter(|p| p != id),
                version,
            }),
            "revoked" => Err(StoreError::WrongState {
                id: id.clone(),
                state: "revoked".into(),
                action: "promote",
            }),
            _ => Err(StoreError::NotFound(id.clone())),
        }
    }

    async fn set_rollout(&self, rollout: Option<(&DeploymentId, u8)>) -> Result<()> {
        let (id, percent) = match rollout {
            Some((id, p)) if (1..=99).contains(&p) => (id.as_str(), p),
            Some((_, p)) => {
                return Err(StoreError::Invalid(format!(
                    "rollout percent must be 1..=99, got {p}"
                )));
            }
            None => ("", 0),
        };
        let mut inv = self.script(|s| &s.rollout);
        inv.arg(id).arg(percent);
        let (status, detail): (String, String) = self.run(inv).await?;
        rollout_status(&status, detail, rollout.map(|(id, _)| id))
    }

    async fn revoke(
        &self,
        id: &DeploymentId,
        promote: Option<&DeploymentId>,
        now: UnixTime,
    ) -> Result<()> {
        let mut inv = self.script(|s| &s.revoke);
        inv.arg(id.as_str())
            .arg(promote.map_or("", DeploymentId::as_str))
            .arg(now.secs());
        let (status, _): (String, String) = self.run(inv).await?;
        revoke_status(&status, id, promote)
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let (version, active, rollout, records): (u64, String, String, Vec<String>) =
            self.run(self.script(|s| &s.snapshot)).await?;
        let mut snap = Snapshot {
            version,
            active: DeploymentId::new(&active).ok(),
            rollout: if rollout.is_empty() {
                None
            } else {
                serde_json::from_str::<Rollout>(&rollout).ok()
            },
            deployments: BTreeMap::new(),
        };
        for raw in &records {
            // One unreadable record must not take routing down for the rest.
            match parse_record(raw) {
                Ok(d) => {
                    snap.deployments.insert(d.deployment_id.clone(), d);
                }
                Err(e) => tracing::warn!(error = %e, "skipping unreadable deployment record"),
            }
        }
        Ok(snap)
    }

    async fn subscribe(&self) -> Result<Subscription> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(listen(
            self.inner.primary.clone(),
            self.inner.keys.events(),
            self.inner.timeout,
            tx,
        ));
        Ok(Subscription::new(rx))
    }

    async fn publish_reload(&self, notice: &ReloadNotice) -> Result<()> {
        let payload = serde_json::to_string(&WireEvent::Reload(notice.clone()))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let channel = self.inner.keys.events();
        self.call(|mut c| {
            let (channel, payload) = (channel.clone(), payload.clone());
            async move { c.publish::<_, _, i64>(channel, payload).await }
        })
        .await?;
        Ok(())
    }

    async fn heartbeat(&self, beat: &Heartbeat) -> Result<()> {
        let mut inv = self.script(|s| &s.heartbeat);
        inv.arg(&beat.replica)
            .arg(beat.ttl.as_millis() as u64)
            .arg(beat.now.secs())
            .arg(StatsWindow::at(beat.now).0)
            .arg(STATS_RETENTION_SECS);
        inv.arg(beat.leases.len());
        for (id, n) in &beat.leases {
            inv.arg(id.as_str()).arg(*n);
        }
        inv.arg(beat.activity.len());
        for (id, t) in &beat.activity {
            inv.arg(id.as_str()).arg(t.secs());
        }
        inv.arg(beat.stats.len());
        for (id, s) in &beat.stats {
            inv.arg(id.as_str())
                .arg(s.requests)
                .arg(s.errors_5xx)
                .arg(s.latency_ms_sum);
        }
        let report = match &beat.report {
            Some(r) => serde_json::to_string(r).unwrap_or_default(),
            None => String::new(),
        };
        inv.arg(report);
        self.run::<i64>(inv).await?;
        Ok(())
    }

    async fn remove_replica(&self, replica: &str) -> Result<()> {
        let key = self.inner.keys.replica(replica);
        let set = self.inner.keys.replicas();
        let (key, set) = (&key, &set);
        self.call(|mut c| async move {
            redis::pipe()
                .atomic()
                .del(key)
                .srem(set, replica)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn replicas(&self) -> Result<Vec<ReplicaView>> {
        let flat: Vec<String> = self.run(self.script(|s| &s.replicas)).await?;
        Ok(ReplicaView::parse_flat(&flat))
    }

    async fn request_stats(
        &self,
        now: UnixTime,
        windows: u32,
    ) -> Result<BTreeMap<DeploymentId, RequestStats>> {
        let last = StatsWindow::at(now).0;
        let first = last.saturating_sub(u64::from(windows.max(1)) - 1);
        let mut inv = self.script(|s| &s.stats);
        inv.arg(first).arg(last);
        let flat: Vec<String> = self.run(inv).await?;
        Ok(flat
            .chunks_exact(4)
            .filter_map(|r| {
                let stats = RequestStats {
                    requests: r[1].parse().ok()?,
                    errors_5xx: r[2].parse().ok()?,
                    latency_ms_sum: r[3].parse().ok()?,
                };
                Some((DeploymentId::new(&r[0]).ok()?, stats))
            })
            .collect())
    }

    async fn history(
        &self,
        now: UnixTime,
        windows: u32,
    ) -> Result<BTreeMap<DeploymentId, Vec<WindowStats>>> {
        let last = StatsWindow::at(now).0;
        let first = last.saturating_sub(u64::from(windows.max(1)) - 1);
        let mut inv = self.script(|s| &s.history);
        inv.arg(first).arg(last);
        let flat: Vec<String> = self.run(inv).await?;
        let mut out: BTreeMap<DeploymentId, Vec<WindowStats>> = BTreeMap::new();
        for r in flat.chunks_exact(6) {
            let parsed = (|| {
                Some((
                    DeploymentId::new(&r[0]).ok()?,
                    WindowStats {
                        window: r[1].parse().ok()?,
                        requests: RequestStats {
                            requests: r[2].parse().ok()?,
                            errors_5xx: r[3].parse().ok()?,
                            latency_ms_sum: r[4].parse().ok()?,
                        },
                        websockets: r[5].parse().ok()?,
                    },
                ))
            })();
            if let Some((id, w)) = parsed {
                out.entry(id).or_default().push(w);
            }
        }
        Ok(out)
    }

    async fn append_journal(&self, entry: &JournalEntry) -> Result<()> {
        let key = self.inner.keys.journal();
        let raw = serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (key, raw) = (&key, &raw);
        self.call(|mut c| async move {
            redis::pipe()
                .atomic()
                .lpush(key, raw)
                .ltrim(key, 0, JOURNAL_LEN as isize - 1)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn journal(&self, limit: usize) -> Result<Vec<JournalEntry>> {
        let key = self.inner.keys.journal();
        let key = &key;
        let stop = limit.clamp(1, JOURNAL_LEN) as isize - 1;
        let raw: Vec<String> = self
            .call(|mut c| async move { c.lrange::<_, Vec<String>>(key, 0, stop).await })
            .await?;
        Ok(raw
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    async fn delete_unless_active(&self, id: &DeploymentId) -> Result<DeleteOutcome> {
        let mut inv = self.script(|s| &s.delete);
        inv.arg(id.as_str());
        let status: String = self.run(inv).await?;
        Ok(match status.as_str() {
            "deleted" => DeleteOutcome::Deleted,
            "active" => DeleteOutcome::Active,
            _ => DeleteOutcome::Missing,
        })
    }

    async fn acquire_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::fresh(name);
        let key = self.inner.keys.lock(name);
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(ttl.as_millis() as u64));
        let (key, value) = (&key, &token.token);
        let set: Option<String> = self
            .call(|mut c| {
                let opts = opts.clone();
                async move { c.set_options(key, value, opts).await }
            })
            .await?;
        Ok(set.map(|_| token))
    }

    async fn release_lock(&self, token: &LockToken) -> Result<bool> {
        let mut inv = self.inner.scripts.unlock.prepare_invoke();
        inv.key(self.inner.keys.lock(&token.name)).arg(&token.token);
        let n: i64 = self.run(inv).await?;
        Ok(n == 1)
    }

    async fn put_meta(&self, name: &str, value: &str) -> Result<()> {
        let key = self.inner.keys.meta(name);
        let (key, value) = (&key, value);
        self.call(|mut c| async move { c.set::<_, _, ()>(key, value).await })
            .await
    }

    async fn retire_below_epoch(&self, epoch: u64, now: UnixTime) -> Result<Vec<DeploymentId>> {
        let mut inv = self.script(|s| &s.retire_epoch);
        inv.arg(epoch).arg(now.secs());
        let out: Vec<String> = self.run(inv).await?;
        match out.first().map(String::as_str) {
            Some("ok") => Ok(out[2..]
                .iter()
                .filter_map(|id| DeploymentId::new(id).ok())
                .collect()),
            _ => Err(active_below(
                out.get(1).map(String::as_str).unwrap_or(""),
                epoch,
            )),
        }
    }

    async fn restore(&self, snap: &Snapshot) -> Result<u64> {
        let mut inv = self.script(|s| &s.restore);
        let rollout = match &snap.rollout {
            Some(r) => serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => String::new(),
        };
        inv.arg(snap.active.as_ref().map_or("", DeploymentId::as_str))
            .arg(rollout)
            .arg(snap.version);
        for d in snap.deployments.values() {
            inv.arg(serde_json::to_string(d).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        let (status, version): (String, u64) = self.run(inv).await?;
        match status.as_str() {
            "restored" => Ok(version),
            _ => Err(StoreError::NotEmpty(
                "it has deployments or an active id".into(),
            )),
        }
    }

    async fn get_meta(&self, name: &str) -> Result<Option<String>> {
        let key = self.inner.keys.meta(name);
        let key = &key;
        self.call(|mut c| async move { c.get::<_, Option<String>>(key).await })
            .await
    }
}

/// Keeps a pub/sub subscription alive until the receiver is dropped,
/// reconnecting with backoff and announcing every (re)connection as a
/// `Resync`.
async fn listen(
    primary: Arc<Primary>,
    channel: String,
    timeout: Duration,
    tx: mpsc::Sender<StoreEvent>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let err = match subscribe_once(&primary, &channel, timeout, &tx, &mut backoff).await {
            Ok(()) => return, // receiver dropped
            Err(e) => e,
        };
        if tx
            .send(StoreEvent::Disconnected { error: err })
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = tx.closed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe_once(
    primary: &Primary,
    channel: &str,
    timeout: Duration,
    tx: &mpsc::Sender<StoreEvent>,
    backoff: &mut Duration,
) -> Result<(), String> {
    let connect = async {
        // Every (re)subscription asks where the primary is now (for a
        // fixed address, that is the address), so it follows a failover.
        let node = primary.resolve().await.map_err(|e| e.to_string())?;
        let mut pubsub = node
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| e.to_string())?;
        pubsub.subscribe(channel).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(pubsub)
    };
    // Room for a Sentinel lookup before the subscription itself.
    let bound = timeout * 2;
    let pubsub = match tokio::time::timeout(bound, connect).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(format!("no answer from Redis within {bound:?}")),
    };
    *backoff = Duration::from_millis(100);
    if tx.send(StoreEvent::Resync).await.is_err() {
        return Ok(());
    }
    let (mut sink, mut stream) = pubsub.split();
    // A silently dead connection would never end the stream; probe it.
    let mut probe = tokio::time::interval(timeout.max(Duration::from_secs(1)) * 2);
    probe.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return Err("subscription connection closed".into()) };
                let Ok(payload) = msg.get_payload::<String>() else { continue };
                match serde_json::from_str::<WireEvent>(&payload) {
                    Ok(ev) => {
                        if tx.send(ev.into_event()).await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring unreadable store event"),
                }
            }
            _ = probe.tick() => {
                // In subscribe mode a RESP2 server answers PING with
                // ["pong", ""], RESP3 with "PONG": any answer proves the
                // connection alive, so it is not parsed.
                match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => return Err("subscription ping timed out".into()),
                }
            }
            _ = tx.closed() => return Ok(()),
        }
    }
}
