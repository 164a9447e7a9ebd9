//! The store's pub/sub subscription, kept alive across reconnects.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::{StoreEvent, event::WireEvent, primary::Primary};

/// Keeps a pub/sub subscription alive until the receiver is dropped,
/// reconnecting with backoff and announcing every (re)connection as a
/// `Resync`.
pub(super) async fn listen(
    primary: Arc<Primary>,
    channel: String,
    timeout: Duration,
    tx: mpsc::Sender<StoreEvent>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let err = match subscribe_once(&primary, &channel, timeout, &tx, &mut backoff).await {
            Ok(()) => return, // receiver dropped
            Err(e) => e,
        };
        if tx
            .send(StoreEvent::Disconnected { error: err })
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = tx.closed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe_once(
    primary: &Primary,
    channel: &str,
    timeout: Duration,
    tx: &mpsc::Sender<StoreEvent>,
    backoff: &mut Duration,
) -> Result<(), String> {
    let connect = async {
        // Every (re)subscription asks where the primary is now (for a
        // fixed address, that is the address), so it follows a failover.
        let node = primary.resolve().await.map_err(|e| e.to_string())?;
        let mut pubsub = node
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| e.to_string())?;
        pubsub.subscribe(channel).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(pubsub)
    };
    // Room for a Sentinel lookup before the subscription itself.
    let bound = timeout * 2;
    let pubsub = match tokio::time::timeout(bound, connect).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(format!("no answer from Redis within {bound:?}")),
    };
    *backoff = Duration::from_millis(100);
    if tx.send(StoreEvent::Resync).await.is_err() {
        return Ok(());
    }
    let (mut sink, mut stream) = pubsub.split();
    // A silently dead connection would never end the stream; probe it.
    let mut probe = tokio::time::interval(timeout.max(Duration::from_secs(1)) * 2);
    probe.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return Err("subscription connection closed".into()) };
                let Ok(payload) = msg.get_payload::<String>() else { continue };
                match serde_json::from_str::<WireEvent>(&payload) {
                    Ok(ev) => {
                        if tx.send(ev.into_event()).await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring unreadable store event"),
                }
            }
            _ = probe.tick() => {
                // In subscribe mode a RESP2 server answers PING with
                // ["pong", ""], RESP3 with "PONG": any answer proves the
                // connection alive, so it is not parsed.
                match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => return Err("subscription ping timed out".into()),
                }
            }
            _ = tx.closed() => return Ok(()),
        }
    }
}
