//! Thread per core: each worker is an OS thread with its own
//! single-threaded runtime, accepting from the same listening socket, as
//! nginx's worker processes do. A connection, its requests, its backend
//! connections and their wakeups all stay on one thread, so adding cores
//! adds throughput without the cross-thread handoffs (work stealing,
//! remote wakeups) a shared multi-threaded scheduler pays per request.
//!
//! The first worker is the calling task's runtime, which also runs the
//! background tasks (store sync, heartbeat, metrics).

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::{connection::accept, shared::Shared};

/// Serves `listener` on every worker until shutdown; whether all drained.
pub async fn serve(listener: TcpListener, shared: &Arc<Shared>) -> bool {
    let extra = shared.upstreams.len().saturating_sub(1);
    if extra == 0 {
        return accept::serve(
            listener,
            shared.clone(),
            shared.upstreams[0].clone(),
            shared.pools[0].clone(),
        )
        .await;
    }
    let std_listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            // The listener is gone with the failed conversion: nothing can
            // serve, so stop rather than run without a public port.
            tracing::error!(error = %e, "cannot share the listening socket with the workers; stopping");
            shared.shutdown.cancel();
            return false;
        }
    };
    let mut threads = Vec::with_capacity(extra);
    for n in 1..=extra {
        let socket = match std_listener.try_clone() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(worker = n, error = %e, "cannot start a worker: the listening socket could not be shared");
                continue;
            }
        };
        let shared = shared.clone();
        let upstream = shared.upstreams[n].clone();
        let pool = shared.pools[n].clone();
        let spawned = std::thread::Builder::new()
            .name(format!("switchyard-worker-{n}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(worker = n, error = %e, "cannot start a worker's runtime");
                        return true;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(socket) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(worker = n, error = %e, "worker cannot use the listening socket");
                            return true;
                        }
                    };
                    let drained = accept::serve(listener, shared.clone(), upstream, pool).await;
                    // WebSocket relays this worker started run on its
                    // runtime: keep it alive until they have closed.
                    drained && shared.relays_closed().await
                })
            });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => tracing::warn!(worker = n, error = %e, "cannot start a worker thread"),
        }
    }
    let first = match TcpListener::from_std(std_listener) {
        Ok(listener) => {
            accept::serve(
                listener,
                shared.clone(),
                shared.upstreams[0].clone(),
                shared.pools[0].clone(),
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "the first worker cannot use the listening socket");
            shared.shutdown.cancel();
            false
        }
    };
    // The others stop on the same shutdown signal; join them off the
    // runtime so its background tasks keep running meanwhile.
    let rest =
        tokio::task::spawn_blocking(move || threads.into_iter().all(|t| t.join().unwrap_or(false)))
            .await
            .unwrap_or(false);
    first && rest
}
