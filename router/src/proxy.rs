//! The request path, as named steps: health, path check, pick, then
//! forward (HTTP here, WebSocket in `ws`). No store call, no body
//! buffering: bodies are hyper's streams end to end, so backpressure flows
//! through the router.

use std::{borrow::Cow, convert::Infallible, net::SocketAddr, sync::Arc, time::Instant};

use http::{HeaderValue, Method, Request, Response, Uri, Version, header, uri::PathAndQuery};
use http_body_util::Either;
use hyper::body::Incoming;

use crate::{
    Shared,
    headers::{self, SELECTED},
    path::{self, PathVerdict},
    pick::{self, Choice},
    respond::{self, Body, RouterError},
    table::Target,
    ws,
};

pub async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    Ok(route(&shared, peer, req)
        .await
        .unwrap_or_else(RouterError::into_response))
}

/// Where a request goes once the router has decided.
struct Decision {
    target: Arc<Target>,
    pinned: bool,
    /// The normalized path, when it differs from what the client sent.
    path: Option<PathAndQuery>,
}

async fn route(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, RouterError> {
    let names = &shared.config.names;
    if req.uri().path() == names.health_path {
        return Ok(respond::health());
    }
    if req.method() == Method::CONNECT {
        return Err(RouterError::BadRequest("CONNECT is not supported"));
    }
    let is_ws = ws::is_upgrade(&req);
    let decision = match decide(shared, peer, &req, is_ws)? {
        Ok(d) => d,
        Err(stale) => return Ok(stale),
    };
    decision.target.traffic.touch();
    if is_ws {
        ws::proxy(shared, decision.target, req, peer, decision.path).await
    } else {
        forward(shared, decision, req, peer).await
    }
}

/// Picks the target, or the stale-affinity answer. Synchronous: the table
/// guard never lives across an await.
fn decide(
    shared: &Shared,
    peer: SocketAddr,
    req: &Request<Incoming>,
    is_ws: bool,
) -> Result<Result<Decision, Response<Body>>, RouterError> {
    let config = &shared.config;
    let names = &config.names;
    let path = match path::check(req.uri().path(), &names.internal_prefix) {
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
        PathVerdict::Internal => return Err(RouterError::InternalPath),
        PathVerdict::Ambiguous(why) => return Err(RouterError::AmbiguousPath(why)),
    };
    let table = shared.table.load();
    let Some(table) = table.as_ref() else {
        return Err(RouterError::NoSnapshot);
    };
    let pin = pick::pinned_id(req.uri().query(), req.headers(), names);
    let choice = pick::choose(table, pin.as_deref(), || {
        pick::rollout_key(
            req.headers(),
            config.rollout_key_header.as_deref(),
            peer.ip(),
        )
    });
    let (target, pinned) = match choice {
        Choice::Pinned(t) => (t.clone(), true),
        Choice::Unpinned(t) => (t.clone(), false),
        Choice::Stale => {
            let Some(active) = &table.active else {
                return Err(RouterError::DeploymentNotFound);
            };
            let fallback = is_ws
                && req
                    .uri()
                    .query()
                    .and_then(|q| pick::query_value(q, &names.ws_fallback_param))
                    .is_some_and(|v| v == "1");
            if !fallback {
                return Ok(Err(respond::stale_affinity(req.method(), req.headers())));
            }
            (active.clone(), false)
        }
        Choice::NoActive => return Err(RouterError::DeploymentNotFound),
    };
    Ok(Ok(Decision {
        target,
        pinned,
        path,
    }))
}

/// Rewrites the request for the backend: hop-by-hop headers out, forwarding
/// headers and request id in, URI pointed at the backend.
pub fn rewrite_request(
    shared: &Shared,
    parts: &mut http::request::Parts,
    authority: &http::uri::Authority,
    peer: SocketAddr,
    path: Option<PathAndQuery>,
) -> Result<HeaderValue, RouterError> {
    let host = parts.headers.remove(header::HOST).or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::add_forwarded(
        &mut parts.headers,
        peer.ip(),
        host,
        shared.config.trust_forwarded,
    );
    let request_id = headers::request_id(&mut parts.headers);
    let pq = path
        .or_else(|| parts.uri.path_and_query().cloned())
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|_| RouterError::BadRequest("request target cannot be forwarded"))?;
    parts.version = Version::HTTP_11;
    Ok(request_id)
}

async fn forward(
    shared: &Shared,
    decision: Decision,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, RouterError> {
    let started = Instant::now();
    let Decision {
        target,
        pinned,
        path,
    } = decision;
    let (mut parts, body) = req.into_parts();
    let request_id = rewrite_request(shared, &mut parts, &target.authority, peer, path)?;
    let upstream = Request::from_parts(parts, body);

    let outcome = tokio::time::timeout(
        shared.config.limits.backend_timeout,
        shared.client.request(upstream),
    )
    .await;
    let res = match outcome {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            let err = if e.is_connect() {
                RouterError::BackendUnreachable {
                    id: target.id.clone(),
                    reason: error_chain(&e),
                }
            } else {
                RouterError::BackendFailed {
                    id: target.id.clone(),
                    reason: error_chain(&e),
                }
            };
            return Err(backend_failure(&target, err, started));
        }
        Err(_) => {
            let err = RouterError::BackendTimeout {
                id: target.id.clone(),
            };
            return Err(backend_failure(&target, err, started));
        }
    };
    let mut res = backend_response(&target, res, request_id, started);
    if !pinned && let Some(cookie) = &target.set_cookie {
        res.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
    Ok(res)
}

/// A backend's answer as the client gets it, body streamed: hop-by-hop
/// headers out, the selected deployment and request id in, counted.
pub(crate) fn backend_response(
    target: &Target,
    res: Response<Incoming>,
    request_id: HeaderValue,
    started: Instant,
) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(&SELECTED, target.selected.clone());
    parts.headers.insert(&headers::X_REQUEST_ID, request_id);
    target
        .traffic
        .record(parts.status.as_u16(), started.elapsed());
    Response::from_parts(parts, Either::Left(body))
}

/// Counts a failure the backend caused and passes the error on.
pub(crate) fn backend_failure(target: &Target, err: RouterError, started: Instant) -> RouterError {
    target.traffic.backend_error();
    target
        .traffic
        .record(err.status().as_u16(), started.elapsed());
    err
}

/// The error and its causes on one line: hyper's top-level messages alone
/// ("client error (Connect)") do not say what happened.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
