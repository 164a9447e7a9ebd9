//! Switchyard's public router.
//!
//! `run` serves until its shutdown future resolves: it routes every request
//! from an in-memory table of the store's deployments (refreshed by
//! pub/sub), forwards HTTP and WebSockets with streaming bodies, reports
//! leases and activity on a heartbeat, and drains gracefully. `main.rs`
//! only reads configuration, installs logging and signals, and calls it.

mod access;
mod backend;
mod client;
pub mod config;
mod conn;
mod fallthrough;
mod fields;
mod fnv;
mod headers;
mod heartbeat;
mod http1;
pub mod metrics;
mod outage;
mod path;
mod pick;
mod proxy;
mod reserve;
mod respond;
mod route;
mod server;
mod sockets;
mod sync;
mod table;
mod traffic;
mod upload;
mod upstream;
mod wakeup;
mod workers;
pub mod ws;

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64},
    },
};

use arc_swap::ArcSwapOption;
use switchyard_store::SharedStore;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::{RouterArgs, RouterConfig};

/// State shared by every connection and background task.
pub struct Shared {
    pub config: RouterConfig,
    table: ArcSwapOption<table::Table>,
    traffic: traffic::TrafficRegistry,
    /// Each worker's backend connections (a connection is only ever used
    /// on the thread whose reactor it is registered with).
    upstreams: Vec<upstream::Upstream>,
    /// Each worker's idle backend sockets for the HTTP/1 engine.
    pools: Vec<http1::pool::Pool>,
    /// The connection limit, across workers.
    connection_permits: Arc<tokio::sync::Semaphore>,
    sockets: ws::SocketRegistry,
    /// Cancelled when shutdown starts: stop accepting, close WebSockets.
    shutdown: CancellationToken,
    /// WebSocket relays, awaited during the drain.
    tasks: TaskTracker,
    health: Health,
    /// `Vary` for every forwarded response: the pin header, and the cookie
    /// when cookie affinity is on.
    vary: http::HeaderValue,
    /// The browser client's script, with this router's names baked in.
    client_script: client::Script,
    /// The private listener's bound address, reported on each heartbeat so
    /// `switchyard restore` can be pointed at it.
    private_addr: Option<String>,
}

#[derive(Debug, Default)]
struct Health {
    store: outage::StoreHealth,
    connections_open: AtomicU64,
    connections_rejected: AtomicU64,
    /// Snapshots refused because they would have lost the active
    /// deployment or gone back in version.
    snapshots_refused: AtomicU64,
    /// Set while the store's latest snapshot is being refused.
    store_diverged: AtomicBool,
}

impl Shared {
    fn new(config: RouterConfig, private_addr: Option<SocketAddr>) -> Self {
        let settings = upstream::Settings {
            connect_timeout: config.limits.backend_connect_timeout,
            idle_timeout: upstream::IDLE_TIMEOUT,
            max_idle_per_backend: 1024,
        };
        let connection_permits =
            Arc::new(tokio::sync::Semaphore::new(config.limits.max_connections));
        let upstreams = (0..config.workers())
            .map(|_| upstream::Upstream::new(settings))
            .collect();
        let pools = (0..config.workers()).map(|_| Default::default()).collect();
        let vary = match &config.names.cookie {
            Some(_) => format!("{}, Cookie", config.names.header),
            None => config.names.header.clone(),
        };
        Self {
            vary: http::HeaderValue::try_from(vary)
                .unwrap_or_else(|_| http::HeaderValue::from_static("Cookie")),
            client_script: client::Script::new(&config.names),
            private_addr: private_addr.map(|a| a.to_string()),
            config,
            table: ArcSwapOption::empty(),
            traffic: Default::default(),
            upstreams,
            pools,
            connection_permits,
            sockets: Default::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            health: Health::default(),
        }
    }
    /// Waits, up to the shutdown deadline, for the WebSocket relays to
    /// finish closing; whether they all did. Each worker waits before its
    /// runtime stops, since its relays run there.
    async fn relays_closed(&self) -> bool {
        self.tasks.close();
        tokio::time::timeout(self.config.limits.shutdown_timeout, self.tasks.wait())
            .await
            .is_ok()
    }
}

/// The sockets a router serves on.
#[derive(Debug)]
pub struct Listeners {
    pub public: TcpListener,
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &RouterConfig) -> std::io::Result<Self> {
        let public = listen(config.listen, config.limits.listen_backlog).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
        })?;
        let metrics = match config.metrics_listen {
            Some(addr) => match TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) if config.metrics_explicit => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("cannot serve metrics on {addr}: {e}"),
                    ));
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "default metrics address unavailable; serving without metrics (set SWITCHYARD_METRICS_LISTEN)");
                    None
                }
            },
            None => None,
        };
        Ok(Self { public, metrics })
    }

    pub fn public_addr(&self) -> std::io::Result<SocketAddr> {
        self.public.local_addr()
    }
}

/// A listening socket with an explicit accept-queue length (the kernel caps
/// it at `net.core.somaxconn`).
pub fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted router rebinds while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Shut down on request; `drained` says whether in-flight work finished
    /// within the deadline.
    Requested { drained: bool },
    /// A background task died, so the process stopped rather than serve
    /// half alive.
    Failed(String),
}

pub async fn run(
    config: RouterConfig,
    store: SharedStore,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Exit {
    let private_addr = listeners.metrics.as_ref().and_then(|l| l.local_addr().ok());
    let shared = Arc::new(Shared::new(config, private_addr));
    let background = CancellationToken::new();
    let supervisor = TaskTracker::new();
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::channel::<String>(4);

    let supervise = |name: &'static str,
                     task: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>| {
        let shared = shared.clone();
        let background = background.clone();
        let failed = failed_tx.clone();
        supervisor.spawn(async move {
            let outcome = tokio::spawn(task).await;
            if !background.is_cancelled() {
                let why = match outcome {
                    Ok(()) => format!("{name} stopped unexpectedly"),
                    Err(e) => format!("{name} panicked: {e}"),
                };
                tracing::error!(task = name, "{why}; shutting down");
                let _ = failed.send(why).await;
                shared.shutdown.cancel();
            }
        });
    };
    supervise(
        "snapshot sync",
        Box::pin(sync::run(shared.clone(), store.clone(), background.clone())),
    );
    supervise(
        "lease heartbeat",
        Box::pin(heartbeat::run(
            shared.clone(),
            store.clone(),
            background.clone(),
        )),
    );
    supervise(
        "backend pool sweep",
        Box::pin(upstream::sweep_every(
            {
                let (upstreams, pools) = (shared.upstreams.clone(), shared.pools.clone());
                move || {
                    upstreams.iter().for_each(upstream::Upstream::sweep);
                    pools.iter().for_each(http1::pool::Pool::sweep);
                }
            },
            std::time::Duration::from_secs(15),
            background.clone(),
        )),
    );
    if let Some(m) = listeners.metrics {
        supervise(
            "metrics server",
            Box::pin(metrics::serve(m, shared.clone(), background.clone())),
        );
    }

    let trigger = shared.clone();
    let watcher = tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => tracing::info!("shutdown requested"),
            _ = trigger.shutdown.cancelled() => {}
        }
        trigger.shutdown.cancel();
    });

    tracing::info!(
        listen = %listeners.public.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        replica = %shared.config.replica_id,
        "router serving"
    );
    let conns_drained = workers::serve(listeners.public, &shared).await;
    let sockets_drained = shared.relays_closed().await;
    let drained = conns_drained && sockets_drained;
    tracing::info!(drained, "connections drained");

    background.cancel();
    supervisor.close();
    supervisor.wait().await;
    watcher.abort();
    match failed_rx.try_recv() {
        Ok(why) => Exit::Failed(why),
        Err(_) => Exit::Requested { drained },
    }
}

/// Asks a router on this machine for its health: the container image has no
/// curl, so the binary checks itself.
pub async fn probe_health(port: u16, path: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.map_err(|e| e.to_string())?;
        if &head[9..12] == b"200" {
            Ok(())
        } else {
            Err(format!(
                "answered {}",
                String::from_utf8_lossy(&head[9..12])
            ))
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), probe)
        .await
        .unwrap_or_else(|_| Err("no answer within 3s".into()))
}

/// Installs the tracing subscriber: text for people, JSON for Railway.
pub fn init_logging(format: switchyard_core::config::LogFormat) {
    switchyard_core::logging::init(format, "info", switchyard_core::logging::Output::Stdout);
}

/// Resolves on SIGTERM or SIGINT, logging which.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
            _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "signal received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
