//! A Redis primary with replicas, watched by Sentinels, all on free
//! loopback ports and killed on drop: for failover tests. Sentinels run as
//! `redis-server <conf> --sentinel` (what Debian's `redis-sentinel` is), so
//! `redis-server` is all it needs.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use crate::redis::{RedisServer, command, free_port};

/// The name the Sentinels monitor the primary under.
pub const PRIMARY_NAME: &str = "switchyard";

pub struct SentinelSet {
    /// Every data node, the first started as primary.
    pub nodes: Vec<RedisServer>,
    sentinels: Vec<(u16, Child)>,
    dir: PathBuf,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl SentinelSet {
    /// A primary, `replicas` replicas and `sentinels` Sentinels (quorum: a
    /// majority), ready to fail over: every Sentinel sees the others and
    /// every replica is in sync.
    pub fn start(replicas: usize, sentinels: usize) -> Self {
        let primary = RedisServer::start();
        let mut nodes = vec![];
        let primary_port = primary.port();
        nodes.push(primary);
        for _ in 0..replicas {
            nodes.push(RedisServer::start_replica_of(primary_port));
        }
        let dir = std::env::temp_dir().join(format!(
            "switchyard-sentinel-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create sentinel temp dir");
        let quorum = sentinels / 2 + 1;
        let mut set = Self {
            nodes,
            sentinels: vec![],
            dir,
        };
        for i in 0..sentinels {
            let port = free_port();
            let conf = set.dir.join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {PRIMARY_NAME} 127.0.0.1 {primary_port} {quorum}\n\
                     sentinel down-after-milliseconds {PRIMARY_NAME} 1000\n\
                     sentinel failover-timeout {PRIMARY_NAME} 4000\n\
                     sentinel parallel-syncs {PRIMARY_NAME} 1\n",
                    dir = set.dir.display()
                ),
            )
            .expect("write sentinel config");
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run redis-server --sentinel (apt-get install redis-server)");
            set.sentinels.push((port, child));
        }
        set.wait_until(
            Duration::from_secs(30),
            "Sentinels to see each other and the replicas",
            |s| {
                s.sentinels.iter().all(|(port, _)| {
                    let Ok(info) = command(*port, &format!("SENTINEL MASTER {PRIMARY_NAME}"))
                    else {
                        return false;
                    };
                    field(&info, "num-other-sentinels") == Some((sentinels - 1).to_string())
                        && field(&info, "num-slaves") == Some(replicas.to_string())
                })
            },
        );
        set.wait_until(Duration::from_secs(30), "replicas to sync", |s| {
            s.nodes[1..].iter().all(|n| {
                command(n.port(), "INFO replication")
                    .is_ok_and(|i| i.contains("master_link_status:up"))
            })
        });
        set
    }

    /// `redis+sentinel://` URL for the store.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/{PRIMARY_NAME}", hosts.join(","))
    }

    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|(p, _)| *p).collect()
    }

    /// The primary's port as the first answering Sentinel names it.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|(port, _)| {
            let reply = command(
                *port,
                &format!("SENTINEL GET-MASTER-ADDR-BY-NAME {PRIMARY_NAME}"),
            )
            .ok()?;
            bulk_strings(&reply).get(1)?.parse().ok()
        })
    }

    /// The data node on `port`.
    pub fn node(&mut self, port: u16) -> Option<&mut RedisServer> {
        self.nodes.iter_mut().find(|n| n.port() == port)
    }

    /// Kills the current primary (as a crash would); returns its port.
    pub fn kill_primary(&mut self) -> u16 {
        let old = self.primary_port().expect("a Sentinel names the primary");
        self.node(old).expect("the primary is one of ours").stop();
        old
    }

    /// The new primary once the Sentinels have promoted a replica in place
    /// of the one on `old` and it answers as primary: poll it with a
    /// deadline (this never blocks).
    pub fn promoted_after(&self, old: u16) -> Option<u16> {
        self.primary_port()
            .filter(|p| *p != old)
            .filter(|p| command(*p, "ROLE").is_ok_and(|r| r.contains("master")))
    }

    fn wait_until(&self, within: Duration, what: &str, mut ok: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out after {within:?} waiting for {what}");
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for (_, child) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The bulk strings of a RESP reply, in order.
pub fn bulk_strings(reply: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut lines = reply.split("\r\n");
    while let Some(line) = lines.next() {
        if line.starts_with('$')
            && line != "$-1"
            && let Some(s) = lines.next()
        {
            out.push(s);
        }
    }
    out
}

/// A field of a flat key/value RESP array (`SENTINEL MASTER`).
fn field(reply: &str, name: &str) -> Option<String> {
    let strings = bulk_strings(reply);
    strings
        .chunks(2)
        .find(|kv| kv.first() == Some(&name))
        .and_then(|kv| kv.get(1))
        .map(|v| (*v).to_owned())
}
