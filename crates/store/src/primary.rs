//! Which Redis the store talks to: one fixed address (`redis://`,
//! `rediss://`), or whichever node a set of Sentinels names as the primary
//! (`redis+sentinel://`, `rediss+sentinel://`).
//!
//! The Sentinel form is the one other Redis clients accept:
//!
//! ```text
//! redis+sentinel://[[user]:password@]host1:26379[,host2:26379...]/primary-name[/db][?sentinel_password=...]
//! ```
//!
//! The credentials and the TLS choice apply to the primary; Sentinels are
//! reached with the same TLS choice and, when set, `sentinel_password`
//! (Sentinels usually have no password of their own).
//!
//! The redis crate resolves a primary through Sentinels but keeps no
//! connection to it across a failover, so this module does: a
//! self-reconnecting connection to the resolved node, asked of the
//! Sentinels again whenever a command fails in a way a failover causes
//! (connection refused or dropped, no answer, `READONLY` from a demoted
//! primary).

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use redis::{
    ConnectionAddr, RedisError, TlsMode,
    aio::{ConnectionManager, ConnectionManagerConfig},
    sentinel::{Sentinel, SentinelNodeConnectionInfo},
};

use crate::{Result, StoreError};

/// The node commands go to, with its own reconnecting connection.
pub(crate) struct Node {
    pub client: redis::Client,
    pub conn: ConnectionManager,
    /// `host:port`, for logs (never credentials).
    pub addr: String,
}

pub(crate) struct Primary {
    how: How,
    current: RwLock<Option<Arc<Node>>>,
    config: ConnectionManagerConfig,
    timeout: Duration,
}

enum How {
    Fixed,
    Sentinel(Box<Sentinels>),
}

struct Sentinels {
    sentinel: tokio::sync::Mutex<Sentinel>,
    name: String,
    node: SentinelNodeConnectionInfo,
}

impl Primary {
    /// Parses the URL without connecting anywhere.
    pub fn new(url: &str, config: ConnectionManagerConfig, timeout: Duration) -> Result<Self> {
        let (how, current) = match sentinel_url(url)? {
            None => {
                let client = redis::Client::open(url).map_err(|_| {
                    // The client's own error names an enum variant, not
                    // what is wrong: say it in the user's terms.
                    StoreError::Invalid(
                        if url.starts_with("redis://")
                            || url.starts_with("rediss://")
                            || url.starts_with("redis+unix://")
                            || url.starts_with("unix://")
                        {
                            "not a Redis URL the client can read (check the host, port and database number)"
                        } else {
                            "not a Redis URL (it must start with redis:// or rediss://)"
                        }
                        .into(),
                    )
                })?;
                (How::Fixed, Some(Arc::new(node_from(client, &config)?)))
            }
            Some(parsed) => {
                let sentinel = Sentinel::build(parsed.sentinels)
                    .map_err(|e| StoreError::Invalid(format!("Redis Sentinel URL: {e}")))?;
                let mut node =
                    SentinelNodeConnectionInfo::default().set_redis_connection_info(parsed.info);
                if parsed.tls {
                    node = node.set_tls_mode(TlsMode::Secure);
                }
                let how = How::Sentinel(Box::new(Sentinels {
                    sentinel: tokio::sync::Mutex::new(sentinel),
                    name: parsed.name,
                    node,
                }));
                (how, None)
            }
        };
        Ok(Self {
            how,
            current: RwLock::new(current),
            config,
            timeout,
        })
    }

    pub fn is_sentinel(&self) -> bool {
        matches!(self.how, How::Sentinel(_))
    }

    /// The node to use now, asking the Sentinels first if none is known.
    pub async fn node(&self) -> Result<Arc<Node>> {
        let known = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match known {
            Some(node) => Ok(node),
            None => self.resolve().await,
        }
    }

    /// Drops `node` as the known primary (unless another call already
    /// replaced it), so the next call asks the Sentinels before anything
    /// else instead of spending its deadline on a node that is gone.
    pub fn forget(&self, node: &Arc<Node>) {
        if !self.is_sentinel() {
            return;
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, node)) {
            // Said here, once per node: `resolve` then finds the primary
            // afresh and names it.
            tracing::warn!(addr = %node.addr, "Redis primary stopped answering; asking the Sentinels");
            *current = None;
        }
    }

    /// Whether `e` may mean the primary moved, so the Sentinels should be
    /// asked again before a retry.
    pub fn may_have_moved(&self, e: &RedisError) -> bool {
        self.is_sentinel()
            && (e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_io_error()
                || e.is_timeout()
                || e.code() == Some("READONLY"))
    }

    /// Asks the Sentinels which node is the primary now (the redis crate
    /// also checks that node's `ROLE`), and switches to it if it changed.
    /// Concurrent callers share one question.
    pub async fn resolve(&self) -> Result<Arc<Node>> {
        let How::Sentinel(sentinels) = &self.how else {
            return self
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .ok_or_else(|| StoreError::Unavailable("no Redis address".into()));
        };
        let Sentinels {
            sentinel,
            name,
            node,
        } = sentinels.as_ref();
        let mut sentinel = sentinel.lock().await;
        let asked = tokio::time::timeout(self.timeout, sentinel.async_master_for(name, Some(node)))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "no Sentinel named a primary for {name:?} within {:?}",
                    self.timeout
                ))
            })?;
        let client = asked.map_err(|e| {
            StoreError::Unavailable(format!("no primary for {name:?} from the Sentinels: {e}"))
        })?;
        let addr = addr_of(&client);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(node) = current.as_ref()
            && node.addr == addr
        {
            return Ok(node.clone());
        }
        match current.as_ref() {
            Some(old) => {
                tracing::warn!(from = %old.addr, to = %addr, primary = %name, "Redis primary moved; switching")
            }
            None => tracing::info!(primary = %name, %addr, "Redis primary found through Sentinel"),
        }
        let fresh = Arc::new(node_from(client, &self.config)?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }
}

fn node_from(client: redis::Client, config: &ConnectionManagerConfig) -> Result<Node> {
    let addr = addr_of(&client);
    let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
    Ok(Node { client, conn, addr })
}

fn addr_of(client: &redis::Client) -> String {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            format!("{host}:{port}")
        }
        other => other.to_string(),
    }
}

struct SentinelUrl {
    sentinels: Vec<String>,
    name: String,
    /// For the primary: db and credentials.
    info: redis::RedisConnectionInfo,
    tls: bool,
}

/// `Ok(None)` for a URL that is not a Sentinel URL.
fn sentinel_url(url: &str) -> Result<Option<SentinelUrl>> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
        (true, rest)
    } else {
        return Ok(None);
    };
    let bad = |why: &str| {
        StoreError::Invalid(format!(
            "Redis Sentinel URL: {why} (expected redis+sentinel://[:password@]host:port[,host:port...]/primary-name[/db])"
        ))
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no primary name"))?;
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let name = segments
        .next()
        .ok_or_else(|| bad("no primary name"))?
        .to_owned();
    let db = match segments.next() {
        Some(d) => d.parse::<i64>().map_err(|_| bad("db is not a number"))?,
        None => 0,
    };
    if segments.next().is_some() {
        return Err(bad("too many path segments"));
    }
    let mut sentinel_password = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sentinel_password", v)) => sentinel_password = Some(decode(v)),
            _ => return Err(bad("unknown query parameter")),
        }
    }
    let scheme = if tls { "rediss" } else { "redis" };
    let sentinels = hosts
        .split(',')
        .map(|h| {
            if h.is_empty() {
                return Err(bad("empty host"));
            }
            let h = if h.contains(':') && !h.ends_with(']') {
                h.to_owned()
            } else {
                format!("{h}:26379")
            };
            Ok(match &sentinel_password {
                Some(p) => format!("{scheme}://:{}@{h}", encode(p)),
                None => format!("{scheme}://{h}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut info = redis::RedisConnectionInfo::default().set_db(db);
    if let Some(userinfo) = userinfo {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        if !user.is_empty() {
            info = info.set_username(decode(user));
        }
        if !password.is_empty() {
            info = info.set_password(decode(password));
        }
    }
    Ok(Some(SentinelUrl {
        sentinels,
        name,
        info,
        tls,
    }))
}

/// Percent-decoding of a URL component, as `redis://` userinfo is read.
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_are_not_sentinel_urls() {
        assert!(sentinel_url("redis://h:6379").unwrap().is_none());
        assert!(sentinel_url("rediss://h:6380/1").unwrap().is_none());
    }

    #[test]
    fn sentinel_url_names_hosts_primary_db_and_credentials() {
        let u = sentinel_url("redis+sentinel://:p%40ss@10.0.0.1:26379,10.0.0.2/mymaster/2")
            .unwrap()
            .unwrap();
        assert_eq!(
            u.sentinels,
            ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"]
        );
        assert_eq!(u.name, "mymaster");
        let info = &u.info;
        assert_eq!(info.db(), 2);
        assert_eq!(info.password(), Some("p@ss"));
    }

    #[test]
    fn sentinel_password_goes_to_sentinels_only() {
        let u = sentinel_url("rediss+sentinel://h1:1,h2:2/m?sentinel_password=s3")
            .unwrap()
            .unwrap();
        assert_eq!(u.sentinels, ["rediss://:s3@h1:1", "rediss://:s3@h2:2"]);
        assert_eq!(u.info.password(), None);
        assert!(u.tls);
    }

    #[test]
    fn malformed_sentinel_urls_say_what_is_wrong() {
        for (url, why) in [
            ("redis+sentinel://h1:1", "no primary name"),
            ("redis+sentinel://h1:1/", "no primary name"),
            ("redis+sentinel://h1:1,,h2:2/m", "empty host"),
            ("redis+sentinel://h1:1/m/x", "db is not a number"),
            ("redis+sentinel://h1:1/m?x=1", "unknown query parameter"),
        ] {
            let Err(StoreError::Invalid(msg)) = sentinel_url(url) else {
                panic!("{url} accepted");
            };
            assert!(msg.contains(why), "{url}: {msg}");
            assert!(msg.contains("redis+sentinel://"), "{msg}");
        }
    }
}
