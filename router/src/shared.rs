//! What every connection and background task of a running router shares:
//! its configuration, the routing table, the per-worker backend
//! connections, the connection limit, the WebSocket registry, shutdown,
//! and the health the metrics report.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64},
    },
};

use arc_swap::ArcSwapOption;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    RouterConfig, request, state,
    upstream::{self, general},
};

/// State shared by every connection and background task.
pub struct Shared {
    pub config: RouterConfig,
    pub table: ArcSwapOption<state::table::Table>,
    pub traffic: state::traffic::TrafficRegistry,
    /// Each worker's backend connections (a connection is only ever used
    /// on the thread whose reactor it is registered with).
    pub upstreams: Vec<general::Upstream>,
    /// Each worker's idle backend sockets for the HTTP/1 engine.
    pub pools: Vec<upstream::pool::Pool>,
    /// The connection limit, across workers.
    pub connection_permits: Arc<tokio::sync::Semaphore>,
    pub sockets: state::closing::SocketRegistry,
    /// Cancelled when shutdown starts: stop accepting, close WebSockets.
    pub shutdown: CancellationToken,
    /// WebSocket relays, awaited during the drain.
    pub tasks: TaskTracker,
    pub health: Health,
    /// `Vary` for every forwarded response: the pin header, and the cookie
    /// when cookie affinity is on.
    pub vary: http::HeaderValue,
    /// The browser client's script, with this router's names baked in.
    pub client_script: request::client::Script,
    /// The private listener's bound address, reported on each heartbeat so
    /// `switchyard restore` can be pointed at it.
    pub private_addr: Option<String>,
}

#[derive(Debug, Default)]
pub struct Health {
    pub store: state::outage::StoreHealth,
    pub connections_open: AtomicU64,
    pub connections_rejected: AtomicU64,
    /// Snapshots refused because they would have lost the active
    /// deployment or gone back in version.
    pub snapshots_refused: AtomicU64,
    /// Set while the store's latest snapshot is being refused.
    pub store_diverged: AtomicBool,
}

impl Shared {
    pub fn new(config: RouterConfig, private_addr: Option<SocketAddr>) -> Self {
        let settings = general::Settings {
            connect_timeout: config.limits.backend_connect_timeout,
            idle_timeout: general::IDLE_TIMEOUT,
            max_idle_per_backend: 1024,
        };
        let connection_permits =
            Arc::new(tokio::sync::Semaphore::new(config.limits.max_connections));
        let upstreams = (0..config.workers())
            .map(|_| general::Upstream::new(settings))
            .collect();
        let pools = (0..config.workers()).map(|_| Default::default()).collect();
        let vary = match &config.names.cookie {
            Some(_) => format!("{}, Cookie", config.names.header),
            None => config.names.header.clone(),
        };
        Self {
            vary: http::HeaderValue::try_from(vary)
                .unwrap_or_else(|_| http::HeaderValue::from_static("Cookie")),
            client_script: request::client::Script::new(&config.names),
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
    pub async fn relays_closed(&self) -> bool {
        self.tasks.close();
        tokio::time::timeout(self.config.limits.shutdown_timeout, self.tasks.wait())
            .await
            .is_ok()
    }
}
