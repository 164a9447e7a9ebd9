//! Reading request header fields the same way whichever parser holds them:
//! hyper's `HeaderMap` (HTTP/2, and HTTP/1 connections the engine handed
//! over) or the HTTP/1 engine's parsed slices, which point into the
//! connection's read buffer. Routing decisions are written once, against
//! this trait.

use http::{HeaderMap, HeaderValue};

/// Header fields by lowercase name.
pub trait Fields {
    /// Every value of `name`, in the order received.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;

    /// The first value of `name`.
    fn first<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.all(name).next()
    }
}

impl Fields for HeaderMap {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).iter().map(HeaderValue::as_bytes)
    }
}

impl Fields for [httparse::Header<'_>] {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// `v` as text when it is visible ASCII, spaces and tabs: what
/// `HeaderValue::to_str` accepts, so both representations read alike.
pub fn visible(v: &[u8]) -> Option<&str> {
    if v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}
