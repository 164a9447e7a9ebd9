//! Switchyard's public router.
//!
//! `run` serves until its shutdown future resolves: it routes every request
//! from an in-memory table of the store's deployments (refreshed by
//! pub/sub), forwards HTTP and WebSockets with streaming bodies, reports
//! leases and activity on a heartbeat, and drains gracefully. `main.rs`
//! only reads configuration, installs logging and signals, and calls it.

//! The source is laid out by the way a request travels: `connection`
//! (accept, limits, the HTTP/1 engine's connection loop), `request` (filter,
//! route, upstream request, response filter, log), `upstream` (body framing
//! and backend connections), `ws` (the WebSocket relay) and `state` (the
//! routing table, its sync from the store and the heartbeat back), over
//! `net` (socket I/O and timers). What every part shares is in `shared`;
//! this root only wires them together.

pub mod config;
mod conn;
mod connection;
mod error;
mod fnv;
pub mod metrics;
mod net;
mod pins;
mod process;
mod request;
mod shared;
mod state;
mod upstream;
mod ws;

use std::{future::Future, sync::Arc};

use switchyard_store::SharedStore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::{RouterArgs, RouterConfig};
pub use connection::{Listeners, listen};
pub use process::{init_logging, probe_health, shutdown_signal};
use shared::Shared;
use state::{heartbeat, sync};
use upstream::{general, pool::Pool};

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
        Box::pin(general::sweep_every(
            {
                let (upstreams, pools) = (shared.upstreams.clone(), shared.pools.clone());
                move || {
                    upstreams.iter().for_each(general::Upstream::sweep);
                    pools.iter().for_each(Pool::sweep);
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
    let conns_drained = connection::workers::serve(listeners.public, &shared).await;
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
