//! Accepting connections: the connection limit, per-connection timeouts,
//! and the graceful drain on shutdown.
//!
//! A connection counts against the limit (and in
//! `switchyard_connections_open`) for its whole life: the slot travels with
//! an upgraded connection into its WebSocket relay.

use std::{
    future::Future,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll},
    time::Duration,
};

use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tokio_util::task::TaskTracker;

use crate::{
    conn::{Conn, Slot},
    net::{timed::Rewind, wakeup},
    request::proxy,
    shared::Shared,
    upstream::general::Upstream,
};

/// One worker's accept loop: serves until `shared.shutdown` is
/// cancelled, then waits up to the shutdown deadline for its in-flight
/// requests. Returns whether every connection finished in time.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    upstream: Upstream,
    pool: crate::upstream::pool::Pool,
) -> bool {
    let limits = &shared.config.limits;
    let permits = shared.connection_permits.clone();
    let conns = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut h1 = builder.http1();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Headroom over the head limit: the router checks the limit itself
        // (so its 431 carries a request id); hyper's cut-off only bounds
        // memory.
        .max_buf_size(limits.max_header_bytes + 16 * 1024);
    if limits.max_header_lines != crate::config::settings::HEADER_SLOTS {
        h1.max_headers(limits.max_header_lines);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);

    let mut reserve = crate::connection::reserve::Reserve::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shared.shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors: shed the waiting connection; any
                // other failure is logged. Either way back off briefly
                // instead of spinning.
                if !reserve.shed(&listener, &e, "public") {
                    tracing::warn!(error = %e, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shared.health.connections_rejected.fetch_add(1, Relaxed);
            tracing::warn!(%peer, limit = limits.max_connections, "connection limit reached; answering 503");
            conns.spawn(reject_overloaded(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let builder = builder.clone();
        let upstream = upstream.clone();
        let pool = pool.clone();
        conns.spawn(async move {
            let conn_info = Arc::new(Conn {
                peer,
                peer_ip: http::HeaderValue::try_from(peer.ip().to_string())
                    .unwrap_or_else(|_| http::HeaderValue::from_static("unknown")),
                upstream,
                seen_request: AtomicBool::new(false),
                slot: Arc::new(Slot::new(permit, shared.clone())),
            });
            // The engine serves HTTP/1.1 itself; what it hands on, hyper
            // serves from the bytes it had read.
            let Some(rewind) =
                crate::connection::http1::serve(stream, &shared, &conn_info, &pool).await
            else {
                return;
            };
            // hyper's connection state is twice the engine's: boxed, it is
            // paid for by the connections handed on, not by every
            // connection's task (an idle keep-alive connection's memory).
            Box::pin(general(rewind, &builder, &shared, &conn_info)).await;
        });
    }
    drop(listener);
    conns.close();
    let deadline = shared.config.limits.shutdown_timeout;
    let open = conns.len();
    if open > 0 {
        tracing::info!(open, ?deadline, "draining in-flight connections");
    }
    tokio::time::timeout(deadline, conns.wait()).await.is_ok()
}

/// Serves the rest of a connection the engine handed on with hyper's
/// server (HTTP/2, and what the engine leaves to the general path).
async fn general(
    rewind: Rewind,
    builder: &auto::Builder<TokioExecutor>,
    shared: &Arc<Shared>,
    conn_info: &Arc<Conn>,
) {
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(IdleIo {
        inner: rewind,
        activity: activity.clone(),
    });
    let svc_shared = shared.clone();
    let svc_conn = conn_info.clone();
    let svc = service_fn(move |req| proxy::handle(svc_shared.clone(), svc_conn.clone(), req));
    let conn = pin!(builder.serve_connection_with_upgrades(io, svc));
    drive(
        conn,
        |c| c.graceful_shutdown(),
        shared,
        conn_info,
        &activity,
    )
    .await;
}

/// Runs one connection to its end (`drain` asks it to finish what is in
/// flight and take no more): hyper's state machine, plus three
/// things that end it early: shutdown (drain gracefully), no complete
/// first request head in time, and no I/O for the idle timeout.
///
/// hyper's own header timer starts only once it knows the protocol, and
/// the HTTP/2 preface sniff has no timer at all: a connection that sends
/// nothing, or half a preface, would hold its slot until the idle timeout.
/// So the first head's deadline runs from accept, whatever the protocol
/// turns out to be.
///
/// The three watchers are registered once and then read (see `wakeup`).
async fn drive<C, E>(
    mut conn: Pin<&mut C>,
    drain: impl Fn(Pin<&mut C>),
    shared: &Shared,
    info: &Conn,
    activity: &AtomicU64,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let limits = &shared.config.limits;
    let peer = info.peer;
    let mut cancelled = pin!(shared.shutdown.cancelled());
    let mut head_timer = pin!(tokio::time::sleep(limits.header_read_timeout));
    let mut idle_timer = pin!(tokio::time::sleep(limits.idle_timeout));
    let mut last_seen = activity.load(Relaxed);
    let mut registered = false;
    let mut head_due = true;
    let mut draining = false;
    std::future::poll_fn(|cx| {
        if !registered {
            registered = true;
            wakeup::register(cancelled.as_mut(), cx);
            wakeup::register(head_timer.as_mut(), cx);
            wakeup::register(idle_timer.as_mut(), cx);
        }
        if !draining && shared.shutdown.is_cancelled() {
            draining = true;
            drain(conn.as_mut());
        }
        if let Poll::Ready(res) = conn.as_mut().poll(cx) {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return Poll::Ready(());
        }
        if head_due && head_timer.is_elapsed() {
            head_due = false;
            if !info.seen_request.load(Relaxed) {
                tracing::debug!(%peer, timeout = ?limits.header_read_timeout, "closing connection that sent no complete request head in time");
                return Poll::Ready(());
            }
        }
        if idle_timer.is_elapsed() {
            let now_seen = activity.load(Relaxed);
            if now_seen == last_seen {
                tracing::info!(%peer, timeout = ?limits.idle_timeout, "closing connection idle mid-transfer");
                return Poll::Ready(());
            }
            last_seen = now_seen;
            idle_timer.as_mut().reset(Instant::now() + limits.idle_timeout);
            wakeup::register(idle_timer.as_mut(), cx);
        }
        Poll::Pending
    })
    .await;
}

/// Over the connection limit: a short 503 the client can read, then close.
async fn reject_overloaded(mut stream: TcpStream) {
    let body = r#"{"detail":"router at its connection limit"}"#;
    let id = crate::request::headers::new_request_id();
    let msg = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nx-switchyard: router\r\nx-request-id: {}\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        id.to_str().unwrap_or("-"),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(msg.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Counts I/O progress so the idle check can tell a stalled connection from
/// a busy one. One relaxed increment per read or write.
struct IdleIo {
    inner: Rewind,
    activity: Arc<AtomicU64>,
}

impl AsyncRead for IdleIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.fetch_add(1, Relaxed);
        }
        res
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.fetch_add(1, Relaxed);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.fetch_add(1, Relaxed);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
