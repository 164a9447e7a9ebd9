//! The router's own HTTP/1 engine: the hot path, HTTP/1.1 in and out,
//! without hyper's server, client or header maps.
//!
//! A connection's bytes land in one buffer; each request head is parsed
//! in place by `httparse` into field slices on the stack, checked
//! (`head`), routed from those slices (`forward`, through the same
//! `route::decide` the general path uses), and written to the backend
//! straight from them, followed by its body (read ahead up to the request
//! buffer, then streamed, re-framed). The backend's answer is parsed the
//! same way, its head rewritten into the client's and its body relayed by
//! its framing (`body`). Backend sockets are kept per worker between whole
//! messages (`pool`). In the steady state a request allocates nothing.
//!
//! What the engine does not do itself it hands on, with the bytes it has
//! read, to the general path (hyper's server, `proxy::handle`) for the
//! rest of the connection: HTTP/2, HTTP/1.0, upgrades, `Expect`, the
//! router's own endpoints, stale pins, asset fallthrough and targets only
//! a full URI parser should judge. Ambiguous framing never
//! gets that far: the engine refuses it first, for every connection.

use std::{
    future::{poll_fn, ready},
    mem::MaybeUninit,
    pin::pin,
    task::Poll,
};

use tokio::{net::TcpStream, time::Instant};

use super::shelf;
use crate::{
    conn::Conn,
    net::{
        timed::{self, Rewind},
        wakeup,
    },
    request::{
        answer, exchange,
        session::{Next, Session, Switched},
    },
    shared::Shared,
    upstream::pool::Pool,
    ws,
};

/// Header slots kept on the stack; a configured limit above this costs a
/// heap array per request.
const SLOTS: usize = 128;

/// How waiting for the next request ended.
enum Wait {
    Readable,
    TimedOut,
    Shutdown,
}

/// Serves a connection until it closes; `Some` when the rest of it
/// belongs to the general path.
pub async fn serve(stream: TcpStream, shared: &Shared, conn: &Conn, pool: &Pool) -> Option<Rewind> {
    let limits = &shared.config.limits;
    let mut s = Session {
        shared,
        conn,
        stream,
        pool,
        out: Vec::new(),
        back: Vec::new(),
        scratch: Vec::new(),
        upload: Vec::new(),
        carried: None,
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut cancelled = pin!(shared.shutdown.cancelled());
    let mut registered = false;
    // The first head is due a fixed time after accept, however it
    // trickles in; later ones from their first byte.
    let mut head_due = Instant::now() + limits.header_read_timeout;
    let mut served = false;
    loop {
        if buf.is_empty() {
            // Idle until the next request: the buffers go back to the
            // worker's shelf, and come back with the next bytes.
            shelf::give(&mut buf);
            shelf::give(&mut s.out);
            shelf::give(&mut s.back);
            if shared.shutdown.is_cancelled() {
                return None;
            }
            let waited = poll_fn(|cx| {
                if !registered {
                    registered = true;
                    wakeup::register(cancelled.as_mut(), cx);
                }
                if shared.shutdown.is_cancelled() {
                    return Poll::Ready(Wait::Shutdown);
                }
                match s.stream.poll_read_ready(cx) {
                    Poll::Ready(_) => Poll::Ready(Wait::Readable),
                    Poll::Pending => Poll::Pending,
                }
            });
            // Before the first request the head's deadline runs; between
            // requests, the idle timeout.
            let limit = if served {
                limits.idle_timeout
            } else {
                head_due.saturating_duration_since(Instant::now())
            };
            match tokio::time::timeout(limit, waited)
                .await
                .unwrap_or(Wait::TimedOut)
            {
                Wait::Readable => {}
                Wait::TimedOut | Wait::Shutdown => return None,
            }
            buf = shelf::take();
            match timed::read(&s.stream, &mut buf, shelf::SIZE, limits.header_read_timeout).await {
                Ok(0) | Err(_) => {
                    // The client closed between requests, as keep-alive
                    // clients do: the buffer serves another connection.
                    shelf::give(&mut buf);
                    return None;
                }
                Ok(_) => {}
            }
            s.out = shelf::take();
            s.back = shelf::take();
            if served {
                head_due = Instant::now() + limits.header_read_timeout;
            }
        }
        if buf.starts_with(b"PRI ") || (buf.len() < 4 && b"PRI ".starts_with(&buf)) {
            // The HTTP/2 preface (RFC 9113 §3.4): hyper's server takes
            // the connection, sniffing it itself.
            if buf.len() < 4 {
                let left = head_due.saturating_duration_since(Instant::now());
                match timed::read(&s.stream, &mut buf, 4096, left).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => continue,
                }
            }
            return Some(Rewind::new(buf, s.stream));
        }
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; SLOTS];
        let mut heap;
        let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_header_lines <= SLOTS {
            &mut stack[..limits.max_header_lines]
        } else {
            heap = Vec::with_capacity(limits.max_header_lines);
            heap.resize_with(limits.max_header_lines, MaybeUninit::uninit);
            &mut heap
        };
        let mut req = httparse::Request::new(&mut []);
        let parsed = req.parse_with_uninit_headers(&buf, slots);
        let next = match parsed {
            Ok(httparse::Status::Complete(len)) => {
                let next = exchange::exchange(&mut s, &req, &buf[..len], &buf[len..]).await;
                if let Next::Upgraded(_) = next {
                    buf.drain(..len);
                }
                if let Next::KeepAlive = next {
                    match s.carried.take() {
                        Some(at) => {
                            buf.clear();
                            buf.extend_from_slice(&s.upload[at..]);
                        }
                        None => drop(buf.drain(..len)),
                    }
                    s.trim();
                }
                next
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > limits.max_header_bytes + 16 * 1024 {
                    let line_done = buf.windows(2).any(|w| w == b"\r\n");
                    answer::refuse_unparsed(&mut s, line_done).await;
                    return None;
                }
                let left = head_due.saturating_duration_since(Instant::now());
                match timed::read(&s.stream, &mut buf, 4096, left).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => continue,
                }
            }
            Err(e) => {
                answer::refuse_malformed(&mut s, e).await;
                return None;
            }
        };
        match next {
            Next::KeepAlive => {
                served = true;
                head_due = Instant::now() + limits.header_read_timeout;
            }
            Next::Close => return None,
            Next::Handoff => return Some(Rewind::new(buf, s.stream)),
            Next::Upgraded(switched) => {
                // The client waits for the 101 before it sends frames
                // (RFC 6455 §4.1), but whatever came after the handshake
                // is passed on, as is what the backend sent after its 101.
                let Switched {
                    target,
                    backend,
                    backend_rest,
                } = *switched;
                let client = Rewind::new(buf, s.stream);
                let backend = Rewind::new(backend_rest, backend);
                ws::spawn_relay(shared, conn, &target, ready(Ok(client)), backend);
                return None;
            }
        }
    }
}
