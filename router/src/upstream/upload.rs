//! A client's request body on its way to a backend.
//!
//! Up to `--request-buffer` bytes are read before a backend connection is
//! taken, so a client trickling a small upload holds only its own
//! connection, never a backend's (a threaded backend has few). A larger
//! body then streams as it arrives, with backpressure. From the first byte
//! on, an upload that after `--upload-grace` has averaged less than
//! `--min-upload-rate` is cut with 408 (RFC 9110 §15.5.9) instead of
//! holding a backend connection for as long as it likes.
//!
//! A request without a body passes through untouched, as hyper's own body
//! type: no buffer, no timer, no wrapper.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::{
    config::Limits,
    error::{RouterError, error_chain},
};

/// How fast an upload must arrive (both paths hold uploads to it).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    started: Instant,
    received: u64,
    /// Bytes per second, averaged from the first byte of the body on.
    min_rate: u64,
    grace: Duration,
}

impl Pace {
    /// The pace an upload starting now is held to, when one is set.
    pub fn starting_now(limits: &Limits) -> Option<Self> {
        limits.min_upload_rate.map(|min_rate| Self {
            started: Instant::now(),
            received: 0,
            min_rate,
            grace: limits.upload_grace,
        })
    }

    pub fn received(&mut self, n: u64) {
        self.received += n;
    }

    /// The answer for an upload that fell behind.
    pub fn too_slow(&self) -> RouterError {
        too_slow(self.min_rate)
    }

    /// When the upload falls below the minimum rate if nothing more
    /// arrives: never before the grace is over.
    pub fn deadline(&self) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        self.started + self.grace.max(earned)
    }
}

/// The body error for an upload cut for its pace; found again in the
/// client's error chain to answer 408 rather than 400.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than the minimum upload rate of {min_rate} bytes/s")]
pub struct TooSlow {
    min_rate: u64,
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client's body that was read ahead (a bodiless request is sent on as
/// hyper's own `Incoming`, with nothing around it).
pub struct Upload {
    /// The rest of the client's body, still to come.
    rest: Option<Incoming>,
    /// What was read ahead, and the pace the rest is held to; boxed, so
    /// the request that carries it stays small.
    ahead: Option<Box<Ahead>>,
}

struct Ahead {
    /// What was read before the backend connection was taken.
    read: VecDeque<Frame<Bytes>>,
    /// Enforces the minimum rate on the rest.
    pace: Option<(Pace, Pin<Box<Sleep>>)>,
}

impl Upload {
    /// Whether [`Upload::read_ahead`] has anything to do for `body`: only a
    /// body, and only when buffering or a minimum rate is on.
    pub fn reads_ahead(body: &Incoming, limits: &Limits) -> bool {
        !body.is_end_stream() && (limits.request_buffer > 0 || limits.min_upload_rate.is_some())
    }

    /// Reads up to the request buffer of `body` before the caller takes a
    /// backend connection. Fails with the client's fault: its body broke
    /// (400) or came too slowly (408).
    pub async fn read_ahead(mut body: Incoming, limits: &Limits) -> Result<Self, RouterError> {
        let mut pace = Pace::starting_now(limits);
        let mut read = VecDeque::new();
        let mut read_bytes = 0u64;
        let whole = |read| Self {
            rest: None,
            ahead: Some(Box::new(Ahead { read, pace: None })),
        };
        while read_bytes < limits.request_buffer as u64 {
            let next = body.frame();
            let frame = match pace {
                Some(p) => match tokio::time::timeout_at(p.deadline(), next).await {
                    Ok(frame) => frame,
                    Err(_) => return Err(too_slow(p.min_rate)),
                },
                None => next.await,
            };
            match frame {
                None => return Ok(whole(read)),
                Some(Err(e)) => return Err(RouterError::ClientBody(error_chain(&e))),
                Some(Ok(frame)) => {
                    let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                    read_bytes += n;
                    if let Some(p) = pace.as_mut() {
                        p.received += n;
                    }
                    let trailers = frame.is_trailers();
                    read.push_back(frame);
                    if trailers || body.is_end_stream() {
                        return Ok(whole(read));
                    }
                }
            }
        }
        Ok(Self {
            rest: Some(body),
            ahead: Some(Box::new(Ahead {
                read,
                pace: pace.map(|p| (p, Box::pin(tokio::time::sleep_until(p.deadline())))),
            })),
        })
    }
}

fn too_slow(min_rate: u64) -> RouterError {
    RouterError::SlowUpload(TooSlow { min_rate }.to_string())
}

/// Whether a failed exchange failed because the upload was cut for its
/// pace (somewhere in the error's source chain).
pub fn cut_for_pace(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<TooSlow>() {
            return true;
        }
        next = e.source();
    }
    false
}

impl Body for Upload {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(frame) = this.ahead.as_mut().and_then(|a| a.read.pop_front()) {
            return Poll::Ready(Some(Ok(frame)));
        }
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let pace = this.ahead.as_mut().and_then(|a| a.pace.as_mut());
        match Pin::new(rest).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some((pace, timer)), Some(data)) = (pace, frame.data_ref()) {
                    pace.received += data.len() as u64;
                    timer.as_mut().reset(pace.deadline());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.rest = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.rest = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let Some((pace, timer)) = pace else {
                    return Poll::Pending;
                };
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let min_rate = pace.min_rate;
                this.rest = None;
                Poll::Ready(Some(Err(Box::new(TooSlow { min_rate }))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.as_ref().is_none_or(|a| a.read.is_empty())
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    /// Exact when the client's was (a Content-Length), so the backend gets
    /// the same framing.
    fn size_hint(&self) -> SizeHint {
        let queued: u64 = self.ahead.as_ref().map_or(0, |a| {
            a.read
                .iter()
                .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
                .sum()
        });
        match &self.rest {
            None => SizeHint::with_exact(queued),
            Some(rest) => {
                let hint = rest.size_hint();
                let mut sum = SizeHint::new();
                sum.set_lower(hint.lower() + queued);
                if let Some(upper) = hint.upper() {
                    sum.set_upper(upper + queued);
                }
                sum
            }
        }
    }
}
