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
        headers::SELECTED,
        respond::Body,
        route::Decision,
    },
    shared::Shared,
    state::table::Target,
    upstream::general::{self, Streamed},
    ws::spawn_relay,
};

pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    // RFC 9110 §7.8: Upgrade means nothing on HTTP/1.0 (and HTTP/2 has
    // its own mechanism), so such a request is plain HTTP.
    req.method() == http::Method::GET
        && req.version() == http::Version::HTTP_11
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
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

/// The client's handshake, checked as RFC 6455 §4.2.1 asks before
/// anything reaches the backend; returns the client's key.
pub fn check_handshake<B>(req: &Request<B>) -> Result<HeaderValue, RouterError> {
    let mut keys = req.headers().get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) if is_valid_key(k.as_bytes()) => k.clone(),
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
    match req.headers().get(header::SEC_WEBSOCKET_VERSION) {
        Some(v) if v.as_bytes() == b"13" => Ok(key),
        Some(_) => Err(RouterError::WebSocketVersion),
        None => Err(RouterError::BadRequest(
            "WebSocket upgrade without Sec-WebSocket-Version",
        )),
    }
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
    spawn_relay(shared, conn, &target, on_upgrade, backend);
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
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
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
    let expected = derive_accept_key(backend_key.as_bytes());
    if res
        .headers()
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .map(HeaderValue::as_bytes)
        != Some(expected.as_bytes())
    {
        return Err(failed(
            "backend answered the upgrade without the right Sec-WebSocket-Accept".into(),
        ));
    }
    let protocol = res.headers().get(header::SEC_WEBSOCKET_PROTOCOL).cloned();
    // RFC 6455 §4.1: a subprotocol the client did not offer fails the
    // connection; the client must never be handed one.
    if let Some(chosen) = &protocol {
        let listed = offered
            .as_ref()
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| {
                o.split(',')
                    .any(|p| p.trim().as_bytes() == chosen.as_bytes())
            });
        if !listed {
            return Err(failed(
                "backend chose a WebSocket subprotocol the client did not offer".into(),
            ));
        }
    }
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
    h.insert(&SELECTED, target.selected.clone());
    Ok(res)
}
