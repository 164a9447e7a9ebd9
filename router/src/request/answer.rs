//! The router's own answers on the engine: errors from routing or the
//! backend, and refusals of heads it will not forward.

use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Either};

use crate::{
    error::RouterError,
    net::timed,
    request::{
        head::Refusal,
        headers,
        respond::RequestLabel,
        session::{Next, Session},
        write::{put, put_decimal, put_field},
    },
};

/// The request id on the stack: the client's when sane, else a new one.
pub struct RequestId {
    buf: [u8; 128],
    len: usize,
}

impl RequestId {
    pub fn of(client: Option<&[u8]>) -> Self {
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

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn value(&self) -> HeaderValue {
        HeaderValue::from_bytes(self.bytes()).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// A router-made answer to a request the engine read whole.
pub async fn answer(
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
    match timed::write_all(&s.stream, &s.out, limit).await {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// Refuses a head the engine will not forward, then closes: after a
/// framing error nothing later on the connection can be trusted
/// (RFC 9112 §11.2).
pub async fn refuse(s: &mut Session<'_>, id: Option<&RequestId>, r: Refusal) -> Next {
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
