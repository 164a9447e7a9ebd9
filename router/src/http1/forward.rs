//! One exchange on the engine, as named steps: check the head, route it,
//! write the backend's request, read its answer, filter the response head,
//! relay the body, log. Anything the engine leaves to the general path is
//! decided before the backend is asked.

use std::{borrow::Cow, time::Instant};

use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Either};

use super::{
    Session,
    body::{self, Broken, Framing},
    head::{self, BodyKind, Refusal},
    io,
};
use crate::{
    access,
    backend::backend_failure,
    fields::{Fields, visible},
    headers,
    path::{self, PathVerdict},
    pick,
    proxy::{self, Ask, Decided, Decision, PageCookie},
    respond::{RequestLabel, RouterError},
    table::Target,
};

/// What the connection does after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
    /// The general path serves this request and the rest of the
    /// connection.
    Handoff,
}

/// Response header slots: a backend sending more is answered 502.
const RESPONSE_SLOTS: usize = 100;

/// The largest backend response head.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The request id on the stack: the client's when sane, else a new one.
struct RequestId {
    buf: [u8; 128],
    len: usize,
}

impl RequestId {
    fn of(client: Option<&[u8]>) -> Self {
        let mut buf = [0u8; 128];
        let len = match client {
            Some(v) => {
                buf[..v.len()].copy_from_slice(v);
                v.len()
            }
            None => {
                buf[..32].copy_from_slice(&headers::fresh_id());
                32
            }
        };
        Self { buf, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn value(&self) -> HeaderValue {
        HeaderValue::from_bytes(self.bytes()).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

pub async fn exchange(s: &mut Session<'_>, req: &httparse::Request<'_, '_>, raw: &[u8]) -> Next {
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
    if minor == 0
        || facts.upgrade
        || facts.expect
        || facts.body != BodyKind::None
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
        Some(h) if proxy::check_host(h).is_ok() => {}
        Some(_) => return refuse(s, Some(&id), Refusal::bad("malformed Host")).await,
        None => return refuse(s, Some(&id), Refusal::bad("Host is not plain ASCII")).await,
    }
    let Ok(method) = Method::from_bytes(method_name.as_bytes()) else {
        return refuse(s, Some(&id), Refusal::bad("malformed method")).await;
    };
    let close = facts.close || shared.shutdown.is_cancelled();

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
    let decision = match proxy::decide(shared, ask) {
        Ok(Decided::Go(d)) => d,
        Ok(Decided::Stale) => return Next::Handoff,
        Err(e) => return answer(s, &id, &method, path, e, close).await,
    };
    if !decision.pinned && falls_through(shared, &method, path) {
        return Next::Handoff;
    }
    decision.target.traffic.touch();
    let started = Instant::now();

    // Step 3, the upstream request.
    write_request(s, req, &facts, &decision.target, host, &id);

    // Step 4, the backend's answer.
    let sent = send(s, &decision.target, &method).await;
    let (backend, head_len) = match sent {
        Ok(b) => b,
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

/// Whether asset fallthrough may retry this request on other deployments
/// (`fallthrough::retry_for`'s rule; the general path does the retrying).
fn falls_through(shared: &crate::Shared, method: &Method, path: &str) -> bool {
    let assets = &shared.config.assets;
    assets.tries > 0
        && (*method == Method::GET || *method == Method::HEAD)
        && assets.prefixes.iter().any(|p| path.starts_with(p.as_str()))
}

/// A field name lowercased into `low`, when short enough to be one the
/// router treats specially (the longest is 19 bytes).
fn lower<'a>(name: &str, low: &'a mut [u8; 32]) -> Option<&'a str> {
    let b = name.as_bytes();
    if b.len() > low.len() {
        return None;
    }
    for (d, s) in low.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(&low[..b.len()]).ok()
}

/// Whether a `Connection` field of `fields` names `name`.
fn named_by_connection(fields: &[httparse::Header<'_>], name: &str) -> bool {
    fields.all("connection").any(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
    })
}

fn put(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
}

fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    put(out, &[name, b": ", value, b"\r\n"]);
}

fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The backend's request, written from the client's field slices: the
/// same rules as `headers::strip_hop_by_hop` and `add_forwarded` on the
/// general path (RFC 9110 §7.6).
fn write_request(
    s: &mut Session<'_>,
    req: &httparse::Request<'_, '_>,
    facts: &head::Facts<'_>,
    target: &Target,
    host: &[u8],
    id: &RequestId,
) {
    let config = &s.shared.config;
    let pin_header = config.names.header.as_str();
    let trust = config.trust_forwarded;
    let out = &mut s.out;
    out.clear();
    put(
        out,
        &[
            req.method.unwrap_or("GET").as_bytes(),
            b" ",
            req.path.unwrap_or("/").as_bytes(),
            b" HTTP/1.1\r\n",
        ],
    );
    let mut proto_seen = false;
    let mut host_seen = false;
    let mut low = [0u8; 32];
    for h in req.headers.iter() {
        let name = lower(h.name, &mut low);
        let dropped = match name {
            Some("host" | "x-request-id" | "x-forwarded-for") => true,
            Some("x-forwarded-proto") => {
                proto_seen = true;
                !trust
            }
            Some("x-forwarded-host") => {
                host_seen = true;
                !trust
            }
            Some(n) => headers::is_fixed_hop_by_hop(n) || (!trust && headers::is_forwarding(n)),
            None => false,
        };
        if dropped {
            continue;
        }
        // The pin header's underscore spelling (read as the same header
        // by CGI-style backends) never reaches the backend, and a
        // `Connection` token never strips the pin or the request id.
        if h.name.len() == pin_header.len()
            && h.name.contains('_')
            && h.name
                .bytes()
                .zip(pin_header.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
        {
            continue;
        }
        if facts.connection_tokens
            && !h.name.eq_ignore_ascii_case(pin_header)
            && named_by_connection(req.headers, h.name)
        {
            continue;
        }
        put_field(out, h.name.as_bytes(), h.value);
    }
    put_field(out, b"host", target.host.as_bytes());
    put_field(out, b"x-request-id", id.bytes());
    out.extend_from_slice(b"x-forwarded-for: ");
    if facts.forwarded_for {
        for v in req.headers.all("x-forwarded-for") {
            put(out, &[v.trim_ascii(), b", "]);
        }
    }
    put(out, &[s.conn.peer_ip.as_bytes(), b"\r\n"]);
    if !(trust && proto_seen) {
        put_field(out, b"x-forwarded-proto", b"http");
    }
    if !(trust && host_seen) {
        put_field(out, b"x-forwarded-host", host);
    }
    out.extend_from_slice(b"\r\n");
}

/// Sends the request head in `s.out` and reads the response head into
/// `s.back`; the backend socket and the head's length.
///
/// A kept-alive connection can be closed by the backend just as it is
/// reused; a request that got no byte of answer on one is sent again once
/// on a new connection when repeating it is safe (bodiless and
/// idempotent: RFC 9110 §9.2.2, RFC 9112 §9.3.1).
async fn send(
    s: &mut Session<'_>,
    target: &Target,
    method: &Method,
) -> Result<(tokio::net::TcpStream, usize), RouterError> {
    let limits = &s.shared.config.limits;
    let failed = |reason: String| RouterError::BackendFailed {
        id: target.id.clone(),
        reason,
    };
    let deadline = Instant::now() + limits.backend_timeout;
    let mut fresh_only = false;
    loop {
        let (backend, reused) = match (!fresh_only)
            .then(|| s.pool.take(&target.authority))
            .flatten()
        {
            Some((b, _)) => (b, true),
            None => {
                let b = crate::upstream::connect(&target.authority, limits.backend_connect_timeout)
                    .await
                    .map_err(|e| RouterError::BackendUnreachable {
                        id: target.id.clone(),
                        reason: e.to_string(),
                    })?;
                (b, false)
            }
        };
        let retry = reused && method.is_idempotent();
        if let Err(e) = io::write_all(&backend, &s.out, limits.backend_timeout).await {
            if reused {
                fresh_only = true;
                continue;
            }
            return Err(failed(e.to_string()));
        }
        s.back.clear();
        loop {
            if let Some(end) = head_end(&s.back) {
                // Interim answers (RFC 9110 §15.2): the engine sends no
                // `Expect` and asks for no upgrade, so a 1xx is dropped
                // and the final answer read after it; a 101 is wrong.
                match s.back.get(9..12) {
                    Some(b"101") => return Err(failed("switched protocols unasked".into())),
                    Some([b'1', _, _]) => {
                        s.back.drain(..end);
                        continue;
                    }
                    _ => return Ok((backend, end)),
                }
            }
            if s.back.len() > MAX_RESPONSE_HEAD {
                return Err(failed("response head too large".into()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match io::read(&backend, &mut s.back, 4096, left).await {
                Ok(0) if s.back.is_empty() && retry => break,
                Ok(0) => return Err(failed("closed before a whole response head".into())),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(RouterError::BackendTimeout {
                        id: target.id.clone(),
                    });
                }
                Err(_) if s.back.is_empty() && retry => break,
                Err(e) => return Err(failed(e.to_string())),
            }
        }
        fresh_only = true;
    }
}

/// Where the head at the start of `buf` ends: after its empty line (a
/// bare LF one too, so that httparse and the line check refuse it at once
/// rather than the wait running out).
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(at) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + at;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// What `respond` needs of the exchange so far.
struct Pending<'p> {
    decision: &'p Decision,
    backend: tokio::net::TcpStream,
    head_len: usize,
    id: &'p RequestId,
    head_request: bool,
    close: bool,
    started: Instant,
}

/// How the exchange ended, for the log.
struct Responded {
    next: Next,
    status: u16,
    bytes: u64,
}

/// Steps 4 and 5: the response head filtered into the client's, then the
/// body relayed.
async fn respond(
    s: &mut Session<'_>,
    request_fields: &[httparse::Header<'_>],
    p: Pending<'_>,
) -> Responded {
    let shared = s.shared;
    let config = &shared.config;
    let target = &p.decision.target;
    let mut slots = [httparse::EMPTY_HEADER; RESPONSE_SLOTS];
    let mut res = httparse::Response::new(&mut slots);
    let parsed = res.parse(&s.back);
    let code = match (parsed, res.code) {
        (Ok(httparse::Status::Complete(_)), Some(code))
            if head::lines_end_in_crlf(&s.back[..p.head_len]) =>
        {
            code
        }
        _ => {
            let e = RouterError::BackendFailed {
                id: target.id.clone(),
                reason: "malformed response head".into(),
            };
            let e = backend_failure(target, e, p.started);
            return Responded {
                next: answer(s, p.id, &Method::GET, "-", e, p.close).await,
                status: 502,
                bytes: 0,
            };
        }
    };
    let fields = &*res.headers;

    // What the backend's head says about its framing and connection.
    let mut length: Option<Option<u64>> = None;
    let mut lengths = 0;
    let mut chunked = None;
    let mut backend_close = res.version != Some(1);
    let mut connection_tokens = false;
    let mut event_stream = false;
    for h in fields.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            length = Some(head::content_length(h.value));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in h.value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    backend_close = true;
                } else if !t.is_empty() && !t.eq_ignore_ascii_case(b"keep-alive") {
                    connection_tokens = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("content-type") {
            event_stream = h.value.starts_with(b"text/event-stream");
        }
    }
    let no_body = p.head_request || code == 204 || code == 304 || (100..200).contains(&code);
    let framing = if no_body {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::UntilClose,
            (None, Some(Some(n))) if lengths == 1 => Framing::Length(n),
            // RFC 9112 §6.3: an invalid length is unrecoverable.
            (None, Some(_)) => {
                let e = backend_failure(
                    target,
                    RouterError::BackendFailed {
                        id: target.id.clone(),
                        reason: "invalid Content-Length in the response".into(),
                    },
                    p.started,
                );
                let next = answer(s, p.id, &Method::GET, "-", e, p.close).await;
                return Responded {
                    next,
                    status: 502,
                    bytes: 0,
                };
            }
            (None, None) => Framing::UntilClose,
        }
    };
    let reusable = !backend_close
        && framing != Framing::UntilClose
        && chunked.is_none_or(|_| length.is_none());
    target.traffic.record(code, p.started.elapsed());

    // The client's head.
    let echoed = match (&p.decision.pin, &config.pins.keys) {
        (Some(token), Some(_)) => proxy::pin_label(token, target, p.decision.active.as_ref()),
        _ => None,
    };
    let label = echoed.as_ref().unwrap_or(&target.label);
    let out = &mut s.out;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(code));
    out.push(b' ');
    let reason = StatusCode::from_u16(code)
        .ok()
        .and_then(|c| c.canonical_reason())
        .or(res.reason.filter(|r| visible(r.as_bytes()).is_some()))
        .unwrap_or("");
    put(out, &[reason.as_bytes(), b"\r\n"]);
    let selected = headers::SELECTED.as_str();
    let mut low = [0u8; 32];
    for h in fields.iter() {
        let dropped = match lower(h.name, &mut low) {
            Some("content-length") => !(framing == Framing::Empty && code != 204),
            Some("transfer-encoding" | "x-request-id") => true,
            Some(n) => headers::is_fixed_hop_by_hop(n) || n == selected,
            None => false,
        };
        if dropped || (connection_tokens && named_by_connection(fields, h.name)) {
            continue;
        }
        put_field(out, h.name.as_bytes(), h.value);
    }
    put_field(out, selected.as_bytes(), target.selected.as_bytes());
    put_field(out, b"server-timing", label.as_bytes());
    put_field(out, b"vary", shared.vary.as_bytes());
    if p.decision.pinned
        && let Some(active) = &p.decision.active
    {
        put_field(out, headers::ACTIVE.as_str().as_bytes(), active.as_bytes());
    }
    cookies(out, config, p.decision, request_fields, fields);
    put_field(out, b"x-request-id", p.id.bytes());
    match framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            put_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked | Framing::UntilClose => {
            put_field(out, b"transfer-encoding", b"chunked");
        }
        Framing::Empty => {}
    }
    if p.close {
        put_field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");

    // Step 5, the body: a small one that is already here goes out with
    // the head in one write.
    let mut at = p.head_len;
    if let Framing::Length(n) = framing
        && (s.back.len() - at) as u64 >= n
    {
        let end = at + n as usize;
        out.extend_from_slice(&s.back[at..end]);
        at = end;
    }
    let limits = &config.limits;
    let status = code;
    if io::write_all(&s.stream, out, limits.idle_timeout)
        .await
        .is_err()
    {
        return Responded {
            next: Next::Close,
            status,
            bytes: 0,
        };
    }
    let framing = match framing {
        Framing::Length(n) if at > p.head_len => Framing::Length(n - (at - p.head_len) as u64),
        f => f,
    };
    let already = (at - p.head_len) as u64;
    let mut retired = event_stream.then(|| shared.sockets.retired(&target.id));
    let relayed = body::relay(
        &p.backend,
        &mut s.back,
        at,
        framing,
        &s.stream,
        &mut s.scratch,
        limits.idle_timeout,
        retired.as_mut(),
    )
    .await;
    match relayed {
        Ok(r) => {
            if reusable && r.clean {
                s.pool.put(&target.authority, p.backend);
            }
            Responded {
                next: if p.close {
                    Next::Close
                } else {
                    Next::KeepAlive
                },
                status,
                bytes: already + r.bytes,
            }
        }
        Err(Broken::Ended) => {
            // The deployment was retired: end the stream as a whole
            // message where the framing allows, then close.
            if matches!(framing, Framing::Chunked | Framing::UntilClose) {
                let _ = io::write_all(&s.stream, b"0\r\n\r\n", limits.idle_timeout).await;
            }
            Responded {
                next: Next::Close,
                status,
                bytes: already,
            }
        }
        Err(Broken::Source(why)) => {
            tracing::debug!(deployment = %target.id, error = %why, "backend response body failed; closing the client connection");
            Responded {
                next: Next::Close,
                status,
                bytes: already,
            }
        }
        Err(Broken::Sink) => Responded {
            next: Next::Close,
            status,
            bytes: already,
        },
    }
}

/// The cookies a response carries: the affinity cookie on an unpinned
/// document load, the page cookie set, cleared or varied on, as the
/// general path's `proxy::forward` does. Never on a response a shared
/// cache may store.
fn cookies(
    out: &mut Vec<u8>,
    config: &crate::RouterConfig,
    d: &Decision,
    request_fields: &[httparse::Header<'_>],
    response_fields: &[httparse::Header<'_>],
) {
    if !d.set_cookie && d.page_cookie == PageCookie::Untouched {
        return;
    }
    let forwarded_proto = Fields::first(request_fields, "x-forwarded-proto")
        .and_then(|v| HeaderValue::from_bytes(v).ok());
    let secure = config.secure_cookies
        || (config.trust_forwarded && proxy::came_over_https(&forwarded_proto));
    let cacheable = headers::publicly_cacheable(response_fields);
    if d.set_cookie
        && !cacheable
        && let Some(cookie) = &d.target.set_cookie
    {
        put_field(out, b"set-cookie", cookie[usize::from(secure)].as_bytes());
    }
    match d.page_cookie {
        PageCookie::Set if !cacheable => {
            if let Some(pin) = d.pin.as_deref() {
                let cookie = format!(
                    "{}={pin}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
                    pick::PAGE_COOKIE,
                    pick::PAGE_COOKIE_MAX_AGE,
                    if secure { "; Secure" } else { "" }
                );
                put_field(out, b"set-cookie", cookie.as_bytes());
            }
        }
        PageCookie::Clear => put_field(out, b"set-cookie", pick::PAGE_COOKIE_CLEAR.as_bytes()),
        PageCookie::Routed => put_field(out, b"vary", b"Cookie"),
        _ => {}
    }
}

/// A router-made answer to a request the engine read whole.
async fn answer(
    s: &mut Session<'_>,
    id: &RequestId,
    method: &Method,
    path: &str,
    e: RouterError,
    close: bool,
) -> Next {
    let id_value = id.value();
    let res = e.into_response(&RequestLabel {
        id: &id_value,
        method,
        path,
    });
    let (parts, body) = res.into_parts();
    let body = match body {
        Either::Right(full) => full
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default(),
        Either::Left(_) => bytes::Bytes::new(),
    };
    let close = close || parts.headers.contains_key(http::header::CONNECTION);
    let out = &mut s.out;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(parts.status.as_u16()));
    put(
        out,
        &[
            b" ",
            parts.status.canonical_reason().unwrap_or("").as_bytes(),
            b"\r\n",
        ],
    );
    for (name, value) in &parts.headers {
        if name != http::header::CONNECTION && name != http::header::CONTENT_LENGTH {
            put_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    put_field(out, b"x-request-id", id.bytes());
    out.extend_from_slice(b"content-length: ");
    put_decimal(out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    if close {
        put_field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if *method != Method::HEAD {
        out.extend_from_slice(&body);
    }
    let limit = s.shared.config.limits.idle_timeout;
    match io::write_all(&s.stream, &s.out, limit).await {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// Refuses a head the engine will not forward, then closes: after a
/// framing error nothing later on the connection can be trusted
/// (RFC 9112 §11.2).
async fn refuse(s: &mut Session<'_>, id: Option<&RequestId>, r: Refusal) -> Next {
    let fresh;
    let id = match id {
        Some(id) => id,
        None => {
            fresh = RequestId::of(None);
            &fresh
        }
    };
    let e = match r.status {
        StatusCode::BAD_REQUEST => RouterError::BadRequest(r.why),
        status => RouterError::Refused { status, why: r.why },
    };
    answer(s, id, &Method::GET, "-", e, true).await;
    Next::Close
}

/// A head that never completed within the size limit: 414 when even its
/// request line did not, else 431.
pub async fn refuse_unparsed(s: &mut Session<'_>, line_done: bool) {
    let status = if line_done {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    } else {
        StatusCode::URI_TOO_LONG
    };
    refuse(s, None, Refusal::with(status, "request head too large")).await;
}

/// A head httparse could not read.
pub async fn refuse_malformed(s: &mut Session<'_>, e: httparse::Error) {
    let r = match e {
        httparse::Error::TooManyHeaders => Refusal::with(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too many header lines",
        ),
        httparse::Error::Version => Refusal::bad("unsupported HTTP version"),
        httparse::Error::HeaderName => Refusal::bad("malformed header name"),
        httparse::Error::HeaderValue => Refusal::bad("malformed header value"),
        httparse::Error::NewLine => Refusal::bad("malformed line ending"),
        _ => Refusal::bad("malformed request line"),
    };
    refuse(s, None, r).await;
}
