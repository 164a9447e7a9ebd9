//! Writing a head: fields, numbers, and the names the router treats
//! specially, compared without allocating.

use crate::request::fields::Fields;

/// A field name lowercased into `low`, when short enough to be one the
/// router treats specially (the longest is 19 bytes).
pub fn lower<'a>(name: &str, low: &'a mut [u8; 32]) -> Option<&'a str> {
    let b = name.as_bytes();
    if b.len() > low.len() {
        return None;
    }
    for (d, s) in low.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(&low[..b.len()]).ok()
}

/// Whether a `Connection` field of `fields` names `name`.
pub fn named_by_connection(fields: &[httparse::Header<'_>], name: &str) -> bool {
    fields.all("connection").any(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
    })
}

pub fn put(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
}

pub fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    put(out, &[name, b": ", value, b"\r\n"]);
}

pub fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
