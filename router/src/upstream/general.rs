//! Backend HTTP/1 connections, driven on the task of the request that
//! uses them.
//!
//! A pooled client that spawns each backend connection onto its own task
//! hands every request and response across tasks: the client
//! connection's task and the backend connection's task are each woken
//! twice per request. Here the backend connection is polled by whoever is
//! waiting on it: the request future until the response head arrives,
//! then the response body as the client connection writes it out. When
//! the body has been read to its end the connection goes back to a shared
//! idle list, unpolled; a connection the backend closed meanwhile is found
//! out (and dropped) by one non-blocking poll when it is taken again.
//!
//! Backpressure is unchanged: the backend socket is read only when the
//! client side asks for more body.

use std::{
    collections::HashMap,
    future::{Future, poll_fn},
    hash::BuildHasherDefault,
    io,
    pin::{Pin, pin},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Request, Response, uri::Authority};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::{Either, Empty};
use hyper::{
    body::Incoming,
    client::conn::http1::{self, Connection, SendRequest},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{
    error::{RouterError, error_chain},
    fnv::Fnv,
    net::sockets::Socket,
    state::{closing::Retired, table::Target},
    upstream::upload::Upload,
};

/// What the router sends a backend: the client's own body (as it comes, or
/// read ahead), or nothing (a fallthrough retry).
pub type Outbound = Either<Either<Incoming, Upload>, Empty<Bytes>>;

type Conn = Connection<TokioIo<Socket>, Outbound>;

/// One backend connection: the handle requests are sent through and the
/// state machine that does the I/O.
struct Link {
    tx: SendRequest<Outbound>,
    conn: Conn,
}

impl Link {
    /// Whether the connection can take a request now. Polls the
    /// connection once without a waker so it notices a close, or finishes
    /// settling after a response, without waiting for anything.
    fn ready(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        if Pin::new(&mut self.conn).poll(&mut cx).is_ready() {
            return false;
        }
        self.tx.is_ready()
    }
}

struct IdleLink {
    link: Box<Link>,
    since: Instant,
}

/// Idle time after which a reused connection may be closed by the backend
/// just as the request goes out: backends' keep-alive timeouts are a
/// second or more (Node.js 5 s, gunicorn 2 s), so a busy pool, whose
/// connections idle for microseconds, never pays for a copy.
pub const STALE_RISK: Duration = Duration::from_millis(250);

/// How long an unused backend connection is kept (backends commonly close
/// theirs after 60 to 120 s; a connection they closed is found out anyway).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Settings of the backend side.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub connect_timeout: Duration,
    /// How long an unused connection is kept.
    pub idle_timeout: Duration,
    /// Idle connections kept per backend; more are closed.
    pub max_idle_per_backend: usize,
}

/// Keyed with FNV-1a: the keys are backend addresses from the deployment
/// table (the operator's, never a client's), and `Authority` hashes byte by
/// byte, which SipHash made the costliest step of a checkout.
type IdleLists = HashMap<Authority, Vec<IdleLink>, BuildHasherDefault<Fnv>>;

/// Idle backend connections, by backend authority. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    idle: Mutex<IdleLists>,
    settings: Settings,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum Error {
    /// No TCP connection could be made.
    Connect(String),
    /// The connection failed while the request was sent or the head read.
    Http(hyper::Error),
}

impl Error {
    /// The client's answer: 502 naming the deployment and why, or 400 when
    /// the client's own request body was what failed.
    pub fn into_router_error(self, target: &Target) -> RouterError {
        match self {
            Error::Connect(reason) => RouterError::BackendUnreachable {
                id: target.id.clone(),
                reason,
            },
            // The client's own body failed (it closed early, or its
            // chunked framing was bad): its fault, never the backend's.
            Error::Http(e) if e.is_user() && crate::upstream::upload::cut_for_pace(&e) => {
                RouterError::SlowUpload(error_chain(&e))
            }
            Error::Http(e) if e.is_user() => RouterError::ClientBody(error_chain(&e)),
            Error::Http(e) => RouterError::BackendFailed {
                id: target.id.clone(),
                reason: error_chain(&e),
            },
        }
    }
}

impl Upstream {
    pub fn new(settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                idle: Mutex::new(IdleLists::default()),
                settings,
            }),
        }
    }

    /// The idle lists. A panic elsewhere cannot leave them inconsistent
    /// (every change is one push, pop or retain), so a poisoned lock is
    /// used as it is.
    fn idle(&self) -> MutexGuard<'_, IdleLists> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `req` to `backend` and resolves with the response head; the
    /// body streams as it is read.
    ///
    /// A kept-alive connection can be closed by the backend just as it is
    /// reused (a backend's keep-alive timeout, 5 s in Node.js, racing the
    /// next request). So one retry, on a fresh connection: when hyper hands
    /// the request back unsent, or when the connection had been idle long
    /// enough to have been closed and the request can be repeated
    /// (idempotent, no body: RFC 9110 §9.2.2, RFC 9112 §9.3.1). Only then
    /// is a copy of the head kept, so a busy pool copies nothing.
    pub async fn send(
        &self,
        backend: &Authority,
        mut req: Request<Outbound>,
    ) -> Result<Response<Streamed>, Error> {
        // After one failure on a reused connection, only a fresh one.
        let mut fresh_only = false;
        loop {
            let (mut link, reused, replay) = match self.checkout(backend, fresh_only) {
                Some((link, idle_for)) => {
                    let replay = if idle_for >= STALE_RISK {
                        replayable(&req)
                    } else {
                        None
                    };
                    (link, true, replay)
                }
                // Boxed: connecting (resolve, dial, handshake) is the large,
                // rare part of this future.
                None => (Box::pin(self.connect(backend)).await?, false, None),
            };
            let mut open = true;
            let mut sending = pin!(link.tx.try_send_request(req));
            let sent = poll_fn(|cx| {
                // The connection first: it takes the request, writes it and
                // reads the head, so the answer is usually there by the
                // time `sending` is asked.
                if open && Pin::new(&mut link.conn).poll(cx).is_ready() {
                    open = false;
                }
                sending.as_mut().poll(cx)
            })
            .await;
            let mut e = match sent {
                Ok(res) => {
                    let (parts, body) = res.into_parts();
                    let body = Streamed {
                        body,
                        ended: false,
                        retired: None,
                        home: open.then(|| Home {
                            link,
                            backend: backend.clone(),
                            upstream: self.clone(),
                        }),
                    };
                    return Ok(Response::from_parts(parts, body));
                }
                Err(e) => e,
            };
            // A fresh connection that failed is the backend's answer.
            if !reused {
                return Err(Error::Http(e.into_error()));
            }
            let closed = e.error().is_incomplete_message() || e.error().is_canceled();
            req = match (e.take_message(), replay) {
                (Some(unsent), _) => unsent,
                (None, Some(copy)) if closed => copy,
                _ => return Err(Error::Http(e.into_error())),
            };
            fresh_only = true;
        }
    }

    /// An idle connection to `backend` that is still open, and how long it
    /// was idle.
    fn checkout(&self, backend: &Authority, fresh_only: bool) -> Option<(Box<Link>, Duration)> {
        if fresh_only {
            return None;
        }
        let timeout = self.inner.settings.idle_timeout;
        loop {
            let candidate = {
                let mut idle = self.idle();
                let list = idle.get_mut(backend)?;
                let candidate = list.pop()?;
                if candidate.since.elapsed() >= timeout {
                    // The newest is too old, so all are.
                    list.clear();
                    return None;
                }
                candidate
            };
            let mut link = candidate.link;
            if link.ready() {
                return Some((link, candidate.since.elapsed()));
            }
        }
    }

    fn checkin(&self, backend: Authority, mut link: Box<Link>) {
        if !link.ready() {
            return;
        }
        let mut idle = self.idle();
        let list = idle.entry(backend).or_default();
        if list.len() < self.inner.settings.max_idle_per_backend {
            list.push(IdleLink {
                link,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self, backend: &Authority) -> Result<Box<Link>, Error> {
        let stream = connect(backend, self.inner.settings.connect_timeout)
            .await
            .map_err(|e| Error::Connect(e.to_string()))?;
        let (tx, conn) = http1::Builder::new()
            .handshake(TokioIo::new(Socket(stream)))
            .await
            .map_err(Error::Http)?;
        Ok(Box::new(Link { tx, conn }))
    }

    /// Closes connections idle past the idle timeout, and forgets
    /// backends with none left. Run periodically: a deployment that
    /// stopped getting traffic would otherwise keep its sockets.
    pub fn sweep(&self) {
        let timeout = self.inner.settings.idle_timeout;
        let mut idle = self.idle();
        idle.retain(|_, list| {
            list.retain(|l| l.since.elapsed() < timeout);
            !list.is_empty()
        });
    }

    /// Idle connections held, for metrics.
    pub fn idle_count(&self) -> usize {
        let idle = self.idle();
        idle.values().map(Vec::len).sum()
    }
}

/// Sweeps every worker's pool every `period` until `stop`.
pub async fn sweep_every(
    sweep: impl Fn() + Send,
    period: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => sweep(),
            _ = stop.cancelled() => return,
        }
    }
}

/// A copy of a request that may be sent again: an idempotent method and
/// no body.
fn replayable(req: &Request<Outbound>) -> Option<Request<Outbound>> {
    use http::Method;
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    if !idempotent || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(Either::Right(Empty::new()));
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// A TCP connection to a backend: bounded connect, no Nagle delay, TCP
/// keepalive so a vanished peer is noticed on long-lived sockets.
pub async fn connect(backend: &Authority, timeout: Duration) -> io::Result<TcpStream> {
    let addr = (backend.host(), backend.port_u16().unwrap_or(80));
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect timed out after {timeout:?}"),
            )
        })??;
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    Ok(stream)
}

/// A backend's response body, which also drives the connection it comes
/// on and hands that connection back when read to the end.
pub struct Streamed {
    body: Incoming,
    ended: bool,
    home: Option<Home>,
    /// Ends the body early when it resolves (a retired deployment's event
    /// stream); the connection is then closed, never pooled.
    retired: Option<Retired>,
}

struct Home {
    // Boxed: the connection's state is large, and moves between the pool,
    // the request and the body on every request.
    link: Box<Link>,
    backend: Authority,
    upstream: Upstream,
}

impl Streamed {
    /// A body whose connection is someone else's (a refused WebSocket
    /// upgrade's).
    pub fn detached(body: Incoming) -> Self {
        Self {
            body,
            ended: false,
            home: None,
            retired: None,
        }
    }

    /// Ends the body, cleanly and without reading the rest, once `signal`
    /// resolves: for an event stream that must not outlive its deployment.
    pub fn end_when(&mut self, signal: Retired) {
        self.retired = Some(signal);
    }
}

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(retired) = this.retired.as_mut()
            && retired.as_mut().poll(cx).is_ready()
        {
            this.retired = None;
            this.home = None;
            this.ended = true;
            return Poll::Ready(None);
        }
        if let Some(home) = this.home.as_mut()
            && Pin::new(&mut home.link.conn).poll(cx).is_ready()
        {
            // Closed or failed: the body reports how, and nothing goes
            // back to the pool.
            this.home = None;
        }
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => this.ended = true,
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.ended = true,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        // Only a body read to its end leaves the connection between
        // messages; anything else closes it.
        if !(self.ended || self.body.is_end_stream()) {
            return;
        }
        if let Some(home) = self.home.take() {
            home.upstream.checkin(home.backend, home.link);
        }
    }
}
