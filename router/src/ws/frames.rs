//! Just enough of RFC 6455 framing to relay a WebSocket byte stream
//! without decoding it: where each frame starts and ends, how long the
//! current message is, and whether a close frame went by. Every frame
//! header is checked as an endpoint must (§5.2, §5.4, §5.5, §7.4) before
//! the frame is passed on; payloads are never unmasked or copied, except
//! the two bytes of a close frame's status code.

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;

const OP_CONTINUATION: u8 = 0x0;
const OP_CLOSE: u8 = 0x8;

/// Follows the frames of one direction of a connection.
#[derive(Debug)]
pub struct Scanner {
    max_message: u64,
    /// Payload bytes left in the frame being passed through.
    remaining: u64,
    /// Payload bytes of the data message so far (all its fragments).
    message: u64,
    /// A fragmented data message is open (its last frame had FIN clear).
    in_message: bool,
    /// Whether this direction's frames must be masked (client to server),
    /// must not be (server to client), or either (not known).
    masked: Option<bool>,
    closed: bool,
}

/// What a scan found: `forward` bytes of the input may be passed on as
/// they are.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    pub forward: usize,
    pub stop: Option<Stop>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pass frames on, stopping before a message over the limit.
    Forward,
    /// Pass on the frame in flight, then stop.
    ToBoundary,
    /// Only keep track (nothing is passed on, so no limit applies).
    Follow,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// A data frame would take its message over the limit; `forward` ends
    /// just before that frame's header.
    TooBig,
    /// `forward` ends at a frame boundary, as asked.
    Boundary,
    /// The next frame breaks RFC 6455 (`forward` ends before it): the
    /// connection is failed with 1002 (§7.1.7).
    Protocol(&'static str),
}

impl Scanner {
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message: max_message as u64,
            remaining: 0,
            message: 0,
            in_message: false,
            masked: None,
            closed: false,
        }
    }

    /// Checks the mask bit too: set on every frame from a client, clear on
    /// every frame from a server (RFC 6455 §5.1).
    pub fn expecting_mask(mut self, masked: bool) -> Self {
        self.masked = Some(masked);
        self
    }

    /// Whether a close frame has gone by.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Whether the bytes scanned so far end exactly between two frames.
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0
    }

    /// Scans `input`, which continues the stream where the last scan's
    /// `forward` ended. With no stop, `input[forward..]` is the start of a
    /// header that is not complete yet: the caller keeps those bytes (at
    /// most `MAX_HEADER - 1`) and puts them in front of the next input.
    pub fn scan(&mut self, input: &[u8], mode: Mode) -> Scan {
        let mut at = 0;
        loop {
            if self.remaining > 0 {
                let take = self.remaining.min((input.len() - at) as u64);
                at += take as usize;
                self.remaining -= take;
                if self.remaining > 0 {
                    return Scan {
                        forward: at,
                        stop: None,
                    };
                }
            }
            if mode == Mode::ToBoundary {
                return Scan {
                    forward: at,
                    stop: Some(Stop::Boundary),
                };
            }
            let Some((len, header)) = parse_header(&input[at..]) else {
                return Scan {
                    forward: at,
                    stop: None,
                };
            };
            let opcode = input[at] & 0x0f;
            if opcode == OP_CLOSE && len >= 2 && input.len() < at + header + 2 {
                // The status code is judged before the frame passes.
                return Scan {
                    forward: at,
                    stop: None,
                };
            }
            if mode != Mode::Follow
                && let Some(why) = self.violation(&input[at..], len, header)
            {
                return Scan {
                    forward: at,
                    stop: Some(Stop::Protocol(why)),
                };
            }
            if opcode & 0x8 == 0 {
                self.in_message = input[at] & 0x80 == 0;
                // Data frames: a continuation adds to the message, any
                // other opcode starts a new one.
                let so_far = if opcode == OP_CONTINUATION {
                    self.message
                } else {
                    0
                };
                let total = so_far.saturating_add(len);
                if total > self.max_message && mode != Mode::Follow {
                    return Scan {
                        forward: at,
                        stop: Some(Stop::TooBig),
                    };
                }
                self.message = total;
            } else if opcode == OP_CLOSE {
                // A malformed close (only ever seen here while following
                // a peer already being failed) is not its answer.
                self.closed |= self.violation(&input[at..], len, header).is_none();
            }
            at += header;
            self.remaining = len;
        }
    }
}

impl Scanner {
    /// What is wrong with the frame `frame` starts with (its header, and a
    /// close frame's status code), if anything.
    fn violation(&self, frame: &[u8], len: u64, header: usize) -> Option<&'static str> {
        let (first, second) = (frame[0], frame[1]);
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0f;
        if first & 0x70 != 0 {
            // No extension is ever negotiated through the router.
            return Some("reserved bits set with no extension");
        }
        if self.masked.is_some_and(|m| m != (second & 0x80 != 0)) {
            return Some(if second & 0x80 == 0 {
                "client frame not masked"
            } else {
                "server frame masked"
            });
        }
        match opcode {
            0x3..=0x7 | 0xb..=0xf => Some("reserved opcode"),
            0x8..=0xa if !fin => Some("fragmented control frame"),
            0x8..=0xa if len > 125 => Some("control frame over 125 bytes"),
            OP_CONTINUATION if !self.in_message => Some("continuation with no message to continue"),
            0x1 | 0x2 if self.in_message => Some("new message before the last one ended"),
            OP_CLOSE if len == 1 => Some("close frame with a one-byte payload"),
            OP_CLOSE if len >= 2 => {
                let mut code = [frame[header], frame[header + 1]];
                if second & 0x80 != 0 {
                    let key = &frame[header - 4..header];
                    code[0] ^= key[0];
                    code[1] ^= key[1];
                }
                match u16::from_be_bytes(code) {
                    1000..=1003 | 1007..=1014 | 3000..=4999 => None,
                    _ => Some("invalid close code"),
                }
            }
            _ => None,
        }
    }
}

/// The payload length and header length of the frame `bytes` starts with,
/// or None while the header is incomplete.
fn parse_header(bytes: &[u8]) -> Option<(u64, usize)> {
    let [_, second, rest @ ..] = bytes else {
        return None;
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let (len, extended) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            2,
        ),
        127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 8),
        n => (u64::from(n), 0),
    };
    let header = 2 + extended + mask;
    (bytes.len() >= header).then_some((len, header))
}

/// A close frame with `code` and `reason` (cut to fit a control frame),
/// masked when it goes to a server, as RFC 6455 §5.3 requires of clients.
pub fn close_frame(code: u16, reason: &str, masked: bool) -> Vec<u8> {
    let reason = truncate(reason, 123);
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    let mut frame = Vec::with_capacity(6 + payload.len());
    frame.push(0x80 | OP_CLOSE);
    if masked {
        let key: [u8; 4] = rand::random();
        frame.push(0x80 | payload.len() as u8);
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    } else {
        frame.push(payload.len() as u8);
        frame.extend_from_slice(&payload);
    }
    frame
}

/// A close frame with no status, from the server side: the answer to a
/// close whose echo the other peer never sent.
pub fn bare_close_frame() -> Vec<u8> {
    vec![0x80 | OP_CLOSE, 0]
}

/// The longest prefix of `s` within `max` bytes that ends on a character.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as a peer would send it.
    fn frame(opcode: u8, fin: bool, payload_len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload_len {
            n if n < 126 => f.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                f.push(mask_bit | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(mask_bit | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(7u8, payload_len));
        f
    }

    /// Feeds `stream` in chunks of `chunk` bytes the way the relay does,
    /// carrying incomplete headers over; returns the bytes forwarded and
    /// the stop, if any.
    fn feed(scanner: &mut Scanner, stream: &[u8], chunk: usize) -> (Vec<u8>, Option<Stop>) {
        let mut out = Vec::new();
        let mut carry = Vec::new();
        for piece in stream.chunks(chunk) {
            let mut input = std::mem::take(&mut carry);
            input.extend_from_slice(piece);
            let scan = scanner.scan(&input, Mode::Forward);
            out.extend_from_slice(&input[..scan.forward]);
            if scan.stop.is_some() {
                return (out, scan.stop);
            }
            assert!(input.len() - scan.forward < MAX_HEADER);
            carry = input[scan.forward..].to_vec();
        }
        assert!(carry.is_empty(), "stream ended inside a header");
        (out, None)
    }

    #[test]
    fn every_length_form_and_mask_passes_through_in_any_chunking() {
        let mut stream = Vec::new();
        for (len, masked) in [
            (0, true),
            (5, false),
            (125, true),
            (126, false),
            (70_000, true),
        ] {
            stream.extend(frame(0x2, true, len, masked));
        }
        stream.extend(frame(0x9, true, 4, true)); // ping
        for chunk in [1, 2, 3, 13, 14, 100, 4096, stream.len()] {
            let mut s = Scanner::new(1 << 20);
            let (out, stop) = feed(&mut s, &stream, chunk);
            assert_eq!(stop, None, "chunk {chunk}");
            assert_eq!(out, stream, "chunk {chunk}");
            assert!(s.at_boundary());
            assert!(!s.closed());
        }
    }

    #[test]
    fn a_message_over_the_limit_stops_before_its_header() {
        let small = frame(0x1, true, 10, true);
        let big = frame(0x2, true, 101, true);
        let stream = [small.clone(), big].concat();
        for chunk in [1, 7, stream.len()] {
            let mut s = Scanner::new(100);
            let (out, stop) = feed(&mut s, &stream, chunk);
            assert_eq!(stop, Some(Stop::TooBig));
            assert_eq!(out, small, "chunk {chunk}");
        }
    }

    #[test]
    fn fragments_count_toward_one_message_and_control_frames_do_not() {
        let first = frame(0x2, false, 60, true);
        let ping = frame(0x9, true, 100, true);
        let last = frame(0x0, true, 40, true);
        let mut s = Scanner::new(100);
        let ok = [first.clone(), ping.clone(), last].concat();
        assert_eq!(feed(&mut s, &ok, 9), (ok.clone(), None));

        let mut s = Scanner::new(100);
        let over = [first, ping, frame(0x0, true, 41, true)].concat();
        let (out, stop) = feed(&mut s, &over, 9);
        assert_eq!(stop, Some(Stop::TooBig));
        assert_eq!(out.len(), over.len() - (2 + 4 + 41));

        // A new message starts the count again.
        let mut s = Scanner::new(100);
        let two = [frame(0x1, true, 90, false), frame(0x1, true, 90, false)].concat();
        assert_eq!(feed(&mut s, &two, 50), (two.clone(), None));
    }

    #[test]
    fn a_boundary_scan_finishes_the_frame_in_flight_and_no_more() {
        let a = frame(0x2, true, 300, false);
        let b = frame(0x2, true, 10, false);
        let stream = [a.clone(), b].concat();
        let mut s = Scanner::new(1 << 20);
        let first = s.scan(&stream[..100], Mode::Forward);
        assert_eq!(first.forward, 100);
        assert!(!s.at_boundary());
        let rest = s.scan(&stream[100..], Mode::ToBoundary);
        assert_eq!(rest.stop, Some(Stop::Boundary));
        assert_eq!(100 + rest.forward, a.len());
        assert!(s.at_boundary());
        // Already between frames: nothing more is forwarded.
        assert_eq!(
            s.scan(&stream[a.len()..], Mode::ToBoundary),
            Scan {
                forward: 0,
                stop: Some(Stop::Boundary)
            }
        );
    }

    #[test]
    fn close_frames_are_noticed() {
        let mut s = Scanner::new(1 << 20);
        let close = close_frame(4001, "bye", true);
        assert_eq!(feed(&mut s, &close, 3), (close.clone(), None));
        assert!(s.closed());
    }

    #[test]
    fn close_frames_encode_code_reason_and_mask() {
        let plain = close_frame(1012, "deployment retired", false);
        assert_eq!(plain[0], 0x88);
        assert_eq!(usize::from(plain[1]), 2 + "deployment retired".len());
        assert_eq!(&plain[2..4], &1012u16.to_be_bytes());
        assert_eq!(&plain[4..], b"deployment retired");

        let masked = close_frame(1001, "bye", true);
        assert_eq!(masked[1], 0x80 | 5);
        let key = &masked[2..6];
        let payload: Vec<u8> = masked[6..]
            .iter()
            .zip(key.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect();
        assert_eq!(payload, [&1001u16.to_be_bytes()[..], b"bye"].concat());

        // Reasons are cut to fit a control frame, on a character boundary.
        let long = close_frame(1000, &"é".repeat(100), false);
        assert!(usize::from(long[1]) <= 125);
        assert!(std::str::from_utf8(&long[4..]).is_ok());
    }
}
