//! The connection to Redis: settings, the one multiplexed connection every
//! clone shares (reconnecting, and following a Sentinel's primary), and
//! the Lua scripts loaded once.

use std::{sync::Arc, time::Duration};

use redis::{Script, ScriptInvocation, aio::ConnectionManager};

use crate::{Result, StoreError, keys::Keys, primary::Primary};

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

pub(super) struct Scripts {
    pub(super) register: Script,
    pub(super) promote: Script,
    pub(super) rollout: Script,
    pub(super) revoke: Script,
    pub(super) snapshot: Script,
    pub(super) heartbeat: Script,
    pub(super) replicas: Script,
    pub(super) stats: Script,
    pub(super) history: Script,
    pub(super) delete: Script,
    pub(super) restore: Script,
    pub(super) retire_epoch: Script,
    pub(super) unlock: Script,
}

impl Scripts {
    fn load() -> Self {
        let with_prelude =
            |body: &str| Script::new(&format!("{}\n{body}", include_str!("../lua/prelude.lua")));
        Self {
            register: with_prelude(include_str!("../lua/register.lua")),
            promote: with_prelude(include_str!("../lua/promote.lua")),
            rollout: with_prelude(include_str!("../lua/rollout.lua")),
            revoke: with_prelude(include_str!("../lua/revoke.lua")),
            snapshot: with_prelude(include_str!("../lua/snapshot.lua")),
            heartbeat: with_prelude(include_str!("../lua/heartbeat.lua")),
            replicas: with_prelude(include_str!("../lua/replicas.lua")),
            stats: with_prelude(include_str!("../lua/stats.lua")),
            history: with_prelude(include_str!("../lua/history.lua")),
            delete: with_prelude(include_str!("../lua/delete.lua")),
            restore: with_prelude(include_str!("../lua/restore.lua")),
            retire_epoch: with_prelude(include_str!("../lua/retire_epoch.lua")),
            unlock: Script::new(include_str!("../lua/unlock.lua")),
        }
    }
}

/// Cheap to clone: all clones share one connection.
#[derive(Clone)]
pub struct RedisStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) primary: Arc<Primary>,
    pub(super) keys: Keys,
    pub(super) scripts: Scripts,
    pub(super) timeout: Duration,
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

    pub(super) fn prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// Runs one command with an overall deadline (reconnect attempts and a
    /// Sentinel lookup included) so callers always get an answer. A command
    /// that failed because the connection had dropped (Redis restarted, or
    /// the primary moved) is sent once more, on the fresh connection or the
    /// new primary: every operation here is a single script or command that
    /// is safe to repeat.
    pub(super) async fn call<T, F>(&self, f: impl Fn(ConnectionManager) -> F) -> Result<T>
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
    pub(super) fn script<'a>(
        &'a self,
        pick: impl FnOnce(&'a Scripts) -> &'a Script,
    ) -> ScriptInvocation<'a> {
        let mut inv = pick(&self.inner.scripts).prepare_invoke();
        inv.arg(self.prefix());
        inv
    }

    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        inv: ScriptInvocation<'_>,
    ) -> Result<T> {
        let inv = &inv;
        self.call(|mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }
}
