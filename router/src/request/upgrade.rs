//! A WebSocket upgrade as a request step: handshake with the backend
//! first (so a refused or unreachable backend becomes an HTTP answer, not
//! a dead socket), then the client's 101 through the same response filter
//! as any answer, and the sockets handed to the relay (`crate::ws`).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{Either, Empty, Full};
use hyper::{body::Incoming, upgrade::Upgraded};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

use crate::{
    conn::Conn,
    error::{RouterError, error_chain},
    request::{
        backend::{backend_failure, backend_response, rewrite_request},
        fields::Fields,
        headers::{SELECTED, SERVER_TIMING},
        respond::Body,
        route::Decision,
    },
    shared::Shared,
    state::table::Target,
    upstream::general::{self, Streamed},
    ws::spawn_relay,
};

pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.method() == http::Method::GET
        && req.version() == http::Version::HTTP_11
        && asks_for_websocket(req.headers())
}

/// Whether the fields ask for a WebSocket (RFC 6455 §4.1). RFC 9110 §7.8:
/// Upgrade means nothing on HTTP/1.0 (and HTTP/2 has its own mechanism),
/// so the caller also checks for a GET on HTTP/1.1.
pub fn asks_for_websocket(fields: &(impl Fields + ?Sized)) -> bool {
    let has_token = |name: &'static str, token: &str| {
        fields.all(name).any(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    has_token("connection", "upgrade") && has_token("upgrade", "websocket")
}

/// Client request headers that belong to the client's own handshake (the
/// router makes its own with the backend). Extensions are not offered: the
/// router answers the client's handshake itself, before it could know what
/// the backend would accept.
const HANDSHAKE_HEADERS: [header::HeaderName; 4] = [
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::SEC_WEBSOCKET_ACCEPT,
];

/// Whether `name` (lowercase) is one of the client's handshake fields.
pub fn is_client_handshake(name: &str) -> bool {
    HANDSHAKE_HEADERS.iter().any(|h| h.as_str() == name)
}

/// The router's own handshake with the backend, besides its key: the same
/// on both paths.
pub const BACKEND_HANDSHAKE: [(header::HeaderName, &str); 3] = [
    (header::CONNECTION, "Upgrade"),
    (header::UPGRADE, "websocket"),
    (header::SEC_WEBSOCKET_VERSION, "13"),
];

/// A WebSocket handshake on its way through the engine: the client's key
/// (answered in the 101) and the one the router sent the backend.
#[derive(Debug, Clone, Copy)]
pub struct Handshake<'k> {
    pub client_key: &'k [u8],
    pub backend_key: &'k str,
}

/// The client's handshake, checked as RFC 6455 §4.2.1 asks before
/// anything reaches the backend; returns the client's key.
pub fn check_handshake(fields: &(impl Fields + ?Sized)) -> Result<&[u8], RouterError> {
    let mut keys = fields.all("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) if is_valid_key(k) => k,
        (None, _) => {
            return Err(RouterError::BadRequest(
                "WebSocket upgrade without Sec-WebSocket-Key",
            ));
        }
        _ => {
            return Err(RouterError::BadRequest(
                "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 §4.1)",
            ));
        }
    };
    match fields.first("sec-websocket-version") {
        Some(b"13") => Ok(key),
        Some(_) => Err(RouterError::WebSocketVersion),
        None => Err(RouterError::BadRequest(
            "WebSocket upgrade without Sec-WebSocket-Version",
        )),
    }
}

/// The backend's 101, checked: it accepted the router's key, and chose no
/// subprotocol the client did not offer (RFC 6455 §4.1: that would fail
/// the connection, so the client is never handed one).
pub fn check_backend_switch(
    backend_key: &[u8],
    accept: Option<&[u8]>,
    offered: Option<&[u8]>,
    chosen: Option<&[u8]>,
) -> Result<(), &'static str> {
    if accept != Some(derive_accept_key(backend_key).as_bytes()) {
        return Err("backend answered the upgrade without the right Sec-WebSocket-Accept");
    }
    if let Some(chosen) = chosen {
        let listed =
            offered.is_some_and(|o| o.split(|&b| b == b',').any(|p| p.trim_ascii() == chosen));
        if !listed {
            return Err("backend chose a WebSocket subprotocol the client did not offer");
        }
    }
    Ok(())
}

/// 16 bytes in base64: 22 alphabet characters, the last of which carries
/// only 2 bits (so one of `AQgw`), then `==`.
fn is_valid_key(key: &[u8]) -> bool {
    let b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24
        && key[..21].iter().all(b64)
        && b"AQgw".contains(&key[21])
        && &key[22..] == b"=="
}

pub(crate) async fn proxy(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    decision: Decision,
    mut req: Request<Incoming>,
    key: HeaderValue,
) -> Result<Response<Body>, RouterError> {
    let Decision {
        target, path, host, ..
    } = decision;
    let upstream = backend_request(shared, conn, &req, &target, path, host)?;
    let started = Instant::now();
    let (backend, protocol) = match upgrade_backend(shared, &target, upstream, started).await? {
        BackendUpgrade::Accepted { socket, protocol } => (socket, protocol),
        BackendUpgrade::Answered(res) => return Ok(res),
    };
    target.traffic.record(101, started.elapsed());

    // Then the client: take the upgrade before answering 101.
    let on_upgrade = hyper::upgrade::on(&mut req);
    let res = switching_protocols(&target, &key, protocol)?;
    let client = async move { on_upgrade.await.map(TokioIo::new) };
    spawn_relay(shared, conn, &target, client, TokioIo::new(backend));
    Ok(res)
}

/// The client's request as a fresh handshake to the backend: its own key,
/// the routing rewrite, none of the client's hop-by-hop handshake headers.
fn backend_request(
    shared: &Shared,
    conn: &Conn,
    req: &Request<Incoming>,
    target: &Target,
    path: Option<http::uri::PathAndQuery>,
    host: Option<HeaderValue>,
) -> Result<(Request<Empty<Bytes>>, String), RouterError> {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers = req.headers().clone();
    parts.uri = req.uri().clone();
    for h in &HANDSHAKE_HEADERS {
        parts.headers.remove(h);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    rewrite_request(shared, &mut parts, target, &conn.peer_ip, path, host);
    let backend_key = generate_key();
    let h = &mut parts.headers;
    for (name, value) in BACKEND_HANDSHAKE {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&backend_key).map_err(|_| RouterError::BadRequest("key"))?,
    );
    Ok((Request::from_parts(parts, Empty::new()), backend_key))
}

enum BackendUpgrade {
    Accepted {
        socket: Upgraded,
        protocol: Option<HeaderValue>,
    },
    /// The backend answered the upgrade with a plain HTTP response (say a
    /// 403): the client gets exactly that.
    Answered(Response<Body>),
}

/// Connects and handshakes with the backend, each step bounded by the
/// backend timeouts; only a 101 with the right accept key is an upgrade.
async fn upgrade_backend(
    shared: &Shared,
    target: &Target,
    (upstream, backend_key): (Request<Empty<Bytes>>, String),
    started: Instant,
) -> Result<BackendUpgrade, RouterError> {
    let limits = &shared.config.limits;
    let offered = upstream
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .cloned();
    let fail = |err: RouterError| backend_failure(target, err, started.into_std());
    let failed = |reason: String| {
        fail(RouterError::BackendFailed {
            id: target.id.clone(),
            reason,
        })
    };
    let timed_out = || {
        fail(RouterError::BackendTimeout {
            id: target.id.clone(),
        })
    };
    let stream = general::connect(&target.authority, limits.backend_connect_timeout)
        .await
        .map_err(|e| {
            fail(RouterError::BackendUnreachable {
                id: target.id.clone(),
                reason: e.to_string(),
            })
        })?;
    let handshake = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| error_chain(&e))?;
        tokio::spawn(conn.with_upgrades());
        sender
            .send_request(upstream)
            .await
            .map_err(|e| error_chain(&e))
    };
    let res = match tokio::time::timeout(limits.backend_timeout, handshake).await {
        Ok(Ok(res)) => res,
        Ok(Err(reason)) => return Err(failed(reason)),
        Err(_) => return Err(timed_out()),
    };
    if res.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(BackendUpgrade::Answered(backend_response(
            target,
            res.map(Streamed::detached),
            started.into_std(),
            Some(&target.label),
        )));
    }
    let h = res.headers();
    let protocol = h.get(header::SEC_WEBSOCKET_PROTOCOL).cloned();
    check_backend_switch(
        backend_key.as_bytes(),
        h.get(header::SEC_WEBSOCKET_ACCEPT)
            .map(HeaderValue::as_bytes),
        offered.as_ref().map(HeaderValue::as_bytes),
        protocol.as_ref().map(HeaderValue::as_bytes),
    )
    .map_err(|why| failed(why.into()))?;
    match tokio::time::timeout(limits.backend_timeout, hyper::upgrade::on(res)).await {
        Ok(Ok(socket)) => Ok(BackendUpgrade::Accepted { socket, protocol }),
        Ok(Err(e)) => Err(failed(error_chain(&e))),
        Err(_) => Err(timed_out()),
    }
}

/// The 101 for the client (RFC 6455 §4.2.2), with the subprotocol the
/// backend chose.
fn switching_protocols(
    target: &Target,
    key: &HeaderValue,
    protocol: Option<HeaderValue>,
) -> Result<Response<Body>, RouterError> {
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
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    // What every forwarded answer says: which deployment, as a label
    // the browser can read (`Server-Timing`).
    h.insert(&SELECTED, target.selected.clone());
    h.insert(&SERVER_TIMING, target.label.clone());
    Ok(res)
}
