//! Notifications from the store to router replicas.

use serde::{Deserialize, Serialize};
use switchyard_core::DeploymentId;
use tokio::sync::mpsc;

/// Asks routers to close a deployment's WebSockets so clients reconnect and
/// land on the active deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadNotice {
    pub deployment_id: DeploymentId,
    /// Close reason sent to clients (kept short: a close frame carries at
    /// most 123 bytes of reason).
    pub reason: String,
    /// Spread the closes over this many milliseconds, at random, so clients
    /// do not all reconnect in the same instant. 0 closes at once.
    #[serde(default)]
    pub window_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreEvent {
    /// A routing-relevant change produced this snapshot version.
    Changed {
        version: u64,
    },
    Reload(ReloadNotice),
    /// The subscription was (re)established; notifications may have been
    /// missed, so the snapshot must be reloaded.
    Resync,
    /// The subscription lost its connection and is retrying.
    Disconnected {
        error: String,
    },
}

/// Wire format of the events channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum WireEvent {
    Changed { version: u64 },
    Reload(ReloadNotice),
}

impl WireEvent {
    pub(crate) fn into_event(self) -> StoreEvent {
        match self {
            Self::Changed { version } => StoreEvent::Changed { version },
            Self::Reload(n) => StoreEvent::Reload(n),
        }
    }
}

/// A live subscription; dropping it stops the background listener.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<StoreEvent>,
}

impl Subscription {
    pub(crate) fn new(rx: mpsc::Receiver<StoreEvent>) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the store is gone for good.
    pub async fn next(&mut self) -> Option<StoreEvent> {
        self.rx.recv().await
    }
}
