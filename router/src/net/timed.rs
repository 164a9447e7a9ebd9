//! Socket reads and writes with a time limit, tried without waiting
//! first: most reads and writes on a busy connection complete at once, and
//! those never touch a timer. A wait arms one only when it has to.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

use crate::net::sockets::Socket;

fn timed_out(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no progress for {limit:?}"),
    )
}

/// Reads what is available into `buf`'s spare room (growing it by up to
/// `room` bytes), waiting up to `limit` for something. `Ok(0)` is the end
/// of the stream.
///
/// A read that did not fill the room took all the socket had, so the
/// socket is marked not readable: the next read waits for the reactor's
/// word instead of spending a system call to learn `EAGAIN` (one per
/// request on each side, otherwise). The reactor's edge-triggered events
/// announce any byte that arrives later, and a peer's close stays marked
/// (tokio never clears a closed state), so nothing is missed.
pub async fn read(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    room: usize,
    limit: Duration,
) -> io::Result<usize> {
    buf.reserve(room);
    loop {
        let spare = buf.capacity() - buf.len();
        match stream.try_read_buf(buf) {
            Ok(n) if n > 0 && n < spare => {
                drained(stream);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => return other,
        }
        match tokio::time::timeout(limit, stream.readable()).await {
            Ok(ready) => ready?,
            Err(_) => return Err(timed_out(limit)),
        }
    }
}

/// Marks `stream` not readable until the reactor says otherwise, without
/// a system call: tokio clears the readiness it has cached when the
/// operation given to `try_io` would block.
fn drained(stream: &TcpStream) {
    let _ = stream.try_io(tokio::io::Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
}

/// Writes all of `data`, waiting up to `limit` each time the socket is
/// full: the peer's pace is the relay's pace (backpressure).
pub async fn write_all(stream: &TcpStream, mut data: &[u8], limit: Duration) -> io::Result<()> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match tokio::time::timeout(limit, stream.writable()).await {
                    Ok(ready) => ready?,
                    Err(_) => return Err(timed_out(limit)),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A connection handed to the general path: the bytes the engine already
/// read come first, then the socket.
pub struct Rewind {
    prefix: Vec<u8>,
    at: usize,
    inner: Socket,
}

impl Rewind {
    pub fn new(prefix: Vec<u8>, stream: TcpStream) -> Self {
        Self {
            // A connection's read buffer keeps its room after the last
            // request is taken out of it; a long-lived socket (a
            // WebSocket) must not hold that room for its whole life.
            prefix: if prefix.is_empty() {
                Vec::new()
            } else {
                prefix
            },
            at: 0,
            inner: Socket(stream),
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.at);
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
