//! The production store: Redis through one multiplexed, self-reconnecting
//! connection, with every multi-key change in a Lua script.
//!
//! Scripts build key names from the prefix inside Redis, so they assume a
//! single Redis (not Redis Cluster), which is what Railway provides.

mod connection;
mod subscription;

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use redis::AsyncCommands;
use switchyard_core::{Deployment, DeploymentId, Rollout, Snapshot, UnixTime};
use tokio::sync::mpsc;

pub use connection::{RedisSettings, RedisStore};
use subscription::listen;

use crate::{
    DeleteOutcome, Heartbeat, JOURNAL_LEN, JournalEntry, LockToken, NewDeployment, Promotion,
    ReloadNotice, ReplicaView, RequestStats, Result, StatsWindow, Store, StoreError, Subscription,
    WindowStats,
    error::{revoke_status, rollout_status},
    event::WireEvent,
    types::STATS_RETENTION_SECS,
};

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
