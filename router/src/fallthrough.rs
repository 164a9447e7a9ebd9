//! Asset fallthrough: an unpinned `GET` or `HEAD` for a content-hashed
//! build file (a configured path prefix such as `/assets/`) that the chosen
//! deployment answers 404 is asked of the other live deployments, newest
//! first, up to a bound, and the first 2xx is the answer. A document that a
//! CDN cached, or that loaded a second before a promotion, asks the active
//! deployment for chunks only the old build has: the router knows every
//! live deployment, so it can answer for them.
//!
//! Never for other methods, requests with a body, pinned requests, previews
//! or revoked deployments. The first 404's body is dropped unread; each try
//! costs one backend round trip.

use std::{sync::Arc, time::Instant};

use http::{HeaderMap, Method, Request, Response, Uri, header, uri::PathAndQuery};
use http_body_util::{Either, Empty};

use crate::{
    Shared,
    backend::backend_response,
    respond::Body,
    table::Target,
    upstream::{Streamed, Upstream},
};

/// What a retry needs of the original request, kept only for requests
/// that may fall through.
pub struct Retry {
    method: Method,
    path: PathAndQuery,
    headers: HeaderMap,
}

/// The part of the request a retry repeats, when this one may fall
/// through: unpinned, bodiless GET or HEAD under an asset prefix.
pub fn retry_for(
    shared: &Shared,
    pinned: bool,
    parts: &http::request::Parts,
    body_empty: bool,
) -> Option<Retry> {
    let limits = &shared.config.assets;
    if pinned || limits.tries == 0 || !body_empty {
        return None;
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return None;
    }
    let path = parts.uri.path_and_query()?;
    if !limits
        .prefixes
        .iter()
        .any(|p| path.path().starts_with(p.as_str()))
    {
        return None;
    }
    Some(Retry {
        method: parts.method.clone(),
        path: path.clone(),
        headers: parts.headers.clone(),
    })
}

/// Asks the other live deployments, newest first, for what `first`
/// answered 404; the first 2xx wins, else the last answer stands.
pub async fn fall_through(
    shared: &Shared,
    upstream: &Upstream,
    retry: Retry,
    first: &Arc<Target>,
    not_found: Response<Streamed>,
    started: Instant,
) -> Response<Body> {
    let table = shared.table.load_full();
    let others = table
        .as_ref()
        .map(|t| {
            t.asset_order
                .iter()
                .filter(|c| c.id != first.id)
                .take(shared.config.assets.tries)
                .cloned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut last = (first.clone(), not_found);
    for other in others {
        let mut req = Request::new(Either::Right(Empty::new()));
        *req.method_mut() = retry.method.clone();
        *req.uri_mut() = Uri::from(retry.path.clone());
        *req.headers_mut() = retry.headers.clone();
        req.headers_mut().insert(header::HOST, other.host.clone());
        let answer = tokio::time::timeout(
            shared.config.limits.backend_timeout,
            upstream.send(&other.authority, req),
        )
        .await;
        let Ok(Ok(res)) = answer else {
            other.traffic.backend_error();
            continue;
        };
        if res.status().is_success() {
            other.traffic.fell_through();
            let mut out = backend_response(&other, res, started);
            out.headers_mut().insert(
                switchyard_core::names::headers::FELL_THROUGH,
                first.selected.clone(),
            );
            return out;
        }
        last = (other, res);
    }
    let (target, res) = last;
    backend_response(&target, res, started)
}
