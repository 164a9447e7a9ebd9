//! The relay between a client's WebSocket and its backend's: bytes pass
//! through as they arrive, frames untouched (client frames stay masked, as
//! the backend expects of a client), so a message costs one read and one
//! write each way and no copy. The frame scanner keeps the router between
//! frames, which is what lets it refuse an oversized message and insert a
//! close of its own into a live stream.
//!
//! Reads land in one scratch buffer per thread, so an idle socket holds no
//! buffer at all; only bytes a slow peer has not taken yet are kept per
//! connection.

use std::{
    future::poll_fn,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::watch,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{
    frames,
    half::{Event, Half},
};
use crate::state::closing::CloseOrder;

/// How long the closing handshake may take once either side starts it.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How a relay ended, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    ClientClosed,
    BackendClosed,
    ClientLost,
    BackendLost,
    Ordered(u16),
    Shutdown,
    TooBig,
    /// A peer broke RFC 6455 framing.
    ProtocolError,
    /// The closing handshake did not finish within `CLOSE_GRACE`.
    CloseTimedOut,
}

/// Relays until both sides are done, closing on the router's own account
/// when ordered to, on shutdown, on an oversized message and when one side
/// is lost.
pub async fn relay<C, B>(
    client: C,
    backend: B,
    max_message: usize,
    mut orders: watch::Receiver<Option<CloseOrder>>,
    shutdown: CancellationToken,
) -> RelayEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut pump = Pump::new(client, backend, max_message);
    let mut ordered: Option<(Instant, CloseOrder)> = None;
    let mut orders_open = true;
    let mut give_up: Option<Instant> = None;
    // Made once: a fresh one per wake-up would register with the token
    // on every message.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        let close_at = ordered.as_ref().map(|(t, _)| *t);
        let finishing = pump.end.is_some();
        tokio::select! {
            progress = poll_fn(|cx| pump.poll(cx)) => match progress {
                Progress::Closing => {
                    give_up.get_or_insert_with(|| Instant::now() + CLOSE_GRACE);
                }
                Progress::Done(end) => return end,
            },
            _ = &mut cancelled, if !finishing => {
                let why = "router shutting down";
                pump.finish((1001, why), (1001, why), RelayEnd::Shutdown);
            }
            _ = tokio::time::sleep_until(close_at.unwrap_or_else(Instant::now)), if close_at.is_some() && !finishing => {
                if let Some((_, order)) = ordered.take() {
                    pump.finish(
                        (order.code, &order.reason),
                        (1001, "client moved to another deployment"),
                        RelayEnd::Ordered(order.code),
                    );
                }
            }
            changed = orders.changed(), if orders_open && !finishing => {
                if changed.is_err() {
                    orders_open = false;
                    continue;
                }
                let order = orders.borrow_and_update().clone();
                if let Some(order) = order {
                    // Spread over the window so a deployment's clients do
                    // not all reconnect in the same instant.
                    let window_ms = order.window.as_millis() as u64;
                    let delay = if window_ms == 0 { 0 } else { rand::random_range(0..=window_ms) };
                    ordered = Some((Instant::now() + Duration::from_millis(delay), order));
                }
            }
            _ = tokio::time::sleep_until(give_up.unwrap_or_else(Instant::now)), if give_up.is_some() => {
                return pump.outcome();
            }
        }
        if pump.end.is_some() {
            give_up.get_or_insert_with(|| Instant::now() + CLOSE_GRACE);
        }
    }
}

enum Progress {
    /// A closing handshake started: it gets `CLOSE_GRACE` to finish.
    Closing,
    Done(RelayEnd),
}

/// Both directions of one relayed connection.
struct Pump<C, B> {
    client: C,
    backend: B,
    /// Client to backend.
    up: Half,
    /// Backend to client.
    down: Half,
    /// Why the router is ending the relay, once it is; the first cause.
    end: Option<RelayEnd>,
    /// Which side started a closing handshake of its own.
    closer: Option<RelayEnd>,
}

impl<C, B> Pump<C, B>
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    fn new(client: C, backend: B, max_message: usize) -> Self {
        Self {
            client,
            backend,
            up: Half::new(max_message, true),
            down: Half::new(max_message, false),
            end: None,
            closer: None,
        }
    }

    /// Ends the relay on the router's account: each side gets its close
    /// once the frame in flight toward it is through, then the relay waits
    /// for their replies. The first cause wins.
    fn finish(&mut self, to_client: (u16, &str), to_backend: (u16, &str), end: RelayEnd) {
        self.finish_with(Some(to_client), Some(to_backend), end);
    }

    fn finish_with(
        &mut self,
        to_client: Option<(u16, &str)>,
        to_backend: Option<(u16, &str)>,
        end: RelayEnd,
    ) {
        if self.end.is_some() {
            return;
        }
        self.end = Some(end);
        self.down.finish(to_client);
        self.up.finish(to_backend);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Progress> {
        loop {
            let up = self.up.poll(&mut self.client, &mut self.backend, cx);
            let down = self.down.poll(&mut self.backend, &mut self.client, cx);
            let mut closing = false;
            let mut news = false;
            for (event, from_client) in [(up, true), (down, false)] {
                if let Poll::Ready(event) = event
                    && event != Event::Idle
                {
                    news = true;
                    closing |= self.decide(event, from_client);
                }
            }
            if self.done() {
                return Poll::Ready(Progress::Done(self.outcome()));
            }
            if closing {
                return Poll::Ready(Progress::Closing);
            }
            if !news {
                // Both directions wait on their sockets (or have nothing
                // left to do).
                return Poll::Pending;
            }
        }
    }

    fn done(&self) -> bool {
        let idle = |h: &Half| h.src_done && h.dst_done;
        if self.end.is_some() {
            self.up.finished() && self.down.finished()
        } else {
            idle(&self.up) && idle(&self.down)
        }
    }

    /// Reacts to what a half ran into; true when a closing handshake
    /// started.
    fn decide(&mut self, event: Event, from_client: bool) -> bool {
        // When a side is lost, the other gets a close saying so.
        let client_lost = (None, Some((1001, "client went away")), RelayEnd::ClientLost);
        let backend_lost = (
            Some((1011, "backend connection lost")),
            None,
            RelayEnd::BackendLost,
        );
        let (src_lost, dst_lost) = if from_client {
            (client_lost, backend_lost)
        } else {
            (backend_lost, client_lost)
        };
        let lose = |pump: &mut Self, (to_client, to_backend, end)| {
            pump.finish_with(to_client, to_backend, end);
            true
        };
        // The client started the closing handshake and the backend left
        // before answering it: from the client's side the close is done
        // (RFC 6455 §7.1.4), so complete it rather than report an error.
        // The frame has no status, which the client reads as 1005.
        if !from_client
            && matches!(event, Event::SrcEnded | Event::SrcFailed)
            && self.up.scanner.closed()
            && !self.down.scanner.closed()
            && self.end.is_none()
        {
            self.end = Some(RelayEnd::ClientClosed);
            self.down.finish_frame(frames::bare_close_frame());
            self.up.finish(None);
            return true;
        }
        match event {
            Event::Idle => false,
            Event::CloseSeen => {
                // Closes pass through; the relay ends when both sides have
                // closed their connections.
                let closer = if from_client {
                    RelayEnd::ClientClosed
                } else {
                    RelayEnd::BackendClosed
                };
                self.closer.get_or_insert(closer);
                true
            }
            Event::SrcEnded => {
                let half = if from_client { &self.up } else { &self.down };
                if half.scanner.closed() || self.end.is_some() {
                    // The end of a closing handshake, passed on as a
                    // half-close.
                    false
                } else {
                    lose(self, src_lost)
                }
            }
            Event::SrcFailed => lose(self, src_lost),
            Event::DstFailed => lose(self, dst_lost),
            Event::Protocol(why) => {
                tracing::debug!(
                    from_client,
                    why,
                    "websocket protocol error; closing with 1002"
                );
                let close = (1002, "protocol error");
                self.finish(close, close, RelayEnd::ProtocolError);
                true
            }
            Event::TooBig => {
                let to_backend = if from_client {
                    (1001, "client sent a message too big")
                } else {
                    (1009, "message too big")
                };
                self.finish((1009, "message too big"), to_backend, RelayEnd::TooBig);
                true
            }
        }
    }

    /// How the relay ended, or is ending.
    fn outcome(&self) -> RelayEnd {
        self.end.or(self.closer).unwrap_or(RelayEnd::CloseTimedOut)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::*;

    /// A frame as a peer sends it (masked when it comes from a client).
    fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut f = vec![0x80 | opcode, payload.len() as u8];
        if masked {
            f[1] |= 0x80;
            f.extend_from_slice(&[0, 0, 0, 0]); // a zero key leaves the payload as is
        }
        f.extend_from_slice(payload);
        f
    }

    struct Rig {
        /// The test plays the client on this end...
        client: DuplexStream,
        /// ...and the backend on this one.
        backend: DuplexStream,
        orders: watch::Sender<Option<CloseOrder>>,
        shutdown: CancellationToken,
        relay: tokio::task::JoinHandle<RelayEnd>,
    }

    fn rig(max_message: usize) -> Rig {
        let (client, relay_client) = duplex(64 * 1024);
        let (backend, relay_backend) = duplex(64 * 1024);
        let (orders, rx) = watch::channel(None);
        let shutdown = CancellationToken::new();
        let relay = tokio::spawn(relay(
            relay_client,
            relay_backend,
            max_message,
            rx,
            shutdown.clone(),
        ));
        Rig {
            client,
            backend,
            orders,
            shutdown,
            relay,
        }
    }

    async fn read_exactly(s: &mut DuplexStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("bytes in time")
            .unwrap();
        buf
    }

    async fn read_to_end(s: &mut DuplexStream) -> Vec<u8> {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
            .await
            .expect("end in time")
            .unwrap();
        buf
    }

    /// A peer's reply to a close (masked when it comes from the client).
    async fn reply_close(s: &mut DuplexStream, code: u16, from_client: bool) {
        s.write_all(&frames::close_frame(code, "", from_client))
            .await
            .unwrap();
    }

    /// The close frame's code, from an unmasked or masked frame.
    fn close_code(f: &[u8]) -> u16 {
        assert_eq!(f[0], 0x88, "a close frame: {f:?}");
        let (key, payload) = if f[1] & 0x80 != 0 {
            (&f[2..6], &f[6..])
        } else {
            (&[0u8; 4][..], &f[2..])
        };
        let b: Vec<u8> = payload
            .iter()
            .zip(key.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect();
        u16::from_be_bytes([b[0], b[1]])
    }

    #[tokio::test]
    async fn bytes_pass_through_unchanged_even_a_byte_at_a_time() {
        let mut r = rig(1 << 20);
        let up = [frame(0x1, b"hello", true), frame(0x9, b"ping", true)].concat();
        for b in &up {
            r.client.write_all(&[*b]).await.unwrap();
        }
        assert_eq!(read_exactly(&mut r.backend, up.len()).await, up);
        let down = frame(0x2, &[1, 2, 3], false);
        r.backend.write_all(&down).await.unwrap();
        assert_eq!(read_exactly(&mut r.client, down.len()).await, down);
    }

    #[tokio::test]
    async fn a_clean_close_passes_both_ways_and_ends_the_relay() {
        let mut r = rig(1 << 20);
        let close = frames::close_frame(4001, "client says bye", true);
        r.client.write_all(&close).await.unwrap();
        assert_eq!(read_exactly(&mut r.backend, close.len()).await, close);
        let reply = frames::close_frame(4001, "", false);
        r.backend.write_all(&reply).await.unwrap();
        r.backend.shutdown().await.unwrap();
        // The client gets the reply, then the end of the stream.
        assert_eq!(read_to_end(&mut r.client).await, reply);
        r.client.shutdown().await.unwrap();
        assert_eq!(r.relay.await.unwrap(), RelayEnd::ClientClosed);
    }

    #[tokio::test]
    async fn a_close_order_waits_for_the_frame_in_flight() {
        let mut r = rig(1 << 20);
        let whole = frame(0x2, &[9; 100], false);
        r.backend.write_all(&whole[..40]).await.unwrap();
        assert_eq!(read_exactly(&mut r.client, 40).await, &whole[..40]);
        r.orders.send_replace(Some(CloseOrder {
            code: 1012,
            reason: "deployment retired".into(),
            window: Duration::ZERO,
        }));
        // The backend gets its close at once (nothing was in flight toward
        // it); the client's waits for the rest of the frame.
        let to_backend = read_exactly(&mut r.backend, 6 + 2 + 34).await;
        assert_eq!(close_code(&to_backend), 1001);
        r.backend.write_all(&whole[40..]).await.unwrap();
        let rest = read_exactly(&mut r.client, whole.len() - 40).await;
        assert_eq!(rest, &whole[40..]);
        let close = read_exactly(&mut r.client, 2 + 2 + 18).await;
        assert_eq!(close_code(&close), 1012);
        // Both answer; the relay ends without waiting out the grace.
        reply_close(&mut r.client, 1012, true).await;
        reply_close(&mut r.backend, 1001, false).await;
        let end = tokio::time::timeout(Duration::from_secs(2), r.relay)
            .await
            .expect("relay ends once both replied");
        assert_eq!(end.unwrap(), RelayEnd::Ordered(1012));
    }

    #[tokio::test]
    async fn a_backend_lost_between_frames_closes_the_client_with_1011() {
        let mut r = rig(1 << 20);
        let hello = frame(0x1, b"hi", false);
        r.backend.write_all(&hello).await.unwrap();
        assert_eq!(read_exactly(&mut r.client, hello.len()).await, hello);
        drop(r.backend);
        let close = read_exactly(&mut r.client, 2 + 2 + 23).await;
        assert_eq!(close_code(&close), 1011);
        reply_close(&mut r.client, 1011, true).await;
        assert_eq!(r.relay.await.unwrap(), RelayEnd::BackendLost);
    }

    #[tokio::test]
    async fn a_backend_lost_mid_frame_drops_the_client_without_a_broken_frame() {
        let mut r = rig(1 << 20);
        let whole = frame(0x2, &[5; 50], false);
        r.backend.write_all(&whole[..10]).await.unwrap();
        assert_eq!(read_exactly(&mut r.client, 10).await, &whole[..10]);
        drop(r.backend);
        // No close frame can follow half a frame: the stream just ends,
        // and the client hangs up as well.
        assert_eq!(read_to_end(&mut r.client).await, b"");
        drop(r.client);
        assert_eq!(r.relay.await.unwrap(), RelayEnd::BackendLost);
    }

    #[tokio::test]
    async fn an_oversized_client_message_is_refused_before_any_of_it_passes() {
        let mut r = rig(16);
        let ok = frame(0x2, &[1; 16], true);
        let big = frame(0x2, &[2; 17], true);
        r.client
            .write_all(&[ok.clone(), big].concat())
            .await
            .unwrap();
        assert_eq!(read_exactly(&mut r.backend, ok.len()).await, ok);
        let to_backend = read_exactly(&mut r.backend, 6 + 2 + 29).await;
        assert_eq!(close_code(&to_backend), 1001);
        let to_client = read_exactly(&mut r.client, 2 + 2 + 15).await;
        assert_eq!(close_code(&to_client), 1009);
        reply_close(&mut r.client, 1009, true).await;
        reply_close(&mut r.backend, 1001, false).await;
        assert_eq!(r.relay.await.unwrap(), RelayEnd::TooBig);
    }

    /// Each frame an RFC 6455 endpoint must refuse: never passed on, and
    /// both sides get 1002.
    #[tokio::test]
    async fn frames_an_endpoint_must_refuse_close_both_sides_with_1002() {
        let mut rsv = frame(0x1, b"hi", true);
        rsv[0] |= 0x40;
        let mut unfinished_ping = frame(0x9, b"x", true);
        unfinished_ping[0] &= 0x7f;
        let mut first_half = frame(0x1, &[b'a'; 10], true);
        first_half[0] &= 0x7f;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unmasked client frame", frame(0x1, b"hi", false)),
            ("reserved opcode", frame(0x3, b"hi", true)),
            ("reserved bits", rsv),
            ("fragmented control frame", unfinished_ping),
            ("continuation with no message", frame(0x0, b"hi", true)),
            (
                "restarted message",
                [first_half, frame(0x2, &[b'b'; 10], true)].concat(),
            ),
            ("one-byte close", frame(0x8, &[3], true)),
            (
                "invalid close code",
                frame(0x8, &1005u16.to_be_bytes(), true),
            ),
        ];
        for (what, bytes) in cases {
            let mut r = rig(1 << 20);
            r.client.write_all(&bytes).await.unwrap();
            let to_client = read_exactly(&mut r.client, 2 + 2 + 14).await;
            assert_eq!(close_code(&to_client), 1002, "{what}");
            let to_backend = read_exactly(&mut r.backend, 6 + 2 + 14).await;
            // The first frame of a restarted message was valid and passed.
            let to_backend = if what == "restarted message" {
                let mut rest = to_backend;
                rest.extend(read_exactly(&mut r.backend, 16).await);
                rest[16..].to_vec()
            } else {
                to_backend
            };
            assert_eq!(close_code(&to_backend), 1002, "{what}");
            reply_close(&mut r.client, 1002, true).await;
            reply_close(&mut r.backend, 1002, false).await;
            assert_eq!(r.relay.await.unwrap(), RelayEnd::ProtocolError, "{what}");
        }
        // A big ping is refused whatever the message limit.
        let mut r = rig(4096);
        let mut ping = vec![0x89, 0x80 | 126];
        ping.extend_from_slice(&200u16.to_be_bytes());
        ping.extend_from_slice(&[0; 4]);
        ping.extend_from_slice(&[0; 200]);
        r.client.write_all(&ping).await.unwrap();
        let to_client = read_exactly(&mut r.client, 2 + 2 + 14).await;
        assert_eq!(close_code(&to_client), 1002);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_closes_both_sides_with_1001_and_gives_up_after_the_grace() {
        let mut r = rig(1 << 20);
        r.shutdown.cancel();
        let to_client = read_exactly(&mut r.client, 2 + 2 + 20).await;
        assert_eq!(close_code(&to_client), 1001);
        let to_backend = read_exactly(&mut r.backend, 6 + 2 + 20).await;
        assert_eq!(close_code(&to_backend), 1001);
        // Neither answers: the relay stops waiting after CLOSE_GRACE.
        assert_eq!(r.relay.await.unwrap(), RelayEnd::Shutdown);
    }
}
