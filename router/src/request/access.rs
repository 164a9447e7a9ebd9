//! The opt-in access log: one JSON line per request on stdout, written when
//! the response body has been sent (or dropped), so `bytes` and
//! `duration_ms` cover the whole exchange. Off, it costs one branch per
//! body frame.

use std::{
    io::Write,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderValue, Method};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::request::respond::Body;

/// What the line says about one request.
pub struct Entry {
    pub request_id: HeaderValue,
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub deployment: Option<HeaderValue>,
    pub started: Instant,
    pub bytes: u64,
}

impl Entry {
    pub(crate) fn write(&self) {
        let line = serde_json::json!({
            "kind": "access",
            "request_id": self.request_id.to_str().unwrap_or(""),
            "method": self.method.as_str(),
            "path": self.path,
            "status": self.status,
            "deployment": self.deployment.as_ref().and_then(|d| d.to_str().ok()),
            "duration_ms": self.started.elapsed().as_secs_f64() * 1000.0,
            "bytes": self.bytes,
        });
        let mut out = std::io::stdout().lock();
        // One write per line, so lines from concurrent requests never mix.
        let _ = out.write_all(format!("{line}\n").as_bytes());
    }
}

/// A response body that, when an entry is attached, counts what it sends
/// and writes the entry when it is done.
pub struct Logged {
    inner: Body,
    entry: Option<Box<Entry>>,
}

impl Logged {
    pub fn new(inner: Body, entry: Option<Box<Entry>>) -> Self {
        Self { inner, entry }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            e.write();
        }
    }
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Some(entry), Poll::Ready(Some(Ok(frame)))) = (this.entry.as_mut(), &res)
            && let Some(data) = frame.data_ref()
        {
            entry.bytes += data.len() as u64;
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
