//! An in-process router on a port-0 listener, pointed at real backends, with
//! an injected shutdown; plus small HTTP and WebSocket client helpers.

#![allow(dead_code, unused_imports)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use switchyard_core::{DeploymentId, UnixTime};
use switchyard_router::{Exit, Listeners, RouterConfig};
use switchyard_store::{MemoryStore, NewDeployment, SharedStore};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

pub use switchyard_testkit::{Backend, RedisServer, eventually};

pub fn id(s: &str) -> DeploymentId {
    DeploymentId::new(s).unwrap()
}

pub fn test_config() -> RouterConfig {
    let mut c = RouterConfig {
        replica_id: "test-router".into(),
        reload_interval: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(100),
        lease_ttl: Duration::from_secs(2),
        ..Default::default()
    };
    c.limits.shutdown_timeout = Duration::from_secs(5);
    c.limits.backend_connect_timeout = Duration::from_millis(500);
    c
}

pub struct TestRouter {
    pub addr: SocketAddr,
    health_path: String,
    pub metrics: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Exit>,
}

impl TestRouter {
    pub async fn start(config: RouterConfig, store: SharedStore) -> Self {
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = public.local_addr().unwrap();
        let metrics_addr = metrics.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let health_path = config.names.health_path.clone();
        let task = tokio::spawn(switchyard_router::run(
            config,
            store,
            Listeners {
                public,
                metrics: Some(metrics),
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let router = Self {
            addr,
            health_path,
            metrics: metrics_addr,
            stop: Some(stop),
            task,
        };
        router.wait_for_snapshot().await;
        router
    }

    /// Waits until the router has its first snapshot (its health check
    /// says ready), without sending a request to any backend.
    pub async fn wait_for_snapshot(&self) {
        let addr = self.addr;
        let path = self.health_path.as_str();
        eventually(
            Duration::from_secs(10),
            "router to load a snapshot",
            || async move {
                let r = get(addr, path, &[]).await;
                (r.status == 200).then_some(())
            },
        )
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn shutdown(mut self) -> Exit {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("router stops")
            .expect("router task")
    }
}

/// Registers backends and promotes the last of `promote` in order.
pub async fn deploy(store: &SharedStore, deps: &[(&str, &Backend)], promote: &[&str]) {
    for (name, backend) in deps {
        store
            .register(NewDeployment {
                id: id(name),
                service_name: name.to_string(),
                backend_url: backend.url(),
                service_id: None,
                state_epoch: None,
                now: UnixTime::now(),
            })
            .await
            .unwrap();
    }
    for p in promote {
        store.promote(&id(p), UnixTime::now()).await.unwrap();
    }
}

/// Registers a backend by URL (a test `Backend` or anything else) and
/// makes it active.
pub async fn active_at(store: &SharedStore, name: &str, url: String) {
    store
        .register(NewDeployment {
            id: id(name),
            service_name: name.into(),
            backend_url: url,
            service_id: None,
            state_epoch: None,
            now: UnixTime::now(),
        })
        .await
        .unwrap();
    store.promote(&id(name), UnixTime::now()).await.unwrap();
}

/// v1 then v2, both promoted (v1 draining, v2 active), behind a router
/// with the tests' configuration.
pub async fn two_deployments() -> (TestRouter, Backend, Backend, SharedStore) {
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1), ("v2", &v2)], &["v1", "v2"]).await;
    let router = TestRouter::start(test_config(), store.clone()).await;
    (router, v1, v2, store)
}

pub fn memory_store() -> SharedStore {
    Arc::new(MemoryStore::new())
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn deployment(&self) -> String {
        self.json()["deployment"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One request; `None` when no answer came (nothing listening, connection
/// reset), for readiness polls.
pub async fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Option<Reply> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client.request(req.body(Full::new(body)).ok()?).await.ok()?;
    let (parts, body) = res.into_parts();
    Some(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.ok()?.to_bytes(),
    })
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    try_request(addr, method, path, headers, body)
        .await
        .unwrap_or_else(|| panic!("no answer to {method} {path} from {addr}"))
}

pub async fn try_get(addr: SocketAddr, path: &str) -> Option<Reply> {
    try_request(addr, "GET", path, &[], Bytes::new()).await
}

pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", path, headers, Bytes::new()).await
}

/// Sends bytes as they are and returns the raw response text, for requests a
/// well-behaved client library would refuse to send.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A TCP relay in front of `backend` that counts the connections made to
/// it: what the router's pool costs the backend.
pub async fn counted(backend: &Backend) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (n, to) = (count.clone(), backend.addr);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (url, count)
}

/// What a scripted backend does after its answer.
#[derive(Debug, Clone, Copy)]
pub enum After {
    /// Reads on and never answers again.
    Hold,
    /// Closes at once, whatever the client still sends.
    Close,
}

/// A raw backend: on each connection it reads until `until` has arrived,
/// answers `reply` as it is, reports what it read, then does `after`. For
/// answers and framings a well-behaved server would not send.
pub async fn scripted_backend(
    until: &'static [u8],
    reply: &'static [u8],
    after: After,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(until.len()).any(|w| w == until) {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(reply).await;
                let _ = tx.send(got);
                if let After::Hold = after {
                    while let Ok(1..) = s.read(&mut buf).await {}
                }
            });
        }
    });
    (url, rx)
}
