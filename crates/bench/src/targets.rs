//! The things being measured, each a separate process: the backend, the
//! router (release binary, real Redis, heartbeat on), nginx.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use switchyard_core::{DeploymentId, UnixTime};
use switchyard_store::{NewDeployment, RedisSettings, RedisStore, Store};
use switchyard_testkit::{RedisServer, free_port};

pub struct Target {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// Where HTTP/2 clients (prior knowledge, no TLS) connect: the same
    /// port for the backend and the router, which serve both; a second
    /// listener for nginx and HAProxy, whose h2c listeners speak only h2.
    pub h2: SocketAddr,
    child: Child,
    redis: Option<RedisServer>,
    _dir: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .map(|d| d.join(name))
        .ok_or_else(|| anyhow::anyhow!("no executable directory"))?;
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: cargo build --release -p switchyard-router -p switchyard-bench",
        path.display()
    );
    Ok(path)
}

async fn wait_ready(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = s
                .write_all(b"GET /small HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
                .await;
            let mut head = [0u8; 12];
            if s.read_exact(&mut head).await.is_ok() && &head[9..12] == b"200" {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{what} at {addr} did not answer /small")
}

impl Target {
    pub async fn backend() -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            // Two threads, as a real app server would run here.
            .args(["backend", "--listen", "127.0.0.1:0", "--threads", "2"])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("backend stdout"))?;
        BufReader::new(stdout).read_line(&mut line)?;
        let addr: SocketAddr = line.trim().trim_start_matches("listening on ").parse()?;
        wait_ready(addr, "backend").await?;
        Ok(Self {
            name: "direct",
            addr,
            h2: addr,
            child,
            redis: None,
            _dir: None,
        })
    }

    pub async fn router(
        backend: SocketAddr,
        workers: u16,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let redis = RedisServer::start();
        let store = Arc::new(RedisStore::new(&RedisSettings::new(
            redis.url(),
            "pulse:railway",
        ))?);
        let id = DeploymentId::new("bench")?;
        store
            .register(NewDeployment {
                id: id.clone(),
                service_name: "bench".into(),
                backend_url: format!("http://{backend}"),
                service_id: None,
                state_epoch: None,
                now: UnixTime::now(),
            })
            .await?;
        store.promote(&id, UnixTime::now()).await?;
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let child = Command::new(sibling("switchyard-router")?)
            .env("REDIS_URL", redis.url())
            .env("SWITCHYARD_LISTEN", addr.to_string())
            .env("SWITCHYARD_METRICS_LISTEN", "off")
            .env("SWITCHYARD_MAX_CONNECTIONS", "60000")
            // One worker, like the nginx it is compared with: on two cores
            // shared with the load generator and backend, more threads only
            // add contention.
            .env("SWITCHYARD_WORKER_THREADS", workers.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        wait_ready(addr, "router").await?;
        Ok(Self {
            name: "router",
            addr,
            h2: addr,
            child,
            redis: Some(redis),
            _dir: None,
        })
    }

    /// nginx as an equivalent proxy: one worker, upstream keepalive,
    /// WebSocket upgrade, streaming (no response buffering). With
    /// `same_job`, it also writes the fields the router adds each way.
    pub async fn nginx(backend: SocketAddr, same_job: bool) -> anyhow::Result<Option<Self>> {
        let Ok(nginx) = which("nginx") else {
            return Ok(None);
        };
        let dir =
            std::env::temp_dir().join(format!("switchyard-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs"))?;
        let port = free_port();
        let h2_port = free_port();
        let conf = format!(
            r#"worker_processes 1;
master_process off;
daemon off;
worker_rlimit_nofile 70000;
error_log {dir}/logs/error.log crit;
pid {dir}/nginx.pid;
events {{ worker_connections 60000; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream backend {{ server {backend}; keepalive 512; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    listen 127.0.0.1:{h2_port} http2 backlog=4096;
    keepalive_requests 10000000;
    http2_max_requests 10000000;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 3600s;
      {extra}
    }}
  }}
}}
"#,
            dir = dir.display(),
            extra = if same_job { NGINX_SAME_JOB } else { "" },
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(&dir)
            .stderr(Stdio::null())
            .spawn()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        wait_ready(addr, "nginx").await?;
        Ok(Some(Self {
            name: "nginx",
            addr,
            h2: SocketAddr::from(([127, 0, 0, 1], h2_port)),
            child,
            redis: None,
            _dir: Some(dir),
        }))
    }

    /// HAProxy as an equivalent proxy: one thread, connection reuse to the
    /// backend (`http-reuse always`), WebSocket tunnels. With `same_job`,
    /// it also writes the fields the router adds each way.
    pub async fn haproxy(backend: SocketAddr, same_job: bool) -> anyhow::Result<Option<Self>> {
        let Ok(haproxy) = which("haproxy") else {
            return Ok(None);
        };
        let dir =
            std::env::temp_dir().join(format!("switchyard-bench-haproxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port = free_port();
        // HAProxy refuses to start unless it can have two descriptors per
        // connection it may accept.
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        let maxconn = (soft / 2).saturating_sub(64).clamp(1_000, 60_000);
        let h2_port = free_port();
        let conf = format!(
            "global\n  nbthread 1\n  maxconn {maxconn}\n\
             defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  timeout tunnel 3600s\n  option http-keep-alive\n  http-reuse always\n\
             frontend bench\n  bind 127.0.0.1:{port} backlog 4096\n  bind 127.0.0.1:{h2_port} proto h2 backlog 4096\n{extra}  default_backend app\n\
             backend app\n  server app {backend}\n",
            extra = if same_job { HAPROXY_SAME_JOB } else { "" },
        );
        let conf_path = dir.join("haproxy.cfg");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        wait_ready(addr, "haproxy").await?;
        Ok(Some(Self {
            name: "haproxy",
            addr,
            h2: SocketAddr::from(([127, 0, 0, 1], h2_port)),
            child,
            redis: None,
            _dir: Some(dir),
        }))
    }

    /// The peer's name in the tables, saying when it does the router's job.
    pub fn label(&self, same_job: bool) -> String {
        if same_job && matches!(self.name, "nginx" | "haproxy") {
            format!("{} (same job)", self.name)
        } else {
            self.name.to_string()
        }
    }

    /// CPU time of every thread of the process so far, from the
    /// scheduler's nanosecond counters (finer than the tick-based
    /// `/proc/<pid>/stat`).
    pub fn cpu_time(&self) -> Duration {
        let tasks = format!("/proc/{}/task", self.child.id());
        let nanos: u64 = std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Duration::from_nanos(nanos)
    }

    /// Waits (up to 15 s) until the process is quiet: under 5 ms of CPU
    /// in 250 ms, so one workload's aftermath (thousands of sockets
    /// closing) is not billed to the next.
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut last = self.cpu_time();
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.cpu_time();
            if now.saturating_sub(last) < Duration::from_millis(5) {
                return;
            }
            last = now;
        }
    }

    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("VmRSS:")
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// Total Redis commands served so far (router target only).
    pub fn redis_commands(&self) -> Option<u64> {
        let info = self.redis.as_ref()?.command("INFO commandstats");
        Some(
            info.lines()
                .filter_map(|l| l.split("calls=").nth(1))
                .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
                .sum(),
        )
    }
}

fn which(name: &str) -> anyhow::Result<PathBuf> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    anyhow::bail!("{name} not found")
}

/// What the router writes besides forwarding, for a peer to write too: a
/// request id and the `X-Forwarded-*` fields towards the backend; the
/// request id, the deployment that answered, its `Server-Timing` entries and
/// `Vary` towards the client. Byte for byte what the router sends for the
/// bench deployment, so wrk and the backend parse the same messages
/// through every proxy.
const NGINX_SAME_JOB: &str = r#"proxy_set_header X-Request-Id $request_id;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      add_header x-pulse-selected-deployment bench always;
      add_header server-timing 'switchyard-pin;desc="bench", switchyard-deployment;desc="bench", switchyard-active;desc="bench"' always;
      add_header vary x-pulse-deployment always;
      add_header x-request-id $request_id always;"#;

const HAPROXY_SAME_JOB: &str = "  unique-id-format %[rand,hex]%[rand,hex]\n  unique-id-header x-request-id\n  option forwardfor\n  http-request set-header X-Forwarded-Proto http\n  http-request set-header X-Forwarded-Host %[req.hdr(host)]\n  http-response set-header x-pulse-selected-deployment bench\n  http-response set-header server-timing 'switchyard-pin;desc=\"bench\", switchyard-deployment;desc=\"bench\", switchyard-active;desc=\"bench\"'\n  http-response set-header vary x-pulse-deployment\n  http-response set-header x-request-id %[unique-id]\n";
