//! Which deployments' long-lived connections (WebSockets, event streams)
//! have been ordered closed on this replica: `sync` gives the orders (a
//! reload, a revoke, a removal), each relay and stream listens for its
//! deployment's.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Mutex, time::Duration};

use switchyard_core::DeploymentId;
use tokio::sync::watch;

/// See [`Streamed::end_when`].
pub type Retired = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A request to close a deployment's sockets.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseOrder {
    pub code: u16,
    pub reason: String,
    /// Closes are spread at random over this window.
    pub window: Duration,
}

/// Per deployment, a channel every relay to it listens on.
#[derive(Debug, Default)]
pub struct SocketRegistry {
    orders: Mutex<HashMap<DeploymentId, watch::Sender<Option<CloseOrder>>>>,
}

impl SocketRegistry {
    pub fn subscribe(&self, id: &DeploymentId) -> watch::Receiver<Option<CloseOrder>> {
        let mut map = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry(id.clone())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Resolves when `id` is told to close its connections: revoked,
    /// removed, or retired by the janitor. For response streams, which end
    /// at once (a stream has no close code to stagger).
    pub fn retired(&self, id: &DeploymentId) -> Retired {
        let mut orders = self.subscribe(id);
        Box::pin(async move {
            let _ = orders.wait_for(Option::is_some).await;
        })
    }

    /// Whether a close order for `id` is already out (say, a staggered
    /// reload the janitor broadcast just before revoking the deployment).
    pub fn has_order(&self, id: &DeploymentId) -> bool {
        let map = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).is_some_and(|tx| tx.borrow().is_some())
    }

    /// Tells this replica's sockets to `id` to close; returns how many.
    pub fn order(&self, id: &DeploymentId, order: CloseOrder) -> usize {
        let map = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(tx) => {
                tx.send_replace(Some(order));
                tx.receiver_count()
            }
            None => 0,
        }
    }
}
