//! The router's own endpoints for the browser client, under the reserved
//! client prefix (default `/_switchyard`), never forwarded:
//!
//! - `GET {prefix}/client.js`: the client's one-file script build, with this
//!   router's pin names baked in, so an app without a bundler adds one
//!   `<script>` tag; precompressed (brotli and gzip), with an ETag, and also
//!   at a content-hashed name (`client.<hash>.js`) that caches forever;
//! - `GET {prefix}/status`: what the router knows about the request's pin,
//!   and what a reload would bring this client, so a page can tell an
//!   update is out before anything breaks.

use std::io::Write;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use switchyard_core::{DeploymentState, RoutingNames, names::client_paths};

use crate::{
    error::RouterError,
    fnv,
    request::{
        pick,
        respond::{self, Body, MARKER},
    },
    shared::Shared,
};

/// The script build, made by `npm run build` in `clients/browser` and
/// committed, so building the router needs no Node.js.
const SCRIPT: &str = include_str!("../../../clients/browser/dist/switchyard.min.js");

/// The longest pin `/status` looks at: a signed token is well under this.
const MAX_PIN: usize = 512;

/// The script as served: the router's names in front of the build, in each
/// content coding, compressed once at start.
#[derive(Debug)]
pub struct Script {
    plain: Bytes,
    gzip: Bytes,
    brotli: Bytes,
    /// Hex digest of `plain`: the ETag's opaque part and the hashed name.
    digest: String,
    /// `{prefix}/client.<digest>.js`.
    pub hashed_path: String,
}

impl Script {
    pub fn new(names: &RoutingNames) -> Self {
        let config = serde_json::json!({
            "query": names.query_param,
            "header": names.header,
            "prefix": names.client_prefix,
        });
        let plain = format!("self.__SWITCHYARD__={config};\n{SCRIPT}").into_bytes();
        let digest = format!("{:016x}", fnv::step(fnv::OFFSET, &plain));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let gzip = gz
            .write_all(&plain)
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        let mut brotli = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            ..Default::default()
        };
        let _ = brotli::BrotliCompress(&mut &plain[..], &mut brotli, &params);
        Self {
            hashed_path: format!("{}/client.{digest}.js", names.client_prefix),
            plain: Bytes::from(plain),
            gzip: Bytes::from(gzip),
            brotli: Bytes::from(brotli),
            digest,
        }
    }

    /// The best coding the client accepts, its body, and its ETag.
    fn pick(&self, accept: Option<&HeaderValue>) -> (Option<&'static str>, &Bytes, String) {
        let accepts = |coding: &str| {
            accept
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| accepts_coding(v, coding))
        };
        let (coding, body) = if accepts("br") && !self.brotli.is_empty() {
            (Some("br"), &self.brotli)
        } else if accepts("gzip") && !self.gzip.is_empty() {
            (Some("gzip"), &self.gzip)
        } else {
            (None, &self.plain)
        };
        // One ETag per representation (RFC 9110 §8.8.3): each coding is a
        // different sequence of bytes.
        let etag = format!(
            "\"{}{}\"",
            self.digest,
            coding.map_or("", |c| if c == "br" { "-br" } else { "-gz" })
        );
        (coding, body, etag)
    }
}

/// Whether an `Accept-Encoding` value allows `coding` (RFC 9110 §12.5.3):
/// named, or `*`, without `q=0`.
fn accepts_coding(value: &str, coding: &str) -> bool {
    let mut verdict = None;
    for element in value.split(',') {
        let mut parts = element.split(';');
        let name = parts.next().unwrap_or("").trim();
        let zero = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if name.eq_ignore_ascii_case(coding) {
            return !zero;
        }
        if name == "*" {
            verdict = Some(!zero);
        }
    }
    verdict.unwrap_or(false)
}

pub fn answer(
    shared: &Shared,
    req: &Request<Incoming>,
    peer: std::net::IpAddr,
    rest: &str,
) -> Result<Response<Body>, RouterError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = respond::json(
            StatusCode::METHOD_NOT_ALLOWED,
            "the router's own endpoints answer GET and HEAD",
        );
        // RFC 9110 §15.5.6: a 405 names what the resource does allow.
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(res);
    }
    match rest {
        client_paths::SCRIPT => Ok(script(&shared.client_script, req.headers(), false)),
        client_paths::STATUS => status(shared, req, peer),
        other => match other
            .strip_prefix("/client.")
            .and_then(|s| s.strip_suffix(".js"))
        {
            Some(digest) if digest == shared.client_script.digest => {
                Ok(script(&shared.client_script, req.headers(), true))
            }
            // An older router's name: send the page to this one's, never
            // cache the detour.
            Some(digest) if digest.len() == 16 && digest.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let mut res = own(Bytes::new(), "text/plain", "no-store");
                *res.status_mut() = StatusCode::FOUND;
                if let Ok(to) = HeaderValue::try_from(shared.client_script.hashed_path.as_str()) {
                    res.headers_mut().insert(header::LOCATION, to);
                }
                Ok(res)
            }
            _ => Err(RouterError::InternalPath),
        },
    }
}

fn script(s: &Script, headers: &HeaderMap, immutable: bool) -> Response<Body> {
    let (coding, body, etag) = s.pick(headers.get(header::ACCEPT_ENCODING));
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        // Short: a router upgrade ships a new client within minutes, and
        // the ETag makes each check after that a 304.
        "public, max-age=300"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
            })
        });
    let mut res = if fresh {
        let mut r = own(Bytes::new(), "text/javascript; charset=utf-8", cache);
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        own(body.clone(), "text/javascript; charset=utf-8", cache)
    };
    let h = res.headers_mut();
    if let Some(coding) = coding
        && !fresh
    {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(etag) = HeaderValue::try_from(etag) {
        h.insert(header::ETAG, etag);
    }
    res
}

fn status(
    shared: &Shared,
    req: &Request<Incoming>,
    peer: std::net::IpAddr,
) -> Result<Response<Body>, RouterError> {
    let table = shared.table.load();
    let Some(table) = table.as_ref() else {
        return Err(RouterError::NoSnapshot);
    };
    let names = &shared.config.names;
    let pin = pick::pinned_id(req.uri().query(), req.headers(), names, pick::Load::Other)
        .map_err(|_| RouterError::ConflictingPins)?;
    if pin.as_ref().is_some_and(|p| p.len() > MAX_PIN) {
        return Err(RouterError::BadRequest("pin too long"));
    }
    let snap = &table.snapshot;
    let active = snap.active.as_ref().map(|a| a.as_str());
    let deployment = pin
        .as_deref()
        .and_then(|p| shared.config.pins.resolve(p))
        .filter(|id| table.get(id).is_some());
    let choice = deployment
        .map(|id| pick::honour_age(pick::choose(table, Some(id), || 0), &shared.config.pins));
    let serving = deployment.and_then(|id| snap.get(id));
    let (state, drain_started_at) = match (choice, serving) {
        (Some(pick::Choice::Pinned(_)), Some(d)) => (d.state.as_str(), d.drain_started_at),
        (Some(_), _) => ("stale", None),
        (None, _) if pin.is_some() => ("stale", None),
        (None, _) => ("unpinned", None),
    };
    // Where a reload without the pin would land this client: the same
    // choice, by the same rollout key, that a page load makes.
    let key = pick::rollout_key(
        req.headers(),
        shared.config.rollout_key_header.as_deref(),
        peer,
    );
    let next = match pick::choose(table, None, || key) {
        pick::Choice::Unpinned(t) => Some(t),
        _ => None,
    };
    // An update is a different build a reload would bring. A preview
    // (pending) page is where it is on purpose: no update for it.
    let update = match (serving, next) {
        (Some(from), Some(to))
            if state != "stale"
                && from.deployment_id != to.id
                && from.state != DeploymentState::Pending =>
        {
            let newer = snap.get(to.id.as_str()).and_then(|d| d.created_at) > from.created_at;
            Some(serde_json::json!({
                "kind": if newer { "newer" } else { "rollback" },
                "from": from.deployment_id,
                "to": to.id,
            }))
        }
        _ => None,
    };
    let body = serde_json::json!({
        "active": active,
        // Echoed only once it named a deployment this router knows.
        "pin": deployment.and(pin.as_deref()),
        "deployment": deployment,
        "state": state,
        "drain_started_at": drain_started_at,
        // The router does not know the janitor's schedule.
        "retire_at": serde_json::Value::Null,
        "next": next.map(|t| t.id.as_str()),
        "next_pin": next.map(|t| t.pin.as_str()),
        "update": update,
        "script": shared.client_script.hashed_path,
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
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(&MARKER, HeaderValue::from_static("router"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding() {
        assert!(accepts_coding("gzip, deflate, br", "br"));
        assert!(accepts_coding("gzip;q=1.0, br;q=0.5", "br"));
        assert!(!accepts_coding("gzip, br;q=0", "br"));
        assert!(accepts_coding("*", "gzip"));
        assert!(!accepts_coding("*;q=0", "gzip"));
        assert!(!accepts_coding("gzip;q=0, *", "gzip"));
        assert!(!accepts_coding("identity", "gzip"));
        assert!(!accepts_coding("", "br"));
    }

    #[test]
    fn script_codings_decode_to_the_plain_script() {
        use std::io::Read;
        let s = Script::new(&RoutingNames::default());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&s.gzip[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, s.plain);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &s.brotli[..], &mut out).unwrap();
        assert_eq!(out, s.plain);
        assert!(s.brotli.len() < s.plain.len() / 2);
        assert!(s.hashed_path.starts_with("/_switchyard/client."));
    }
}
