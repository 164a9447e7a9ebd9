//! Responses the router makes itself, and the one mapping from what went
//! wrong to the status a client sees: client faults are 4xx, backend faults
//! 502/504, the router's own 503. Every such response carries
//! `x-switchyard: router` so an operator can tell it from a backend's.

use crate::error::RouterError;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{Either, Full};
use switchyard_core::{DeploymentId, names::headers as pulse};

pub type Body = Either<crate::upstream::general::Streamed, Full<Bytes>>;

/// What log lines about a request name it by.
pub struct RequestLabel<'a> {
    pub id: &'a HeaderValue,
    pub method: &'a Method,
    pub path: &'a str,
}

pub static MARKER: http::HeaderName =
    http::HeaderName::from_static(switchyard_core::names::headers::ROUTER_MARKER);
static RELOAD_WINDOW: http::HeaderName =
    http::HeaderName::from_static(switchyard_core::names::headers::RELOAD_WINDOW_MS);

impl RouterError {
    pub fn into_response(self, req: &RequestLabel<'_>) -> Response<Body> {
        let status = self.status();
        let id = req.id.to_str().unwrap_or("");
        let deployment = self.deployment().map_or("-", DeploymentId::as_str);
        if let Self::ClientBody(why) | Self::SlowUpload(why) = &self {
            tracing::info!(request_id = id, method = %req.method, path = req.path, status = status.as_u16(),
                error = %why, "client abort: its request body failed; not the backend's fault");
        } else if status.is_server_error() {
            tracing::warn!(request_id = id, method = %req.method, path = req.path, deployment,
                status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(request_id = id, method = %req.method, path = req.path, deployment,
                status = status.as_u16(), error = %self, "request refused");
        }
        let mut res = json(status, &self.to_string());
        // The router did choose a deployment, and its backend failed: say
        // which, so a deploy's check can tell a dead new backend from a
        // router that has not heard of it yet.
        if let Some(id) = self.deployment()
            && let Ok(v) = HeaderValue::from_str(id.as_str())
        {
            res.headers_mut()
                .insert(&crate::request::headers::SELECTED, v);
        }
        if let Self::SlowUpload(_) = self {
            // RFC 9110 §15.5.9: the rest of the body will not be read, so
            // the connection cannot carry another request.
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Self::WebSocketVersion = self {
            // RFC 6455 §4.4: say which version the server does speak.
            res.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        res
    }
}

pub fn json(status: StatusCode, detail: &str) -> Response<Body> {
    let body = serde_json::json!({ "detail": detail }).to_string();
    let mut res = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(&MARKER, HeaderValue::from_static("router"));
    res
}

/// `/healthz`: ready only once the router holds a routing table, so a
/// platform health check never sends traffic to a router that could only
/// answer 503.
pub fn health(ready: bool) -> Response<Body> {
    let body: &'static [u8] = if ready {
        b"{\"ok\":true}"
    } else {
        b"{\"ok\":false,\"detail\":\"no deployment snapshot yet\"}"
    };
    let mut res = Response::new(Either::Right(Full::new(Bytes::from_static(body))));
    if !ready {
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(&MARKER, HeaderValue::from_static("router"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A request pinned to a deployment that no longer serves, while another is
/// active. Browsers on another origin must be able to read why, so the
/// answer is CORS-readable, and preflights succeed.
///
/// A person never sees the JSON: a navigation (a page or frame load, RFC
/// 9110 §15.4.3 and §15.4.4 for the status) is sent to the same address
/// without its pin, where the active deployment serves it; one whose pin
/// the browser would send again (a header, which only scripts and tools
/// set) gets a page saying so instead of a redirect loop.
pub fn stale_affinity(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    query_param: &str,
) -> Response<Body> {
    let preflight =
        *method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = if preflight {
        let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
        *r.status_mut() = StatusCode::NO_CONTENT;
        r.headers_mut()
            .insert(&MARKER, HeaderValue::from_static("router"));
        r
    } else if let Some(location) = client_loader_location(headers) {
        redirect(StatusCode::FOUND, location)
    } else if crate::request::pick::is_navigation(method, headers) {
        let (location, had_pin) = unpinned_location(uri, query_param);
        let get = matches!(*method, Method::GET | Method::HEAD);
        match HeaderValue::try_from(location) {
            Ok(location) if had_pin || !get => redirect(
                if get {
                    StatusCode::FOUND
                } else {
                    StatusCode::SEE_OTHER
                },
                location,
            ),
            _ => stale_page(),
        }
    } else {
        json(StatusCode::CONFLICT, "stale affinity")
    };
    let h = res.headers_mut();
    h.insert(pulse::STALE_AFFINITY, HeaderValue::from_static("1"));
    // The window a browser client spreads its reload over, so a stale
    // deployment's pages do not all come back in the same second.
    h.insert(&RELOAD_WINDOW, HeaderValue::from_static("2000"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(origin) = headers.get(header::ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(pulse::STALE_AFFINITY),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if preflight {
        if let Some(m) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m.clone());
        }
        if let Some(req_headers) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, req_headers.clone());
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    res
}

fn redirect(status: StatusCode, location: HeaderValue) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::LOCATION, location);
    r.headers_mut()
        .insert(&MARKER, HeaderValue::from_static("router"));
    r
}

/// For a navigation whose pin cannot be taken out of its address.
fn stale_page() -> Response<Body> {
    const PAGE: &str = "<!doctype html><meta charset=\"utf-8\"><title>Page updated</title>\
        <p>This version of the page is no longer available. <a href=\"\">Reload</a> to get the current one.</p>\n";
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(
        PAGE.as_bytes(),
    ))));
    *r.status_mut() = StatusCode::CONFLICT;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(&MARKER, HeaderValue::from_static("router"));
    r
}

/// The request's own address (origin-form: path and query, relative to
/// where the browser is) with every occurrence of the pin parameter taken
/// out, and whether there was one. The fragment is the browser's: it
/// keeps it across the redirect (RFC 9110 §10.2.2). Leading slashes are
/// collapsed and backslashes escaped, so the location can only ever name a
/// path on this host, never `//other.host`.
pub fn unpinned_location(uri: &http::Uri, query_param: &str) -> (String, bool) {
    let raw = uri.path();
    let mut out = String::with_capacity(raw.len() + uri.query().map_or(0, str::len) + 1);
    out.push('/');
    for c in raw.trim_start_matches(['/', '\\']).chars() {
        match c {
            '\\' => out.push_str("%5C"),
            c if c.is_ascii_control() => {}
            c => out.push(c),
        }
    }
    let mut had_pin = false;
    if let Some(query) = uri.query() {
        let mut first = true;
        for pair in query.split(crate::request::pick::QUERY_SEPARATORS) {
            let name = pair.split_once('=').map_or(pair, |(k, _)| k);
            if crate::request::pick::names_pin(name, query_param) {
                had_pin = true;
                continue;
            }
            if pair.is_empty() {
                continue;
            }
            out.push(if first { '?' } else { '&' });
            first = false;
            out.push_str(pair);
        }
    }
    (out, had_pin)
}

/// The page a Pulse client loader asks to be sent to instead of a 409.
fn client_loader_location(headers: &HeaderMap) -> Option<HeaderValue> {
    let flagged = headers
        .get(pulse::CLIENT_LOADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    if !flagged {
        return None;
    }
    let loc = headers.get(pulse::CLIENT_LOADER_LOCATION)?;
    // Only a same-site path or an http(s) URL: never a script scheme, and
    // no backslash or control character, which browsers read as `/` or
    // drop (`/\\host` is `//host` to them).
    let s = loc.to_str().ok()?;
    if s.contains('\\') || s.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    let ok = (s.starts_with('/') && !s.starts_with("//"))
        || s.starts_with("https://")
        || s.starts_with("http://");
    ok.then(|| loc.clone())
}
