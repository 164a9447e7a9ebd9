//! One direction of a relayed WebSocket: bytes read from the source into
//! the thread's scratch buffer, scanned for frame boundaries, and written
//! to the destination; what the destination has not taken yet is all a
//! connection keeps.

use std::{
    cell::RefCell,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frames::{self, MAX_HEADER, Mode, Scanner, Stop};

const SCRATCH: usize = 16 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// One direction: bytes read from its source, written to its destination.
pub struct Half {
    pub scanner: Scanner,
    /// The start of a header that has not fully arrived.
    pub carry: [u8; MAX_HEADER],
    pub carry_len: usize,
    /// Bytes read but not yet accepted by the destination.
    pub out: Vec<u8>,
    pub sent: usize,
    /// Frames still pass through; false once the relay is finishing and
    /// the stream toward the destination has reached a frame boundary (or
    /// cannot reach one).
    pub forwarding: bool,
    /// Stop forwarding at the next frame boundary.
    pub stopping: bool,
    /// Whether what was forwarded ends between frames, so a frame of the
    /// router's own can follow.
    pub clean: bool,
    /// A close frame of the router's own, sent once forwarding stops.
    pub inject: Option<Vec<u8>>,
    pub src_done: bool,
    pub dst_done: bool,
    /// Frames toward a server are masked (the destination is the backend).
    pub masked: bool,
}

/// Something a half ran into that the pump decides about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The source closed its side (EOF).
    SrcEnded,
    /// Reading the source failed.
    SrcFailed,
    /// Writing to the destination failed.
    DstFailed,
    /// The source sent a message over the limit.
    TooBig,
    /// The source broke RFC 6455 framing.
    Protocol(&'static str),
    /// The source's first close frame went by.
    CloseSeen,
    /// Nothing left to do in this direction.
    Idle,
}

impl Half {
    pub fn new(max_message: usize, masked: bool) -> Self {
        Self {
            // The client to backend half reads a client's frames (masked)
            // and writes masked ones; the other half the reverse.
            scanner: Scanner::new(max_message).expecting_mask(masked),
            carry: [0; MAX_HEADER],
            carry_len: 0,
            out: Vec::new(),
            sent: 0,
            forwarding: true,
            stopping: false,
            clean: true,
            inject: None,
            src_done: false,
            dst_done: false,
            masked,
        }
    }

    /// Stops passing frames on (after the one in flight) and queues
    /// `close` for the destination, unless it already got a close from the
    /// source.
    pub fn finish(&mut self, close: Option<(u16, &str)>) {
        if let Some((code, reason)) = close
            && !self.scanner.closed()
        {
            self.inject = Some(frames::close_frame(code, reason, self.masked));
        }
        if self.scanner.at_boundary() {
            self.forwarding = false;
        } else {
            self.stopping = true;
        }
    }

    /// As `finish`, with a ready-made close frame.
    pub fn finish_frame(&mut self, frame: Vec<u8>) {
        self.inject = Some(frame);
        if self.scanner.at_boundary() {
            self.forwarding = false;
        } else {
            self.stopping = true;
        }
    }

    /// Whether this direction has nothing left to wait for while finishing:
    /// its own close went out (or cannot) and the source answered with a
    /// close or went away.
    pub fn finished(&self) -> bool {
        let delivered = self.inject.is_none() && self.sent >= self.out.len() || self.dst_done;
        let answered = self.src_done || self.scanner.closed();
        !self.forwarding && delivered && answered
    }

    pub fn poll<S, D>(&mut self, src: &mut S, dst: &mut D, cx: &mut Context<'_>) -> Poll<Event>
    where
        S: AsyncRead + Unpin,
        D: AsyncWrite + Unpin,
    {
        loop {
            if !self.dst_done {
                if let Err(()) = ready!(self.poll_flush(dst, cx)) {
                    self.dst_done = true;
                    self.out = Vec::new();
                    self.sent = 0;
                    return Poll::Ready(Event::DstFailed);
                }
                if !self.forwarding
                    && let Some(frame) = self.inject.take()
                    && self.clean
                {
                    self.out = frame;
                    continue;
                }
            }
            if self.src_done {
                if !self.dst_done {
                    // Pass the end on, as a half-close: the other side may
                    // still be sending its close reply.
                    let _ = ready!(Pin::new(&mut *dst).poll_shutdown(cx));
                    self.dst_done = true;
                }
                return Poll::Ready(Event::Idle);
            }
            match ready!(self.poll_read(src, dst, cx)) {
                Some(event) => return Poll::Ready(event),
                None => continue,
            }
        }
    }

    /// Writes out what is queued; Err once the destination is gone.
    pub fn poll_flush<D: AsyncWrite + Unpin>(
        &mut self,
        dst: &mut D,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ()>> {
        if self.out.is_empty() {
            return Poll::Ready(Ok(()));
        }
        while self.sent < self.out.len() {
            match ready!(Pin::new(&mut *dst).poll_write(cx, &self.out[self.sent..])) {
                Ok(0) | Err(_) => return Poll::Ready(Err(())),
                Ok(n) => self.sent += n,
            }
        }
        // A slow peer's backlog is freed, not kept: most sockets are idle.
        self.out = Vec::new();
        self.sent = 0;
        Poll::Ready(ready!(Pin::new(&mut *dst).poll_flush(cx)).map_err(|_| ()))
    }

    /// One read from the source, passed on as far as the frames allow.
    pub fn poll_read<S, D>(
        &mut self,
        src: &mut S,
        dst: &mut D,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Event>>
    where
        S: AsyncRead + Unpin,
        D: AsyncWrite + Unpin,
    {
        SCRATCH_BUF.with_borrow_mut(|buf| {
            let carried = self.carry_len;
            buf[..carried].copy_from_slice(&self.carry[..carried]);
            let mut rb = ReadBuf::new(&mut buf[carried..]);
            match ready!(Pin::new(&mut *src).poll_read(cx, &mut rb)) {
                Err(_) => {
                    self.src_gone();
                    return Poll::Ready(Some(Event::SrcFailed));
                }
                Ok(()) if rb.filled().is_empty() => {
                    self.src_gone();
                    return Poll::Ready(Some(Event::SrcEnded));
                }
                Ok(()) => {}
            }
            let len = carried + rb.filled().len();
            let was_closed = self.scanner.closed();
            let mut input = &buf[..len];
            let mut event = None;
            if self.forwarding {
                let mode = if self.stopping {
                    Mode::ToBoundary
                } else {
                    Mode::Forward
                };
                let scan = self.scanner.scan(input, mode);
                if self.dst_done {
                    // Nowhere to send it: keep following the frames only.
                } else if let Err(()) = self.write_now(&input[..scan.forward], dst, cx) {
                    self.dst_done = true;
                    self.out = Vec::new();
                    event = Some(Event::DstFailed);
                }
                input = &input[scan.forward..];
                match scan.stop {
                    None => {}
                    Some(stop) => {
                        self.forwarding = false;
                        match stop {
                            Stop::TooBig => event = event.or(Some(Event::TooBig)),
                            Stop::Protocol(why) => event = event.or(Some(Event::Protocol(why))),
                            Stop::Boundary => {}
                        }
                    }
                }
            }
            if !self.forwarding {
                // Past the last forwarded frame: follow frames only to
                // notice the source's close.
                let scan = self.scanner.scan(input, Mode::Follow);
                input = &input[scan.forward..];
            }
            self.carry_len = input.len();
            self.carry[..input.len()].copy_from_slice(input);
            if event.is_none() && !was_closed && self.scanner.closed() {
                event = Some(Event::CloseSeen);
            }
            Poll::Ready(event)
        })
    }

    /// Writes `bytes` as far as the destination takes them now and queues
    /// the rest (which stops reading until it drains).
    pub fn write_now<D: AsyncWrite + Unpin>(
        &mut self,
        bytes: &[u8],
        dst: &mut D,
        cx: &mut Context<'_>,
    ) -> Result<(), ()> {
        let mut at = 0;
        if self.out.is_empty() {
            while at < bytes.len() {
                match Pin::new(&mut *dst).poll_write(cx, &bytes[at..]) {
                    Poll::Ready(Ok(0) | Err(_)) => return Err(()),
                    Poll::Ready(Ok(n)) => at += n,
                    Poll::Pending => break,
                }
            }
        }
        self.out.extend_from_slice(&bytes[at..]);
        Ok(())
    }

    /// The source ended or failed: forwarding is over, and a frame it left
    /// unfinished toward the destination stays unfinished.
    pub fn src_gone(&mut self) {
        self.src_done = true;
        if self.forwarding && !self.scanner.at_boundary() {
            self.clean = false;
        }
        self.forwarding = false;
        self.stopping = false;
    }
}
