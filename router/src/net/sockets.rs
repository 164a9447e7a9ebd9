//! How the router writes to its TCP sockets, client and backend alike.
//!
//! hyper hands a message over as a list of buffers (a head, then body
//! chunks) and tokio writes a list with `writev(2)`. For the small
//! messages most traffic is, importing an iovec array costs the kernel
//! more than copying a few hundred bytes costs here (about 0.4 µs per
//! write on this project's benchmark machine), so a list that fits in
//! `SMALL` goes out as one `send(2)` of a stack copy, and a single buffer
//! is never written vectored. Larger messages keep `writev`: copying them
//! would cost more than it saves.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// Messages up to this size are copied into one buffer and sent whole.
const SMALL: usize = 2048;

/// Writes `bufs` to `stream`: one `send(2)` when they are small, else
/// `writev(2)`.
fn poll_write_gathered(
    stream: Pin<&mut TcpStream>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    match bufs {
        [] => Poll::Ready(Ok(0)),
        [one] => stream.poll_write(cx, one),
        _ if bufs.iter().map(|b| b.len()).sum::<usize>() <= SMALL => {
            let mut flat = [0u8; SMALL];
            let mut len = 0;
            for b in bufs {
                flat[len..len + b.len()].copy_from_slice(b);
                len += b.len();
            }
            stream.poll_write(cx, &flat[..len])
        }
        _ => stream.poll_write_vectored(cx, bufs),
    }
}

/// A client or backend connection's socket, written as
/// `poll_write_gathered` says.
pub struct Socket(pub TcpStream);

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_gathered(Pin::new(&mut self.get_mut().0), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    use super::{SMALL, Socket};

    /// Small lists, large lists and single buffers all arrive whole and
    /// in order.
    #[tokio::test]
    async fn every_shape_of_write_arrives_intact() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut out = Socket(client.unwrap());
        let mut inp = server.unwrap().0;
        let head = [b'h'; 100];
        let big = vec![b'b'; SMALL * 3];
        for bufs in [
            vec![&head[..]],
            vec![&head[..], b"small body"],
            vec![&head[..], &big[..]],
        ] {
            let expected: Vec<u8> = bufs.concat();
            let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
            let mut left = &mut slices[..];
            while !left.is_empty() {
                let n = out.write_vectored(left).await.unwrap();
                IoSlice::advance_slices(&mut left, n);
            }
            let mut got = vec![0u8; expected.len()];
            inp.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expected);
        }
    }
}
