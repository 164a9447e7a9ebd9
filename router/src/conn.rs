//! One accepted connection as every request on it sees it, and its place
//! under the connection limit.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
};

use tokio::sync::OwnedSemaphorePermit;

use crate::{shared::Shared, upstream::general::Upstream};

/// One accepted connection, as every request on it sees it.
pub struct Conn {
    pub peer: SocketAddr,
    /// `peer`'s address as an `X-Forwarded-For` value.
    pub(crate) peer_ip: http::HeaderValue,
    /// The backend connections of the worker serving this connection.
    pub(crate) upstream: Upstream,
    /// Set when the first request head has been read: until then the header
    /// read timeout runs from accept.
    pub(crate) seen_request: AtomicBool,
    pub(crate) slot: Arc<Slot>,
}

/// A connection's place under the limit. Held by the connection task and,
/// after an upgrade, by the WebSocket relay: the last holder frees it.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    shared: Arc<Shared>,
}

impl Slot {
    pub(crate) fn new(permit: OwnedSemaphorePermit, shared: Arc<Shared>) -> Self {
        shared.health.connections_open.fetch_add(1, Relaxed);
        Self {
            _permit: permit,
            shared,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.health.connections_open.fetch_sub(1, Relaxed);
    }
}
