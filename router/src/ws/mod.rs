//! The WebSocket relay: once both sides have upgraded
//! (`request::upgrade`), frames go both ways until both sides close, and
//! each deployment's relays listen for the orders that close them.
//!
//! Frames and close codes pass through unchanged (RFC 6455 §7.4). The
//! router closes on its own only when told to: 1012 for a reload or revoke
//! (staggered over the order's window), 1001 when it shuts down, 1009 for an
//! oversized message, 1011 when the backend connection is lost.

mod frames;
mod half;
mod relay;

pub use relay::{CLOSE_GRACE, relay};

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::{conn::Conn, shared::Shared, state::table::Target};

/// Relays on the router's task set once the client's side is ready (an
/// engine connection is; hyper's finishes its upgrade first), holding the
/// deployment's socket lease and the connection's slot.
pub fn spawn_relay<C, B>(
    shared: &Shared,
    conn: &Conn,
    target: &Target,
    client: impl Future<Output = Result<C, hyper::Error>> + Send + 'static,
    backend: B,
) where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let orders = shared.sockets.subscribe(&target.id);
    let shutdown = shared.shutdown.clone();
    let lease = target.traffic.open_socket();
    // The connection keeps its place under the limit while it relays.
    let slot = conn.slot.clone();
    let id = target.id.clone();
    let max_message = shared.config.limits.ws_max_message_bytes;
    shared.tasks.spawn(async move {
        let _lease = lease;
        let _slot = slot;
        let mut backend = backend;
        let client = match client.await {
            Ok(client) => client,
            Err(e) => {
                // Never leave the backend socket open behind a failed accept.
                tracing::debug!(deployment = %id, error = %e, "client upgrade failed");
                let close = frames::close_frame(1011, "client upgrade failed", true);
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    backend.write_all(&close).await?;
                    backend.shutdown().await
                })
                .await;
                return;
            }
        };
        let end = relay(client, backend, max_message, orders, shutdown).await;
        tracing::debug!(deployment = %id, ?end, "websocket closed");
    });
}
