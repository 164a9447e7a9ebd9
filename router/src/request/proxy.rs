//! The request path, as named steps: health, path check, pick, then
//! forward (HTTP here, WebSocket in `ws`). No store call, no body
//! buffering: bodies are hyper's streams end to end, so backpressure flows
//! through the router.

use std::{
    borrow::Cow,
    convert::Infallible,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Instant,
};

use http::{HeaderValue, Method, Request, Response, Version, header, uri::PathAndQuery};
use http_body_util::Either;
use hyper::body::Incoming;

use crate::{
    conn::Conn,
    error::RouterError,
    net::wakeup,
    request::{
        access::{self, Logged},
        backend::{backend_failure, backend_response, rewrite_request},
        client, fallthrough,
        headers::{self, SELECTED},
        path::{self, PathVerdict},
        pick,
        respond::{self, Body, RequestLabel},
        route::{Ask, Decided, Decision, PageCookie, check_host, decide},
        upgrade,
    },
    shared::Shared,
    upstream::upload::Upload,
};

pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    mut req: Request<Incoming>,
) -> Result<Response<Logged>, Infallible> {
    conn.seen_request.store(true, Relaxed);
    let started = Instant::now();
    // Made (or a sane client one kept) before anything can fail, so every
    // answer and every log line about the request carries it.
    let request_id = headers::request_id(req.headers_mut());
    let method = req.method().clone();
    // Cheap: the parsed target shares the connection's buffer.
    let uri = req.uri().clone();
    let res = match route(&shared, &conn, req).await {
        Ok(res) => res,
        Err(e) => e.into_response(&RequestLabel {
            id: &request_id,
            method: &method,
            path: uri.path(),
        }),
    };
    let (mut parts, body) = res.into_parts();
    // RFC 9110 §6.2: a proxy answers in its own HTTP version, never the
    // backend's (hyper then writes what the client's connection speaks).
    parts.version = Version::default();
    let entry = shared.config.access_log.then(|| {
        Box::new(access::Entry {
            request_id: request_id.clone(),
            method,
            path: uri.path().to_owned(),
            status: parts.status.as_u16(),
            deployment: parts.headers.get(&SELECTED).cloned(),
            started,
            bytes: 0,
        })
    });
    parts.headers.insert(&headers::X_REQUEST_ID, request_id);
    Ok(Response::from_parts(parts, Logged::new(body, entry)))
}

async fn route(
    shared: &Arc<Shared>,
    conn: &Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<Body>, RouterError> {
    let names = &shared.config.names;
    if headers::head_size(req.uri(), req.headers()) > shared.config.limits.max_header_bytes {
        return Err(RouterError::HeadTooLarge);
    }
    if req.uri().path() == names.health_path {
        return Ok(respond::health(shared.table.load().is_some()));
    }
    if req.method() == Method::CONNECT {
        return Err(RouterError::BadRequest("CONNECT is not supported"));
    }
    let host = request_host(&req)?;
    let path = match path::check(
        req.uri().path(),
        &names.internal_prefix,
        Some(&names.client_prefix),
    ) {
        PathVerdict::Forward(Cow::Borrowed(_)) => None,
        PathVerdict::Forward(Cow::Owned(p)) => {
            let pq = match req.uri().query() {
                Some(q) => format!("{p}?{q}"),
                None => p,
            };
            Some(
                PathAndQuery::try_from(pq)
                    .map_err(|_| RouterError::AmbiguousPath("unparseable path"))?,
            )
        }
        PathVerdict::Own(rest) => return client::answer(shared, &req, conn.peer.ip(), &rest),
        PathVerdict::Internal => return Err(RouterError::InternalPath),
        PathVerdict::Ambiguous(why) => return Err(RouterError::AmbiguousPath(why)),
    };
    let ws_key =
        if upgrade::is_upgrade(&req) {
            Some(upgrade::check_handshake(req.headers()).and_then(|k| {
                HeaderValue::from_bytes(k).map_err(|_| RouterError::BadRequest("key"))
            })?)
        } else {
            None
        };
    let ask = Ask {
        peer: conn.peer,
        method: req.method(),
        query: req.uri().query(),
        headers: req.headers(),
        stale_to_active: ws_key.is_some()
            && req
                .uri()
                .query()
                .and_then(|q| pick::query_value(q, &names.ws_fallback_param))
                .is_some_and(|v| v == "1"),
        host,
        path,
    };
    let decision = match decide(shared, ask)? {
        Decided::Go(d) => d,
        Decided::Stale => {
            return Ok(respond::stale_affinity(
                req.method(),
                req.uri(),
                req.headers(),
                &names.query_param,
            ));
        }
    };
    decision.target.traffic.touch();
    match ws_key {
        // Boxed: the upgrade's future is large and rare, and would
        // otherwise be part of (and copied with) every request's future.
        Some(key) => Box::pin(upgrade::proxy(shared, conn, decision, req, key)).await,
        None => forward(shared, conn, decision, req).await,
    }
}

/// The host the client addressed, validated as RFC 9112 §3.2 asks of a
/// server: exactly one well-formed Host on HTTP/1.1. An absolute-form
/// target's authority (or HTTP/2's `:authority`) wins over Host (§3.2.2).
fn request_host(req: &Request<Incoming>) -> Result<Option<HeaderValue>, RouterError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(RouterError::BadRequest("more than one Host header"));
    }
    if let Some(authority) = req.uri().authority() {
        check_host(authority.as_str())?;
        return Ok(HeaderValue::from_str(authority.as_str()).ok());
    }
    match first {
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| RouterError::BadRequest("Host is not plain ASCII"))?;
            check_host(s)?;
            Ok(Some(v.clone()))
        }
        None if req.version() == Version::HTTP_11 => {
            Err(RouterError::BadRequest("HTTP/1.1 request without Host"))
        }
        None => Ok(None),
    }
}

async fn forward(
    shared: &Shared,
    conn: &Conn,
    decision: Decision,
    req: Request<Incoming>,
) -> Result<Response<Body>, RouterError> {
    let started = Instant::now();
    let Decision {
        target,
        pinned,
        path,
        host,
        set_cookie,
        active,
        page_cookie,
        pin,
    } = decision;
    let echoed = shared
        .config
        .pins
        .echoed(pin.as_deref(), &target.id, active.as_ref());
    // Only read when cookies may be set (the rewrite may replace it).
    let forwarded_proto = if set_cookie || page_cookie == PageCookie::Set {
        req.headers().get(&headers::X_FORWARDED_PROTO).cloned()
    } else {
        None
    };
    let (mut parts, body) = req.into_parts();
    rewrite_request(shared, &mut parts, &target, &conn.peer_ip, path, host);
    let retry = fallthrough::retry_for(
        shared,
        pinned,
        &parts,
        http_body::Body::is_end_stream(&body),
    );
    // Before a backend connection is taken: the start of the body (or all
    // of a small one), at no less than the minimum upload rate.
    // Boxed: the read-ahead's state (timers, queue) must not enlarge
    // every request's future, most of which have no body.
    let body = if Upload::reads_ahead(&body, &shared.config.limits) {
        match Box::pin(Upload::read_ahead(body, &shared.config.limits)).await {
            Ok(body) => Either::Right(body),
            Err(e) => {
                target.traffic.client_abort();
                return Err(e);
            }
        }
    } else {
        Either::Left(body)
    };
    let upstream = Request::from_parts(parts, Either::Left(body));

    let outcome = wakeup::within(
        shared.config.limits.backend_timeout,
        conn.upstream.send(&target.authority, upstream),
    )
    .await;
    let res = match outcome {
        Some(Ok(res)) => res,
        Some(Err(e)) => {
            return Err(match e.into_router_error(&target) {
                client @ (RouterError::ClientBody(_) | RouterError::SlowUpload(_)) => {
                    target.traffic.client_abort();
                    client
                }
                e => backend_failure(&target, e, started),
            });
        }
        None => {
            let err = RouterError::BackendTimeout {
                id: target.id.clone(),
            };
            return Err(backend_failure(&target, err, started));
        }
    };
    let mut res = match retry {
        Some(retry) if res.status() == http::StatusCode::NOT_FOUND => {
            Box::pin(fallthrough::fall_through(
                shared,
                &conn.upstream,
                retry,
                &target,
                res,
                started,
            ))
            .await
        }
        _ => backend_response(
            &target,
            res,
            started,
            Some(echoed.as_ref().unwrap_or(&target.label)),
        ),
    };
    let h = res.headers_mut();
    // The pin header (and cookie) chose this response: a cache must not
    // hand it to a request that names another deployment.
    h.append(header::VARY, shared.vary.clone());
    if pinned && let Some(active) = active {
        h.insert(&headers::ACTIVE, active);
    }
    // RFC 6265 §4.1.2.5: a client on https gets cookies it will only
    // send back over https.
    let secure = shared.config.secure_cookies
        || (shared.config.trust_forwarded && came_over_https(&forwarded_proto));
    if set_cookie
        && !headers::publicly_cacheable(h)
        && let Some(cookie) = &target.set_cookie
    {
        h.append(header::SET_COOKIE, cookie[usize::from(secure)].clone());
    }
    match page_cookie {
        PageCookie::Set if !headers::publicly_cacheable(h) => {
            if let Some(cookie) = pin.as_deref().and_then(|p| {
                HeaderValue::try_from(format!(
                    "{}={p}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
                    pick::PAGE_COOKIE,
                    pick::PAGE_COOKIE_MAX_AGE,
                    if secure { "; Secure" } else { "" }
                ))
                .ok()
            }) {
                h.append(header::SET_COOKIE, cookie);
            }
        }
        PageCookie::Clear => {
            h.append(
                header::SET_COOKIE,
                HeaderValue::from_static(pick::PAGE_COOKIE_CLEAR),
            );
        }
        PageCookie::Routed => {
            h.append(header::VARY, HeaderValue::from_static("Cookie"));
        }
        _ => {}
    }
    if let Some(ct) = h.get(header::CONTENT_TYPE)
        && ct.as_bytes().starts_with(b"text/event-stream")
        && let Either::Left(body) = res.body_mut()
    {
        // Revoking or retiring the deployment ends its event streams as
        // it closes its WebSockets (the browser client then checks its
        // pin and reloads once).
        body.end_when(shared.sockets.retired(&target.id));
    }
    Ok(res)
}

/// Whether the first hop's `X-Forwarded-Proto` says https.
pub(crate) fn came_over_https(proto: &Option<HeaderValue>) -> bool {
    proto.as_ref().is_some_and(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .next()
            .is_some_and(|first| first.trim_ascii().eq_ignore_ascii_case(b"https"))
    })
}
