//! The upstream request: the backend's head written from the client's
//! field slices, the start of a body read ahead, the request sent on a
//! pooled or new connection with the rest of its body, and the answer's
//! head read back.

use std::time::Instant;

use http::Method;

use crate::{
    error::RouterError,
    net::timed,
    request::{
        answer::RequestId,
        fields::Fields,
        head::{self, BodyKind},
        headers,
        session::Session,
        upgrade,
        write::{lower, named_by_connection, put, put_field},
    },
    state::table::Target,
    upstream::{
        body::{self, Broken, Framing, Reframe, Source, Stop},
        upload::Pace,
    },
};

/// The largest backend response head.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The backend's request, written from the client's field slices: the
/// same rules as `headers::strip_hop_by_hop` and `add_forwarded` on the
/// general path (RFC 9110 §7.6).
pub fn write_request(
    s: &mut Session<'_>,
    req: &httparse::Request<'_, '_>,
    facts: &head::Facts<'_>,
    target: &Target,
    host: &[u8],
    id: &RequestId,
    websocket_key: Option<&str>,
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
            // Met by the router, which reads the body before asking.
            Some("expect") => true,
            // The client's own handshake: the router makes its own with
            // the backend (no extensions: the relay reads every frame).
            Some(n) if websocket_key.is_some() && upgrade::is_client_handshake(n) => true,
            Some(n) => headers::is_fixed_hop_by_hop(n) || (!trust && headers::is_forwarding(n)),
            None => false,
        };
        if dropped {
            continue;
        }
        // The pin header's underscore spelling (read as the same header
        // by CGI-style backends) never reaches the backend, and a
        // `Connection` token never strips the pin or the request id.
        // (Lowercased only for a name that could be it: rare.)
        if h.name.len() == pin_header.len()
            && h.name.contains('_')
            && headers::same_but_underscores(&h.name.to_ascii_lowercase(), pin_header)
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
    if facts.body == BodyKind::Chunked {
        put_field(out, b"transfer-encoding", b"chunked");
    }
    if let Some(key) = websocket_key {
        for (name, value) in upgrade::BACKEND_HANDSHAKE {
            put_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        put_field(out, b"sec-websocket-key", key.as_bytes());
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

/// A client's request body on the engine. Its bytes past the head are in
/// `s.upload[at..]`; what was read ahead is already in `s.out`, after the
/// head, re-framed.
pub struct Outgoing {
    body: Reframe,
    pace: Option<Pace>,
    /// Where the unread part of `s.upload` starts; once the body is done,
    /// the next request's first bytes.
    pub at: usize,
}

impl Outgoing {
    pub fn done(&self) -> bool {
        self.body.done()
    }
}

/// The failure of a client's upload: it broke (400) or came too slowly
/// (408, RFC 9110 §15.5.9).
fn client_fault(broken: Broken, pace: Option<&Pace>) -> RouterError {
    match (broken, pace) {
        (Broken::TooSlow, Some(pace)) => pace.too_slow(),
        (Broken::Source(why), _) => RouterError::ClientBody(why),
        (other, _) => RouterError::ClientBody(format!("{other:?}")),
    }
}

/// Before a backend connection is taken, reads the body (`rest` is what
/// came with the head) up to the request buffer, at no less than the
/// minimum upload rate: a client trickling a small upload then holds only
/// its own connection, never a backend's.
pub async fn read_ahead(
    s: &mut Session<'_>,
    kind: BodyKind,
    rest: &[u8],
    expects_continue: bool,
) -> Result<Outgoing, RouterError> {
    let shared = s.shared;
    let limits = &shared.config.limits;
    let mut body = Reframe::new(match kind {
        BodyKind::None => Framing::Empty,
        BodyKind::Length(n) => Framing::Length(n),
        BodyKind::Chunked => Framing::Chunked,
    });
    // A client that waits for leave to send its body gets it now: the
    // router reads the body itself before any backend is asked (RFC 9110
    // §10.1.1), so the expectation is met here and not forwarded.
    if expects_continue && rest.is_empty() {
        timed::write_all(
            &s.stream,
            b"HTTP/1.1 100 Continue\r\n\r\n",
            limits.idle_timeout,
        )
        .await
        .map_err(|e| RouterError::ClientBody(e.to_string()))?;
    }
    let mut pace = Pace::starting_now(limits);
    s.upload.clear();
    s.upload.extend_from_slice(rest);
    let mut from = Source {
        stream: &s.stream,
        buf: &mut s.upload,
        at: 0,
        limit: limits.idle_timeout,
        stop: pace.as_mut().map_or(Stop::Never, Stop::Pace),
    };
    let read = body::read_ahead(&mut from, &mut body, &mut s.out, limits.request_buffer).await;
    let at = from.at;
    read.map_err(|b| client_fault(b, pace.as_ref()))?;
    Ok(Outgoing { body, pace, at })
}

/// Sends the rest of an upload after what was read ahead. A backend that
/// stops reading may have answered already (a 413, say): that answer is
/// still read, and the caller closes the client connection after it.
async fn send_rest(
    s: &mut Session<'_>,
    up: &mut Outgoing,
    backend: &tokio::net::TcpStream,
) -> Result<(), RouterError> {
    let shared = s.shared;
    let limits = &shared.config.limits;
    let mut from = Source {
        stream: &s.stream,
        buf: &mut s.upload,
        at: up.at,
        limit: limits.idle_timeout,
        stop: up.pace.as_mut().map_or(Stop::Never, Stop::Pace),
    };
    let relayed = body::relay(
        &mut from,
        &mut up.body,
        backend,
        &mut s.scratch,
        limits.backend_timeout,
    )
    .await;
    up.at = from.at;
    match relayed {
        Ok(_) | Err(Broken::Sink) => Ok(()),
        Err(b) => Err(client_fault(b, up.pace.as_ref())),
    }
}

/// Sends the request head in `s.out` (with any body read ahead, then the
/// rest of it) and reads the response head into `s.back`; the backend
/// socket and the head's length.
///
/// A kept-alive connection can be closed by the backend just as it is
/// reused; a request that got no byte of answer on one is sent again once
/// on a new connection when repeating it is safe: idempotent, and its
/// body (if any) all in hand (RFC 9110 §9.2.2, RFC 9112 §9.3.1).
pub async fn send(
    s: &mut Session<'_>,
    target: &Target,
    method: &Method,
    mut upload: Option<&mut Outgoing>,
    upgrade: bool,
) -> Result<(tokio::net::TcpStream, usize), RouterError> {
    let failed = |reason: String| RouterError::BackendFailed {
        id: target.id.clone(),
        reason,
    };
    let shared = s.shared;
    let limits = &shared.config.limits;
    let mut fresh_only = false;
    loop {
        let (backend, reused) = match (!fresh_only)
            .then(|| s.pool.take(&target.authority))
            .flatten()
        {
            Some((b, _)) => (b, true),
            None => {
                let b = crate::upstream::general::connect(
                    &target.authority,
                    limits.backend_connect_timeout,
                )
                .await
                .map_err(|e| RouterError::BackendUnreachable {
                    id: target.id.clone(),
                    reason: e.to_string(),
                })?;
                (b, false)
            }
        };
        let whole = upload.as_deref().is_none_or(Outgoing::done);
        let retry = reused && whole && method.is_idempotent();
        if let Err(e) = timed::write_all(&backend, &s.out, limits.backend_timeout).await {
            if reused && whole {
                fresh_only = true;
                continue;
            }
            return Err(failed(e.to_string()));
        }
        if let Some(up) = upload.as_deref_mut().filter(|u| !u.done()) {
            send_rest(s, up, &backend).await?;
        }
        let deadline = Instant::now() + limits.backend_timeout;
        s.back.clear();
        loop {
            if let Some(end) = head_end(&s.back) {
                // Interim answers (RFC 9110 §15.2): the engine sends no
                // `Expect`, so a 1xx is dropped and the final answer read
                // after it; a 101 answers an upgrade, and only that.
                match s.back.get(9..12) {
                    Some(b"101") if upgrade => return Ok((backend, end)),
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
            match timed::read(&backend, &mut s.back, 4096, left).await {
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
