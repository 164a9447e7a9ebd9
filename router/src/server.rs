//! Accepting connections: the connection limit, per-connection timeouts,
//! and the graceful drain on shutdown.

use std::{
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
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
    sync::Semaphore,
    time::Instant,
};
use tokio_util::task::TaskTracker;

use crate::{Shared, proxy};

/// Serves until `shared.shutdown` is cancelled, then waits up to the
/// shutdown deadline for in-flight requests. Returns whether every
/// connection finished in time.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) -> bool {
    let limits = &shared.config.limits;
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let conns = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);

    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shared.shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // instead of spinning.
                tracing::warn!(error = %e, "accept failed");
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
        conns.spawn(async move {
            let _permit = permit;
            shared.health.connections_open.fetch_add(1, Relaxed);
            let activity = Arc::new(AtomicU64::new(0));
            let io = TokioIo::new(IdleIo { inner: stream, activity: activity.clone() });
            let svc_shared = shared.clone();
            let svc = service_fn(move |req| proxy::handle(svc_shared.clone(), peer, req));
            let mut conn = pin!(builder.serve_connection_with_upgrades(io, svc));
            let idle_timeout = shared.config.limits.idle_timeout;
            let mut draining = false;
            loop {
                tokio::select! {
                    res = conn.as_mut() => {
                        if let Err(e) = res {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = shared.shutdown.cancelled(), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ = idle(&activity, idle_timeout) => {
                        tracing::info!(%peer, timeout = ?idle_timeout, "closing connection idle mid-transfer");
                        break;
                    }
                }
            }
            shared.health.connections_open.fetch_sub(1, Relaxed);
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

/// Over the connection limit: a short 503 the client can read, then close.
async fn reject_overloaded(mut stream: TcpStream) {
    let body = r#"{"detail":"router at its connection limit"}"#;
    let msg = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nx-switchyard: router\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(msg.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Resolves once nothing has been read or written for `timeout`. Between
/// requests hyper's header read timeout already applies; this catches
/// transfers that stall mid-body.
async fn idle(activity: &AtomicU64, timeout: Duration) {
    let epoch = Instant::now();
    let mut last_seen = activity.load(Relaxed);
    let mut since = epoch;
    loop {
        tokio::time::sleep_until(since + timeout).await;
        let now_seen = activity.load(Relaxed);
        if now_seen == last_seen {
            return;
        }
        last_seen = now_seen;
        since = Instant::now();
    }
}

/// Counts I/O progress so the idle check can tell a stalled connection from
/// a busy one. One relaxed increment per read or write.
struct IdleIo {
    inner: TcpStream,
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
