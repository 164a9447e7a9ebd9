//! The response: the backend's head filtered into the client's (the
//! router's own fields in, hop-by-hop fields out, re-framed), then the
//! body relayed.

use std::time::Instant;

use http::{HeaderValue, Method, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{
    error::RouterError,
    net::timed,
    request::{
        answer::{RequestId, answer},
        backend::backend_failure,
        fields::{Fields, visible},
        head, headers, pick, proxy,
        route::{Decision, PageCookie},
        session::{Next, Session, Switched},
        upgrade,
        write::{lower, named_by_connection, put, put_decimal, put_field},
    },
    upstream::body::{self, Broken, Framing, Reframe, Source, Stop},
};

/// Response header slots: a backend sending more is answered 502.
const RESPONSE_SLOTS: usize = 100;

/// What `respond` needs of the exchange so far.
pub struct Pending<'p> {
    pub decision: &'p Decision,
    pub backend: tokio::net::TcpStream,
    pub head_len: usize,
    pub id: &'p RequestId,
    pub head_request: bool,
    pub close: bool,
    pub started: Instant,
    /// A WebSocket handshake: both keys.
    pub websocket: Option<upgrade::Handshake<'p>>,
}

/// How the exchange ended, for the log.
pub struct Responded {
    pub next: Next,
    pub status: u16,
    pub bytes: u64,
}

/// Steps 4 and 5: the response head filtered into the client's, then the
/// body relayed.
pub async fn respond(
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
    // A 101 answers only the handshake the router made, and only with the
    // key it sent (`send` refuses any other).
    let switching = code == 101;
    if switching
        && let Err(why) = upgrade::check_backend_switch(
            p.websocket.map_or(&b""[..], |h| h.backend_key.as_bytes()),
            Fields::first(fields, "sec-websocket-accept"),
            Fields::first(request_fields, "sec-websocket-protocol"),
            Fields::first(fields, "sec-websocket-protocol"),
        )
    {
        let e = RouterError::BackendFailed {
            id: target.id.clone(),
            reason: why.into(),
        };
        let e = backend_failure(target, e, p.started);
        return Responded {
            next: answer(s, p.id, &Method::GET, "-", e, p.close).await,
            status: 502,
            bytes: 0,
        };
    }

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
    let echoed = config.pins.echoed(
        p.decision.pin.as_deref(),
        &target.id,
        p.decision.active.as_ref(),
    );
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
            Some("sec-websocket-accept" | "sec-websocket-extensions") => switching,
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
    if switching {
        // RFC 6455 §4.2.2: the client's own handshake, answered.
        let client_key = p.websocket.map_or(&b""[..], |h| h.client_key);
        put_field(out, b"connection", b"upgrade");
        put_field(out, b"upgrade", b"websocket");
        put_field(
            out,
            b"sec-websocket-accept",
            derive_accept_key(client_key).as_bytes(),
        );
    } else if p.close {
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
    if timed::write_all(&s.stream, out, limits.idle_timeout)
        .await
        .is_err()
    {
        return Responded {
            next: Next::Close,
            status,
            bytes: 0,
        };
    }
    if switching {
        return Responded {
            next: Next::Upgraded(Box::new(Switched {
                target: target.clone(),
                backend: p.backend,
                backend_rest: s.back[p.head_len..].to_vec(),
            })),
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
    let mut from = Source {
        stream: &p.backend,
        buf: &mut s.back,
        at,
        limit: limits.idle_timeout,
        stop: retired.as_mut().map_or(Stop::Never, Stop::Retired),
    };
    let relayed = body::relay(
        &mut from,
        &mut Reframe::new(framing),
        &s.stream,
        &mut s.scratch,
        limits.idle_timeout,
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
                let _ = timed::write_all(&s.stream, b"0\r\n\r\n", limits.idle_timeout).await;
            }
            Responded {
                next: Next::Close,
                status,
                bytes: already,
            }
        }
        Err(broken @ (Broken::Source(_) | Broken::TooSlow)) => {
            tracing::debug!(deployment = %target.id, error = ?broken, "backend response body failed; closing the client connection");
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
