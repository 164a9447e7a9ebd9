//! A request head as the engine reads it: httparse's parse, then the
//! framing rules a proxy holds stricter than an origin server, because a
//! message two parsers read differently is how requests get smuggled
//! (RFC 9112 §11.2). Anything ambiguous is refused and the connection
//! closed; nothing is repaired.

use http::StatusCode;

/// How the request's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// What the client expects before it sends its body (RFC 9110 §10.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Nothing,
    /// `100-continue`: the client waits for a 100 before its body.
    Continue,
    /// Anything else, which no server here can meet: 417.
    Other,
}

/// What the rest of the engine needs from the head's fields, found in one
/// pass over them.
#[derive(Debug)]
pub struct Facts<'b> {
    pub body: BodyKind,
    pub host: Option<&'b [u8]>,
    /// `Connection: close`: answer this one, then close.
    pub close: bool,
    /// `Connection` names something besides `close` and `keep-alive`:
    /// those fields are hop-by-hop too.
    pub connection_tokens: bool,
    pub upgrade: bool,
    pub expect: Expect,
    /// The client's request id when it is sane (1 to 128 visible bytes).
    pub request_id: Option<&'b [u8]>,
    /// An `X-Forwarded-For` is present (the peer is appended to it).
    pub forwarded_for: bool,
}

/// A head the router will not forward, and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub why: &'static str,
}

impl Refusal {
    pub const fn bad(why: &'static str) -> Self {
        Self::with(StatusCode::BAD_REQUEST, why)
    }

    pub const fn with(status: StatusCode, why: &'static str) -> Self {
        Self { status, why }
    }
}

const fn bad(why: &'static str) -> Refusal {
    Refusal::bad(why)
}

/// Every line ends in CRLF. httparse, like many parsers, also takes a
/// bare LF (RFC 9112 §2.2 allows it only as a tolerance); a proxy that
/// takes it while the server behind reads the line differently is a
/// smuggling vector, so it is refused.
pub fn lines_end_in_crlf(head: &[u8]) -> bool {
    let mut prev = 0u8;
    for &b in head {
        if b == b'\n' && prev != b'\r' {
            return false;
        }
        prev = b;
    }
    true
}

/// Content-Length: digits only (RFC 9110 §8.6), no sign, no list, at
/// most 19 of them so the sum cannot overflow.
pub fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Checks the fields of a request head and reads the facts forwarding
/// needs. `http10`: the request is HTTP/1.0, which has no
/// Transfer-Encoding (RFC 9112 §6.1).
pub fn facts<'b>(headers: &[httparse::Header<'b>], http10: bool) -> Result<Facts<'b>, Refusal> {
    let mut facts = Facts {
        body: BodyKind::None,
        host: None,
        close: false,
        connection_tokens: false,
        upgrade: false,
        expect: Expect::Nothing,
        request_id: None,
        forwarded_for: false,
    };
    let mut length: Option<u64> = None;
    let mut te_seen = false;
    let mut chunked_last = false;
    let mut chunked_count = 0;
    let mut unsupported = false;
    for h in headers {
        let name = h.name;
        let v = h.value;
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(bad("more than one Content-Length"));
            }
            length = Some(content_length(v).ok_or(bad("malformed Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te_seen = true;
            for coding in v.split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() {
                    return Err(bad("empty transfer coding"));
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked_count += 1;
                    chunked_last = true;
                } else {
                    unsupported = true;
                    chunked_last = false;
                }
            }
        } else if name.eq_ignore_ascii_case("host") {
            if facts.host.is_some() {
                return Err(bad("more than one Host header"));
            }
            facts.host = Some(v);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in v.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    facts.close = true;
                } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                    facts.connection_tokens = true;
                }
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            facts.upgrade = true;
        } else if name.eq_ignore_ascii_case("expect") {
            // RFC 9110 §10.1.1: 100-continue is the one expectation; an
            // HTTP/1.0 client's is ignored.
            facts.expect = match (
                v.trim_ascii().eq_ignore_ascii_case(b"100-continue"),
                facts.expect,
            ) {
                _ if http10 => Expect::Nothing,
                (true, Expect::Nothing | Expect::Continue) => Expect::Continue,
                _ => Expect::Other,
            };
        } else if name.eq_ignore_ascii_case("x-request-id") {
            if facts.request_id.is_none()
                && (1..=128).contains(&v.len())
                && v.iter().all(u8::is_ascii_graphic)
            {
                facts.request_id = Some(v);
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            facts.forwarded_for = true;
        }
    }
    if te_seen {
        if http10 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if length.is_some() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if unsupported {
            // RFC 9112 §6.1: a coding the server does not understand.
            return Err(Refusal {
                status: StatusCode::NOT_IMPLEMENTED,
                why: "transfer coding other than chunked",
            });
        }
        if !chunked_last || chunked_count != 1 {
            return Err(bad("chunked must be applied once, last"));
        }
        facts.body = BodyKind::Chunked;
    } else if let Some(n) = length.filter(|&n| n > 0) {
        facts.body = BodyKind::Length(n);
    }
    Ok(facts)
}

/// Whether the engine forwards this request target as it is: origin-form
/// made of the characters RFC 3986 allows in a path and query. Anything
/// else (absolute-form, `*`, a fragment, raw non-ASCII) goes the general
/// way, whose URI parser decides.
pub fn plain_target(target: &str) -> bool {
    target.starts_with('/')
        && target.bytes().all(|c| {
            crate::request::path::unreserved_or_sub_delim(c)
                || matches!(c, b':' | b'@' | b'/' | b'?' | b'%')
        })
}

/// The head's size as the limit counts it, the same sum the general path
/// makes: the target plus each field's name, value and four bytes.
pub fn counted_size(target: &str, headers: &[httparse::Header<'_>]) -> usize {
    headers
        .iter()
        .fold(target.len(), |n, h| n + h.name.len() + h.value.len() + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Facts<'_>, Refusal> {
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut slots);
        req.parse(raw).expect("parses");
        let http10 = req.version == Some(0);
        facts(req.headers, http10)
    }

    fn refused(raw: &str) -> StatusCode {
        parse(raw.as_bytes()).expect_err(raw).status
    }

    #[test]
    fn expectations() {
        let expect = |raw: &str| parse(raw.as_bytes()).expect(raw).expect;
        assert_eq!(expect("GET / HTTP/1.1\r\n\r\n"), Expect::Nothing);
        assert_eq!(
            expect("PUT / HTTP/1.1\r\nexpect: 100-Continue\r\n\r\n"),
            Expect::Continue
        );
        assert_eq!(
            expect("PUT / HTTP/1.1\r\nexpect: 100-continue, x\r\n\r\n"),
            Expect::Other
        );
        assert_eq!(
            expect("PUT / HTTP/1.1\r\nexpect: 100-continue\r\nexpect: 100-continue\r\n\r\n"),
            Expect::Continue
        );
        // RFC 9110 §10.1.1: an HTTP/1.0 client's expectation is ignored.
        assert_eq!(
            expect("PUT / HTTP/1.0\r\nexpect: 100-continue\r\n\r\n"),
            Expect::Nothing
        );
    }

    #[test]
    fn framing() {
        let ok = |raw: &str| parse(raw.as_bytes()).expect(raw).body;
        assert_eq!(ok("GET / HTTP/1.1\r\nhost: a\r\n\r\n"), BodyKind::None);
        assert_eq!(
            ok("POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n"),
            BodyKind::None
        );
        assert_eq!(
            ok("POST / HTTP/1.1\r\ncontent-length: 12\r\n\r\n"),
            BodyKind::Length(12)
        );
        assert_eq!(
            ok("POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n"),
            BodyKind::Chunked
        );
        let bad = StatusCode::BAD_REQUEST;
        for raw in [
            "POST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: 1, 1\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: +1\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: 1 2\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: 0x10\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: ,chunked\r\n\r\n",
            "POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
        ] {
            assert_eq!(refused(raw), bad, "{raw}");
        }
        for raw in [
            "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked, identity\r\n\r\n",
        ] {
            assert_eq!(refused(raw), StatusCode::NOT_IMPLEMENTED, "{raw}");
        }
    }

    #[test]
    fn lines() {
        assert!(lines_end_in_crlf(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
        assert!(!lines_end_in_crlf(b"GET / HTTP/1.1\nhost: a\r\n\r\n"));
        assert!(!lines_end_in_crlf(b"GET / HTTP/1.1\r\nhost: a\n\r\n"));
    }

    #[test]
    fn targets() {
        assert!(plain_target("/a/b?c=d&e=%20"));
        for t in [
            "*",
            "http://a/",
            "/a#b",
            "/a b",
            "/a\"",
            "/ä",
            "/a{b}",
            "/a\\b",
        ] {
            assert!(!plain_target(t), "{t}");
        }
    }
}
