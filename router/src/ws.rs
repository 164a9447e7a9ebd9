//! WebSocket proxying: handshake with the backend first (so a refused or
//! unreachable backend becomes an HTTP answer, not a dead socket), then
//! answer the client's upgrade and relay frames both ways until either side
//! closes.
//!
//! Close codes and reasons pass through unchanged (RFC 6455 §7.4). The
//! router closes on its own only when told to: 1012 for a reload or revoke
//! (staggered over the order's window), 1001 when it shuts down, 1009 for an
//! oversized message, 1011 when the backend connection is lost.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header, uri::PathAndQuery};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use switchyard_core::DeploymentId;
use tokio::{net::TcpStream, sync::watch, time::Instant};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Error as WsError, Message,
        handshake::{client::generate_key, derive_accept_key},
        protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode},
    },
};
use tokio_util::sync::CancellationToken;

use crate::{
    Shared,
    headers::{self, SELECTED},
    proxy::{backend_failure, error_chain, rewrite_request},
    respond::{Body, RouterError},
    table::Target,
};

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
    fn subscribe(&self, id: &DeploymentId) -> watch::Receiver<Option<CloseOrder>> {
        let mut map = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry(id.clone())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
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

pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    req.method() == http::Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
}

pub fn config(max_message: usize) -> WebSocketConfig {
    // Small buffers: most sockets sit idle, and memory per socket is what
    // bounds how many a replica can hold.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Client request headers that belong to the client's own handshake.
const HANDSHAKE_HEADERS: [header::HeaderName; 4] = [
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::SEC_WEBSOCKET_ACCEPT,
];

pub async fn proxy(
    shared: &Arc<Shared>,
    target: Arc<Target>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    path: Option<PathAndQuery>,
) -> Result<Response<Body>, RouterError> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return Err(RouterError::BadRequest(
            "WebSocket upgrade without Sec-WebSocket-Key",
        ));
    };
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(RouterError::BadRequest(
            "unsupported WebSocket version (RFC 6455 needs 13)",
        ));
    }
    let limits = &shared.config.limits;
    let cfg = config(limits.ws_max_message_bytes);

    // Backend first.
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers = req.headers().clone();
    parts.uri = req.uri().clone();
    for h in &HANDSHAKE_HEADERS {
        parts.headers.remove(h);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let request_id = rewrite_request(shared, &mut parts, &target.authority, peer, path)?;
    let ws_uri = format!(
        "ws://{}{}",
        target.authority,
        parts.uri.path_and_query().map_or("/", PathAndQuery::as_str)
    );
    let mut upstream = Request::from_parts(parts, ());
    *upstream.uri_mut() = ws_uri
        .parse()
        .map_err(|_| RouterError::BadRequest("request target cannot be forwarded"))?;
    let h = upstream.headers_mut();
    h.insert(
        header::HOST,
        HeaderValue::from_str(target.authority.as_str())
            .map_err(|_| RouterError::BadRequest("bad backend authority"))?,
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    h.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&generate_key()).map_err(|_| RouterError::BadRequest("key"))?,
    );

    let started = Instant::now();
    let fail = |err: RouterError| backend_failure(&target, err, started.into_std());
    let addr = (
        target.authority.host(),
        target.authority.port_u16().unwrap_or(80),
    );
    let stream = match tokio::time::timeout(
        limits.backend_connect_timeout,
        TcpStream::connect(addr),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(fail(RouterError::BackendUnreachable {
                id: target.id.clone(),
                reason: e.to_string(),
            }));
        }
        Err(_) => {
            return Err(fail(RouterError::BackendUnreachable {
                id: target.id.clone(),
                reason: format!(
                    "connect timed out after {:?}",
                    limits.backend_connect_timeout
                ),
            }));
        }
    };
    let _ = stream.set_nodelay(true);
    let handshake = tokio_tungstenite::client_async_with_config(upstream, stream, Some(cfg));
    let (backend, backend_res) = match tokio::time::timeout(limits.backend_timeout, handshake).await
    {
        Ok(Ok(ok)) => ok,
        Ok(Err(WsError::Http(refusal))) => {
            // The backend answered the upgrade with a plain HTTP response
            // (say 403): the client gets exactly that.
            let (parts, body) = refusal.into_parts();
            let mut res = Response::from_parts(
                parts,
                Either::Right(Full::new(body.unwrap_or_default().into())),
            );
            res.headers_mut().insert(&SELECTED, target.selected.clone());
            target
                .traffic
                .record(res.status().as_u16(), started.elapsed());
            return Ok(res);
        }
        Ok(Err(e)) => {
            return Err(fail(RouterError::BackendFailed {
                id: target.id.clone(),
                reason: error_chain(&e),
            }));
        }
        Err(_) => {
            return Err(fail(RouterError::BackendTimeout {
                id: target.id.clone(),
            }));
        }
    };
    target.traffic.record(101, started.elapsed());

    // Then the client: take the upgrade before answering 101.
    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut res = Response::new(Either::Right(Full::default()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .map_err(|_| RouterError::BadRequest("key"))?,
    );
    if let Some(p) = backend_res.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p.clone());
    }
    h.insert(&SELECTED, target.selected.clone());
    h.insert(&headers::X_REQUEST_ID, request_id);

    let orders = shared.sockets.subscribe(&target.id);
    let shutdown = shared.shutdown.clone();
    let lease = target.traffic.open_socket();
    let id = target.id.clone();
    shared.tasks.spawn(async move {
        let _lease = lease;
        let mut backend = backend;
        let client = match on_upgrade.await {
            Ok(upgraded) => {
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(cfg))
                    .await
            }
            Err(e) => {
                // Never leave the backend socket open behind a failed accept.
                tracing::debug!(deployment = %id, error = %e, "client upgrade failed");
                let _ = backend
                    .close(Some(close_frame(1011, "client upgrade failed")))
                    .await;
                return;
            }
        };
        let end = relay(client, backend, orders, shutdown).await;
        tracing::debug!(deployment = %id, ?end, "websocket closed");
    });
    Ok(res)
}

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    // A close reason must fit in a control frame (123 bytes of UTF-8).
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].to_string().into(),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RelayEnd {
    ClientClosed,
    BackendClosed,
    ClientLost,
    BackendLost,
    Ordered(u16),
    Shutdown,
    TooBig,
}

/// Relays until one side ends, then closes the other. Generic over the
/// stream type so tests can drive it with in-memory sockets.
pub async fn relay<C, B>(
    mut client: C,
    mut backend: B,
    mut orders: watch::Receiver<Option<CloseOrder>>,
    shutdown: CancellationToken,
) -> RelayEnd
where
    C: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    B: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let mut close_at: Option<(Instant, CloseFrame)> = None;
    let mut orders_open = true;
    loop {
        let deadline = close_at.as_ref().map(|(t, _)| *t);
        tokio::select! {
            _ = shutdown.cancelled() => {
                finish(&mut client, close_frame(1001, "router shutting down"), &mut backend, close_frame(1001, "router shutting down")).await;
                return RelayEnd::Shutdown;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let Some((_, frame)) = close_at.take() else { continue };
                let code = u16::from(frame.code);
                finish(&mut client, frame, &mut backend, close_frame(1001, "client moved to another deployment")).await;
                return RelayEnd::Ordered(code);
            }
            changed = orders.changed(), if orders_open => {
                if changed.is_err() {
                    orders_open = false;
                    continue;
                }
                let order = orders.borrow_and_update().clone();
                if let Some(order) = order {
                    let window_ms = order.window.as_millis() as u64;
                    let delay = if window_ms == 0 { 0 } else { rand::random_range(0..=window_ms) };
                    close_at = Some((Instant::now() + Duration::from_millis(delay), close_frame(order.code, &order.reason)));
                }
            }
            msg = client.next() => match msg {
                Some(Ok(Message::Close(frame))) => {
                    let _ = backend.send(Message::Close(frame)).await;
                    drain_until_closed(&mut backend).await;
                    let _ = client.close().await;
                    return RelayEnd::ClientClosed;
                }
                Some(Ok(Message::Frame(_))) => {}
                Some(Ok(m)) => {
                    if backend.send(m).await.is_err() {
                        let _ = client.send(Message::Close(Some(close_frame(1011, "backend connection lost")))).await;
                        return RelayEnd::BackendLost;
                    }
                }
                Some(Err(WsError::Capacity(_))) => {
                    finish(&mut client, close_frame(1009, "message too big"), &mut backend, close_frame(1001, "client sent a message too big")).await;
                    return RelayEnd::TooBig;
                }
                Some(Err(_)) | None => {
                    let _ = backend.send(Message::Close(Some(close_frame(1001, "client went away")))).await;
                    drain_until_closed(&mut backend).await;
                    return RelayEnd::ClientLost;
                }
            },
            msg = backend.next() => match msg {
                Some(Ok(Message::Close(frame))) => {
                    let _ = client.send(Message::Close(frame)).await;
                    drain_until_closed(&mut client).await;
                    let _ = backend.close().await;
                    return RelayEnd::BackendClosed;
                }
                Some(Ok(Message::Frame(_))) => {}
                Some(Ok(m)) => {
                    if client.send(m).await.is_err() {
                        let _ = backend.send(Message::Close(Some(close_frame(1001, "client went away")))).await;
                        return RelayEnd::ClientLost;
                    }
                }
                Some(Err(WsError::Capacity(_))) => {
                    finish(&mut client, close_frame(1009, "message too big"), &mut backend, close_frame(1009, "message too big")).await;
                    return RelayEnd::TooBig;
                }
                Some(Err(_)) | None => {
                    let _ = client.send(Message::Close(Some(close_frame(1011, "backend connection lost")))).await;
                    drain_until_closed(&mut client).await;
                    return RelayEnd::BackendLost;
                }
            },
        }
    }
}

/// How long a peer gets to answer our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

async fn finish<C, B>(
    client: &mut C,
    to_client: CloseFrame,
    backend: &mut B,
    to_backend: CloseFrame,
) where
    C: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    B: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
{
    let _ = tokio::join!(
        client.send(Message::Close(Some(to_client))),
        backend.send(Message::Close(Some(to_backend))),
    );
    tokio::join!(drain_until_closed(client), drain_until_closed(backend));
}

/// Reads (and drops) until the peer's close reply arrives or it goes away.
async fn drain_until_closed<S>(s: &mut S)
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(m)) = s.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

// Keep the tungstenite name reachable for callers matching on errors.
pub use tungstenite::Error as WebSocketError;
