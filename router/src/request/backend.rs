//! What both forwarding paths (HTTP in `proxy`, WebSocket in `ws`) do at
//! the backend boundary: rewrite the request for it, turn its answer into
//! the client's, and count and describe its failures.

use std::time::Instant;

use http::{HeaderValue, Response, Uri, Version, header, uri::PathAndQuery};
use http_body_util::Either;

use crate::{
    error::RouterError,
    request::{
        headers::{self, SELECTED},
        respond::Body,
    },
    shared::Shared,
    state::table::Target,
    upstream::general::Streamed,
};

/// Rewrites the request for the backend: hop-by-hop headers out, forwarding
/// headers in, origin-form target (RFC 9112 §3.2.1) with the backend's own
/// `Host`. The request id was set when the request arrived.
pub fn rewrite_request(
    shared: &Shared,
    parts: &mut http::request::Parts,
    target: &Target,
    peer: &HeaderValue,
    decision_path: Option<PathAndQuery>,
    host: Option<HeaderValue>,
) {
    headers::strip_hop_by_hop(
        &mut parts.headers,
        Some(headers::RequestRules {
            pin_header: &shared.config.names.header,
            trust_forwarded: shared.config.trust_forwarded,
        }),
    );
    headers::add_forwarded(
        &mut parts.headers,
        peer,
        host,
        shared.config.trust_forwarded,
    );
    parts.headers.insert(header::HOST, target.host.clone());
    if parts.version == Version::HTTP_2 {
        join_cookie_crumbs(&mut parts.headers);
    }
    let pq = decision_path
        .or_else(|| parts.uri.path_and_query().cloned())
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(pq);
    parts.version = Version::HTTP_11;
}

/// HTTP/2 may split a `Cookie` into crumbs, one field each; an HTTP/1.1
/// backend gets them joined with "; " into the one field it expects
/// (RFC 9113 §8.2.3, RFC 6265 §5.4).
fn join_cookie_crumbs(h: &mut http::HeaderMap) {
    let mut crumbs = h.get_all(header::COOKIE).iter();
    if crumbs.next().is_none() || crumbs.next().is_none() {
        return;
    }
    let mut joined = Vec::new();
    for crumb in h.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(crumb.as_bytes());
    }
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        h.insert(header::COOKIE, v);
    }
}

/// A backend's answer as the client gets it, body streamed: hop-by-hop
/// headers out, counted, and, with a `label`, the selected deployment and
/// the pin label in (a fallthrough answer from another deployment names
/// neither: it must not hand an anonymous client a pin to an old build).
pub(crate) fn backend_response(
    target: &Target,
    res: Response<Streamed>,
    started: Instant,
    label: Option<&HeaderValue>,
) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    backend_head(target, &mut parts, started, label);
    Response::from_parts(parts, Either::Left(body))
}

/// The head half of `backend_response`, for an answer whose body the
/// router already holds.
pub(crate) fn backend_head(
    target: &Target,
    parts: &mut http::response::Parts,
    started: Instant,
    label: Option<&HeaderValue>,
) {
    headers::strip_hop_by_hop(&mut parts.headers, None);
    if let Some(label) = label {
        parts.headers.insert(&SELECTED, target.selected.clone());
        parts.headers.append(&headers::SERVER_TIMING, label.clone());
    }
    target
        .traffic
        .record(parts.status.as_u16(), started.elapsed());
}

/// Counts a failure the backend caused and passes the error on.
pub(crate) fn backend_failure(target: &Target, err: RouterError, started: Instant) -> RouterError {
    target.traffic.backend_error();
    target
        .traffic
        .record(err.status().as_u16(), started.elapsed());
    err
}
