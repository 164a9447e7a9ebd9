//! The router's own endpoints for the browser client, under the reserved
//! client prefix (default `/_switchyard`), never forwarded:
//!
//! - `GET {prefix}/client.js`: the client's one-file script build, with this
//!   router's pin names baked in, so an app without a bundler adds one
//!   `<script>` tag;
//! - `GET {prefix}/status`: what the router knows about the request's pin
//!   (`{"active", "pin", "state"}`), so a page can tell an update is out
//!   before anything breaks.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use switchyard_core::RoutingNames;

use crate::{
    Shared, pick,
    respond::{self, Body, MARKER, RouterError},
};

/// The script build, made by `npm run build` in `clients/browser` and
/// committed, so building the router needs no Node.js.
const SCRIPT: &str = include_str!("../../clients/browser/dist/switchyard.min.js");

/// The script with the router's configured names in front of it.
pub fn script(names: &RoutingNames) -> Bytes {
    let config = serde_json::json!({
        "query": names.query_param,
        "header": names.header,
        "prefix": names.client_prefix,
    });
    Bytes::from(format!("self.__SWITCHYARD__={config};\n{SCRIPT}"))
}

pub fn answer(
    shared: &Shared,
    req: &Request<Incoming>,
    rest: &str,
) -> Result<Response<Body>, RouterError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(respond::json(
            StatusCode::METHOD_NOT_ALLOWED,
            "the router's own endpoints answer GET",
        ));
    }
    match rest {
        "/client.js" => Ok(own(
            shared.client_script.clone(),
            "text/javascript; charset=utf-8",
            // Short: a router upgrade ships a new client within minutes.
            "public, max-age=300",
        )),
        "/status" => status(shared, req),
        _ => Err(RouterError::InternalPath),
    }
}

fn status(shared: &Shared, req: &Request<Incoming>) -> Result<Response<Body>, RouterError> {
    let table = shared.table.load();
    let Some(table) = table.as_ref() else {
        return Err(RouterError::NoSnapshot);
    };
    let names = &shared.config.names;
    let pin = pick::pinned_id(req.uri().query(), req.headers(), names, true)
        .map_err(|_| RouterError::ConflictingPins)?;
    let active = table.snapshot.active.as_ref().map(|a| a.as_str());
    let deployment = pin
        .as_deref()
        .and_then(|p| pick::pinned_deployment(p, &shared.config.pins));
    let choice = deployment
        .map(|id| pick::honour_age(pick::choose(table, Some(id), || 0), &shared.config.pins));
    let (state, drain_started_at) = match (choice, deployment.and_then(|id| table.snapshot.get(id)))
    {
        (Some(pick::Choice::Pinned(_)), Some(d)) => (d.state.as_str(), d.drain_started_at),
        (Some(_), _) => ("stale", None),
        (None, _) if pin.is_some() => ("stale", None),
        (None, _) => ("unpinned", None),
    };
    let body = serde_json::json!({
        "active": active,
        "pin": pin,
        "deployment": deployment,
        "state": state,
        "drain_started_at": drain_started_at,
        // The router does not know the janitor's schedule.
        "retire_at": serde_json::Value::Null,
    });
    Ok(own(
        Bytes::from(body.to_string()),
        "application/json",
        "no-store",
    ))
}

fn own(body: Bytes, content_type: &'static str, cache: &'static str) -> Response<Body> {
    let mut res = Response::new(Either::Right(Full::new(body)));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(&MARKER, HeaderValue::from_static("router"));
    res
}
