//! One exchange on the engine, as named steps: check the head, route it,
//! write the backend's request, read its answer, filter the response head,
//! relay the body, log. Anything the engine leaves to the general path is
//! decided before the backend is asked.

use std::{borrow::Cow, time::Instant};

use http::{Method, StatusCode};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

use crate::{
    error::RouterError,
    request::{
        access,
        answer::{RequestId, answer, refuse},
        backend::backend_failure,
        fields::visible,
        head::{self, BodyKind, Expect, Refusal},
        path::{self, PathVerdict},
        response::{Pending, respond},
        route::{self, Ask, Decided},
        session::{Next, Session},
        upgrade,
        upstream_request::{read_ahead, send, write_request},
    },
};

/// Serves one request: `raw` is its head, `rest` what was read after it.
/// When a body was read, the bytes that follow it are left in
/// `s.upload[at..]` and `s.carried` says so.
pub async fn exchange(
    s: &mut Session<'_>,
    req: &httparse::Request<'_, '_>,
    raw: &[u8],
    rest: &[u8],
) -> Next {
    let shared = s.shared;
    let config = &shared.config;
    let (Some(method_name), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return refuse(s, None, Refusal::bad("incomplete request line")).await;
    };
    // Step 1, the head: framing first, for every request, whichever path
    // then serves it.
    if !head::lines_end_in_crlf(raw) {
        return refuse(s, None, Refusal::bad("line not ended by CRLF")).await;
    }
    let facts = match head::facts(req.headers, minor == 0) {
        Ok(f) => f,
        Err(r) => return refuse(s, None, r).await,
    };
    let id = RequestId::of(facts.request_id);
    if head::counted_size(target, req.headers) > config.limits.max_header_bytes {
        let status = if target.len() > config.limits.max_header_bytes {
            StatusCode::URI_TOO_LONG
        } else {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        };
        return refuse(
            s,
            Some(&id),
            Refusal::with(status, "request head too large"),
        )
        .await;
    }
    if minor == 1 && facts.host.is_none() && !target.starts_with('/') && target != "*" {
        // RFC 9112 §3.2: every HTTP/1.1 request carries Host, whatever
        // form its target takes.
        return refuse(s, Some(&id), Refusal::bad("HTTP/1.1 request without Host")).await;
    }
    // A WebSocket handshake is the engine's (RFC 6455 §4.1: a GET on
    // HTTP/1.1, no body); any other upgrade is the general path's.
    let websocket = facts.upgrade
        && method_name == "GET"
        && minor == 1
        && facts.body == BodyKind::None
        && upgrade::asks_for_websocket(req.headers);
    if minor == 0
        || (facts.upgrade && !websocket)
        || method_name == "CONNECT"
        || !head::plain_target(target)
    {
        return Next::Handoff;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let names = &config.names;
    if path == names.health_path
        || !matches!(
            path::check(path, &names.internal_prefix, Some(&names.client_prefix)),
            PathVerdict::Forward(Cow::Borrowed(_))
        )
    {
        return Next::Handoff;
    }
    let Some(host) = facts.host else {
        return refuse(s, Some(&id), Refusal::bad("HTTP/1.1 request without Host")).await;
    };
    match visible(host) {
        Some(h) if route::check_host(h).is_ok() => {}
        Some(_) => return refuse(s, Some(&id), Refusal::bad("malformed Host")).await,
        None => return refuse(s, Some(&id), Refusal::bad("Host is not plain ASCII")).await,
    }
    if facts.expect == Expect::Other {
        // Its body may follow unasked: nothing after it can be read.
        return refuse(
            s,
            Some(&id),
            Refusal::with(
                StatusCode::EXPECTATION_FAILED,
                "expectation other than 100-continue",
            ),
        )
        .await;
    }
    let Ok(method) = Method::from_bytes(method_name.as_bytes()) else {
        return refuse(s, Some(&id), Refusal::bad("malformed method")).await;
    };
    let mut close = facts.close || shared.shutdown.is_cancelled();

    // Step 2, the route.
    let ask = Ask {
        peer: s.conn.peer,
        method: &method,
        query,
        headers: req.headers,
        stale_to_active: false,
        host: None,
        path: None,
    };
    let decision = match route::decide(shared, ask) {
        Ok(Decided::Go(d)) => d,
        Ok(Decided::Stale) => return Next::Handoff,
        // A body still unread leaves nowhere to find the next request
        // (RFC 9112 §9.6): the answer closes.
        Err(e) => {
            let unread = facts.body != BodyKind::None;
            return answer(s, &id, &method, path, e, close || unread).await;
        }
    };
    if !decision.pinned && crate::request::fallthrough::applies(shared, &method, path) {
        return Next::Handoff;
    }
    decision.target.traffic.touch();
    let started = Instant::now();

    // Step 3, the upstream request, with the start of its body, or the
    // router's own handshake with the backend.
    let (client_key, websocket_key) = if websocket {
        match upgrade::check_handshake(req.headers) {
            Ok(key) => (key, Some(generate_key())),
            Err(e) => return answer(s, &id, &method, path, e, close).await,
        }
    } else {
        (&b""[..], None)
    };
    write_request(
        s,
        req,
        &facts,
        &decision.target,
        host,
        &id,
        websocket_key.as_deref(),
    );
    let mut upload = None;
    if facts.body != BodyKind::None {
        match read_ahead(s, facts.body, rest, facts.expect == Expect::Continue).await {
            Ok(up) => upload = Some(up),
            Err(e) => {
                decision.target.traffic.client_abort();
                return answer(s, &id, &method, path, e, true).await;
            }
        }
    }

    // Step 4, the backend's answer.
    let sent = send(s, &decision.target, &method, upload.as_mut(), websocket).await;
    // A body not read to its end leaves the connection nowhere to go on.
    match &upload {
        Some(up) if up.done() => s.carried = Some(up.at),
        Some(_) => close = true,
        None => {}
    }
    let (backend, head_len) = match sent {
        Ok(b) => b,
        Err(e @ (RouterError::ClientBody(_) | RouterError::SlowUpload(_))) => {
            decision.target.traffic.client_abort();
            return answer(s, &id, &method, path, e, true).await;
        }
        Err(e) => {
            let e = backend_failure(&decision.target, e, started);
            return answer(s, &id, &method, path, e, close).await;
        }
    };
    let response = respond(
        s,
        req.headers,
        Pending {
            decision: &decision,
            backend,
            head_len,
            id: &id,
            head_request: method == Method::HEAD,
            close,
            started,
            websocket: websocket_key
                .as_deref()
                .map(|backend_key| upgrade::Handshake {
                    client_key,
                    backend_key,
                }),
        },
    )
    .await;
    // Step 6, the log.
    if config.access_log {
        access::Entry {
            request_id: id.value(),
            method,
            path: path.to_owned(),
            status: response.status,
            deployment: Some(decision.target.selected.clone()),
            started,
            bytes: response.bytes,
        }
        .write();
    }
    response.next
}
