//! Relaying a message body by its framing (RFC 9112 §6): a length, chunked
//! coding, or the end of the connection. What goes out is always cleanly
//! re-framed by the router: chunk sizes are rewritten, extensions and
//! trailers dropped, and a body that ends with its connection is sent on
//! chunked. Read and write alternate, so the slower side sets the pace.

use std::{io, time::Duration};

use tokio::net::TcpStream;

use crate::{
    net::timed::{read, write_all},
    state::closing::Retired,
    upstream::upload::Pace,
};

/// How much is read from the source at a time.
const CHUNK: usize = 16 * 1024;

/// How the source frames the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A body on its way through its framing: what is read from the source
/// becomes what goes out, and the end is found.
#[derive(Debug)]
pub struct Reframe {
    kind: Kind,
    /// Data bytes passed on so far.
    bytes: u64,
}

#[derive(Debug)]
enum Kind {
    Length(u64),
    Chunked(Dechunk),
    UntilClose,
    Done,
}

impl Reframe {
    pub fn new(framing: Framing) -> Self {
        let kind = match framing {
            Framing::Empty | Framing::Length(0) => Kind::Done,
            Framing::Length(n) => Kind::Length(n),
            Framing::Chunked => Kind::Chunked(Dechunk::default()),
            Framing::UntilClose => Kind::UntilClose,
        };
        Self { kind, bytes: 0 }
    }

    pub fn done(&self) -> bool {
        matches!(self.kind, Kind::Done)
    }

    /// Appends what `input` holds of the body to `out`, re-framed; how
    /// many bytes of `input` were the body's (all of them unless it ended
    /// inside).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, &'static str> {
        match &mut self.kind {
            Kind::Length(left) => {
                let take = (*left).min(input.len() as u64) as usize;
                out.extend_from_slice(&input[..take]);
                self.passed(take);
                Ok(take)
            }
            Kind::Chunked(d) => {
                let used = d.feed(input, out)?;
                self.bytes += d.take_data_count();
                if d.done() {
                    self.kind = Kind::Done;
                }
                Ok(used)
            }
            Kind::UntilClose => {
                chunk(out, input);
                self.bytes += input.len() as u64;
                Ok(input.len())
            }
            Kind::Done => Ok(0),
        }
    }

    /// Counts `n` bytes of a length-framed body as passed on.
    fn passed(&mut self, n: usize) {
        self.bytes += n as u64;
        if let Kind::Length(left) = &mut self.kind {
            *left -= n as u64;
            if *left == 0 {
                self.kind = Kind::Done;
            }
        }
    }
}

/// A body relayed to its end.
#[derive(Debug)]
pub struct Relayed {
    pub bytes: u64,
    /// The source sent exactly one message and nothing after it, so its
    /// connection can carry another.
    pub clean: bool,
}

/// Why a relay stopped early.
#[derive(Debug)]
pub enum Broken {
    /// The source failed, closed early or framed the body wrongly.
    Source(String),
    /// The source (a client's upload) fell below the minimum rate.
    TooSlow,
    /// The destination went away or stopped reading.
    Sink,
    /// The deployment was retired: the stream ends here.
    Ended,
}

/// What ends a wait on the source early besides its time limit.
pub enum Stop<'a> {
    Never,
    /// A backend's stream ends when its deployment is retired.
    Retired(&'a mut Retired),
    /// A client's upload is held to a minimum rate.
    Pace(&'a mut Pace),
}

/// Where a body comes from: a socket, and what was read from it that is
/// not used yet (`buf[at..]`).
pub struct Source<'a> {
    pub stream: &'a TcpStream,
    pub buf: &'a mut Vec<u8>,
    pub at: usize,
    /// The longest wait for the next piece.
    pub limit: Duration,
    pub stop: Stop<'a>,
}

impl Source<'_> {
    /// Replaces what `buf` holds (all of it used) with the next piece.
    async fn refill(&mut self) -> Result<usize, Broken> {
        self.buf.clear();
        self.at = 0;
        let source = |e: io::Error| Broken::Source(e.to_string());
        match &mut self.stop {
            Stop::Never => read(self.stream, self.buf, CHUNK, self.limit)
                .await
                .map_err(source),
            Stop::Retired(end) => tokio::select! {
                r = read(self.stream, self.buf, CHUNK, self.limit) => r.map_err(source),
                () = end => Err(Broken::Ended),
            },
            Stop::Pace(pace) => {
                let due = pace.deadline();
                let wait = due
                    .saturating_duration_since(tokio::time::Instant::now())
                    .min(self.limit);
                match read(self.stream, self.buf, CHUNK, wait).await {
                    Ok(n) => {
                        pace.received(n as u64);
                        Ok(n)
                    }
                    Err(e)
                        if e.kind() == io::ErrorKind::TimedOut
                            && tokio::time::Instant::now() >= due =>
                    {
                        Err(Broken::TooSlow)
                    }
                    Err(e) => Err(source(e)),
                }
            }
        }
    }
}

/// Reads the body into `out`, re-framed, until it ends or `budget` bytes
/// are there: an upload read ahead before a backend is asked.
pub async fn read_ahead(
    from: &mut Source<'_>,
    body: &mut Reframe,
    out: &mut Vec<u8>,
    budget: usize,
) -> Result<(), Broken> {
    let start = out.len();
    loop {
        from.at += body
            .feed(&from.buf[from.at..], out)
            .map_err(|why| Broken::Source(why.into()))?;
        if body.done() || out.len() - start >= budget {
            return Ok(());
        }
        if from.refill().await? == 0 {
            return Err(Broken::Source("closed before the end of the body".into()));
        }
    }
}

/// Relays the rest of `body` from `from` to `to`, each write waiting up
/// to `limit`; `scratch` is reused for the re-framed output.
pub async fn relay(
    from: &mut Source<'_>,
    body: &mut Reframe,
    to: &TcpStream,
    scratch: &mut Vec<u8>,
    limit: Duration,
) -> Result<Relayed, Broken> {
    let first = body.bytes;
    loop {
        let input = &from.buf[from.at..];
        if let Kind::Length(left) = body.kind {
            // Already framed as it should be: written from where it lies.
            let take = left.min(input.len() as u64) as usize;
            if take > 0 {
                write_all(to, &input[..take], limit)
                    .await
                    .map_err(|_| Broken::Sink)?;
                from.at += take;
                body.passed(take);
            }
        } else {
            scratch.clear();
            from.at += body
                .feed(input, scratch)
                .map_err(|why| Broken::Source(why.into()))?;
            if !scratch.is_empty() {
                write_all(to, scratch, limit)
                    .await
                    .map_err(|_| Broken::Sink)?;
            }
        }
        if body.done() {
            return Ok(Relayed {
                bytes: body.bytes - first,
                clean: from.at == from.buf.len(),
            });
        }
        let n = match from.refill().await {
            Err(Broken::Ended) if matches!(body.kind, Kind::UntilClose) => 0,
            other => other?,
        };
        if n == 0 {
            if !matches!(body.kind, Kind::UntilClose) {
                return Err(Broken::Source("closed before the end of the body".into()));
            }
            // The end of a close-delimited body is the end of the
            // connection; it goes on as a chunked body's last chunk.
            write_all(to, b"0\r\n\r\n", limit)
                .await
                .map_err(|_| Broken::Sink)?;
            return Ok(Relayed {
                bytes: body.bytes - first,
                clean: false,
            });
        }
    }
}

/// Appends `data` as one chunk.
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut n = data.len();
    let mut i = hex.len();
    while n > 0 || i == hex.len() {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Where the chunked decoder is (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size { n: u64, digits: u8 },
    Ext { n: u64 },
    SizeLf { n: u64 },
    Data { left: u64 },
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Chunk extensions and trailers are dropped, not passed on, but still
/// read: past these many bytes in one body they are refused, so a peer
/// cannot keep a connection busy on framing that carries nothing (hyper
/// holds extensions to the same bound).
const MAX_EXTENSIONS: u32 = 16 * 1024;
const MAX_TRAILERS: u32 = 16 * 1024;

/// A chunked-coding decoder that re-encodes as it goes: the data of each
/// input chunk becomes an output chunk of the router's own framing.
#[derive(Debug)]
pub struct Dechunk {
    state: State,
    data: u64,
    /// Extension and trailer bytes read so far.
    extensions: u32,
    trailers: u32,
}

impl Default for Dechunk {
    fn default() -> Self {
        Self {
            state: State::Size { n: 0, digits: 0 },
            data: 0,
            extensions: 0,
            trailers: 0,
        }
    }
}

impl Dechunk {
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes decoded since the last call.
    pub fn take_data_count(&mut self) -> u64 {
        std::mem::take(&mut self.data)
    }

    /// Decodes what `input` holds, appending the re-encoded body to `out`;
    /// how many bytes of `input` it used (all of them unless the body
    /// ended inside it).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::Size { n, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if digits == 15 {
                            return Err("chunk size too large");
                        }
                        let d = (b as char).to_digit(16).unwrap_or(0);
                        State::Size {
                            n: n * 16 + u64::from(d),
                            digits: digits + 1,
                        }
                    }
                    _ if digits == 0 => return Err("chunk size missing"),
                    b';' | b' ' | b'\t' => State::Ext { n },
                    b'\r' => State::SizeLf { n },
                    _ => return Err("malformed chunk size"),
                },
                State::Ext { n } => {
                    self.extensions += 1;
                    if self.extensions > MAX_EXTENSIONS {
                        return Err("chunk extensions too large");
                    }
                    match b {
                        b'\r' => State::SizeLf { n },
                        b'\t' | 0x20..=0x7e | 0x80..=0xff => State::Ext { n },
                        _ => return Err("malformed chunk extension"),
                    }
                }
                State::SizeLf { n } => match b {
                    b'\n' if n == 0 => State::TrailerStart,
                    b'\n' => State::Data { left: n },
                    _ => return Err("chunk size line not ended by CRLF"),
                },
                State::Data { left } => {
                    let take = (left as usize).min(input.len() - i);
                    chunk(out, &input[i..i + take]);
                    self.data += take as u64;
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size { n: 0, digits: 0 },
                State::DataCr | State::DataLf => return Err("chunk data not ended by CRLF"),
                State::TrailerStart if b == b'\r' => State::EndLf,
                State::TrailerStart | State::TrailerLine => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err("trailer section too large");
                    }
                    match b {
                        b'\r' => State::TrailerLf,
                        b'\n' => return Err("bare LF in trailer section"),
                        _ => State::TrailerLine,
                    }
                }
                State::TrailerLf if b == b'\n' => State::TrailerStart,
                State::EndLf if b == b'\n' => {
                    out.extend_from_slice(b"0\r\n\r\n");
                    self.state = State::Done;
                    return Ok(i + 1);
                }
                State::TrailerLf | State::EndLf => return Err("trailer line not ended by CRLF"),
                State::Done => return Ok(i),
            };
            i += 1;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Result<(Vec<u8>, usize), &'static str> {
        let mut d = Dechunk::default();
        let mut out = Vec::new();
        let mut used = 0;
        for p in input.chunks(piece) {
            used += d.feed(p, &mut out)?;
            if d.done() {
                return Ok((out, used));
            }
        }
        Err("unfinished")
    }

    /// The data a chunked body carries, decoded naively.
    fn data_of(encoded: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = encoded;
        loop {
            let line = rest.iter().position(|&b| b == b'\r').unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap(), 16).unwrap();
            rest = &rest[line + 2..];
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n + 2..];
        }
    }

    #[test]
    fn re_encodes_at_every_split() {
        let input = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for piece in 1..input.len() {
            let (out, used) = decode_in_pieces(input, piece).unwrap();
            assert_eq!(data_of(&out), b"hello0123456789", "piece {piece}");
            assert!(out.ends_with(b"0\r\n\r\n"));
            let _ = used;
        }
        let mut d = Dechunk::default();
        let mut out = Vec::new();
        let used = d.feed(input, &mut out).unwrap();
        assert_eq!(&input[used..], b"NEXT");
    }

    #[test]
    fn refuses_malformed_chunks() {
        for bad in [
            &b"\r\n"[..],
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"10000000000000000\r\n",
            b"0\r\nx: 1\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            &[b"5;".as_slice(), &[b'e'; 20_000], b"\r\nhello\r\n0\r\n\r\n"].concat(),
            &[b"0\r\nx: ".as_slice(), &[b't'; 20_000], b"\r\n\r\n"].concat(),
        ] {
            assert!(
                decode_in_pieces(bad, bad.len()).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunk_headers_are_hex() {
        let mut out = Vec::new();
        chunk(&mut out, &[0u8; 255]);
        assert!(out.starts_with(b"ff\r\n"));
        out.clear();
        chunk(&mut out, b"");
        assert!(out.is_empty());
    }
}
