//! Asset fallthrough: an unpinned `GET` or `HEAD` for a content-hashed
//! build file (a configured path prefix such as `/assets/`) that the chosen
//! deployment answers 404 is asked of the other live deployments, newest
//! first, up to a bound, and the first 2xx is the answer. A document that a
//! CDN cached, or that loaded a second before a promotion, asks the active
//! deployment for chunks only the old build has: the router knows every
//! live deployment, so it can answer for them.
//!
//! Never for other methods, requests with a body, pinned requests, previews
//! or revoked deployments, and never to a deployment a pin could not reach
//! either: one drained past the maximum pin age, or, in strict mode, any
//! deployment unpinned traffic does not reach (old builds there open only
//! with a valid token). An answer from another deployment carries no pin
//! label and no deployment id, so it hands nobody a pin to an old build.
//!
//! Each try costs one backend round trip and no extra connection: a small
//! 404 body (up to `DRAIN_LIMIT`) is read before the next try, so its
//! connection goes back to the pool; a larger one is dropped unread.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header, uri::PathAndQuery};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Empty, Full};

use crate::{
    request::{
        backend::{backend_head, backend_response},
        pick::{self, Choice},
        respond::Body,
    },
    shared::Shared,
    state::table::Target,
    upstream::general::{Streamed, Upstream},
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
    let path = parts.uri.path_and_query()?;
    if pinned || !body_empty || !applies(shared, &parts.method, path.path()) {
        return None;
    }
    Some(Retry {
        method: parts.method.clone(),
        path: path.clone(),
        headers: parts.headers.clone(),
    })
}

/// Whether an unpinned, bodiless request may be retried on the other
/// deployments: a GET or HEAD under one of the asset prefixes.
pub fn applies(shared: &Shared, method: &Method, path: &str) -> bool {
    let assets = &shared.config.assets;
    assets.tries > 0
        && (*method == Method::GET || *method == Method::HEAD)
        && assets.prefixes.iter().any(|p| path.starts_with(p.as_str()))
}

/// The largest 404 body read so that its connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;

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
    let pins = &shared.config.pins;
    let others = table
        .as_ref()
        .map(|t| {
            let unpinned_reach = |c: &Arc<Target>| {
                t.active.as_ref().is_some_and(|a| Arc::ptr_eq(a, c))
                    || t.rollout.as_ref().is_some_and(|(r, _)| Arc::ptr_eq(r, c))
            };
            t.asset_order
                .iter()
                .filter(|c| c.id != first.id)
                .filter(|c| !pins.strict() || unpinned_reach(c))
                .filter(|c| matches!(pick::honour_age(Choice::Pinned(c), pins), Choice::Pinned(_)))
                .take(shared.config.assets.tries)
                .cloned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if others.is_empty() {
        return backend_response(first, not_found, started, Some(&first.label));
    }
    let mut last = drained(shared, first, not_found, started, Some(&first.label)).await;
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
            let mut out = backend_response(&other, res, started, None);
            out.headers_mut().insert(
                switchyard_core::names::headers::FELL_THROUGH,
                first.selected.clone(),
            );
            return out;
        }
        last = drained(shared, &other, res, started, None).await;
    }
    last
}

/// `res` as the client gets it, its body read first when small, so the
/// connection it came on is free for the next try; a large body stays a
/// stream (and its connection is closed if the answer is not used).
async fn drained(
    shared: &Shared,
    target: &Target,
    res: Response<Streamed>,
    started: Instant,
    label: Option<&HeaderValue>,
) -> Response<Body> {
    if res
        .body()
        .size_hint()
        .upper()
        .is_none_or(|n| n > DRAIN_LIMIT)
    {
        return backend_response(target, res, started, label);
    }
    let (mut parts, body) = res.into_parts();
    let read = tokio::time::timeout(shared.config.limits.backend_timeout, body.collect()).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    // The length is the bytes held, whatever the backend announced.
    parts.headers.remove(header::CONTENT_LENGTH);
    backend_head(target, &mut parts, started, label);
    Response::from_parts(parts, Either::Right(Full::new(bytes)))
}
