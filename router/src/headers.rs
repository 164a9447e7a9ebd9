//! Header rewriting between client and backend: hop-by-hop removal
//! (RFC 9110 §7.6.1), forwarding headers and the request id.

use std::cell::Cell;

use http::{
    HeaderMap, HeaderName, HeaderValue,
    header::{self, Entry},
};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static SELECTED: HeaderName =
    HeaderName::from_static(switchyard_core::names::headers::SELECTED_DEPLOYMENT);
pub static ACTIVE: HeaderName =
    HeaderName::from_static(switchyard_core::names::headers::ACTIVE_DEPLOYMENT);
pub static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Headers that describe one connection, never the message (RFC 9110
/// §7.6.1), plus `Proxy-Connection`, which old clients still send.
fn is_fixed_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authenticate"
            | "proxy-authorization"
    )
}

pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names finds them (most messages carry none, and
    // an empty Vec does not allocate), where removing each of the nine by
    // name would hash all of them every time.
    let mut named: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_fixed_hop_by_hop(n))
        .cloned()
        .collect();
    if named.is_empty() {
        return;
    }
    // Headers named by Connection are hop-by-hop too. Collected first
    // because removing while iterating the map is not possible.
    named.extend(
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok()),
    );
    for name in named {
        headers.remove(name);
    }
}

/// Adds the forwarding headers a backend needs to know who asked.
/// `X-Forwarded-For` appends the peer to the client's list so operators can
/// pick the first hop they trust.
/// `peer` is the client's address as a header value, made once per
/// connection: a request with no `X-Forwarded-For` of its own (the usual
/// case) then costs no formatting and no allocation.
pub fn add_forwarded(
    headers: &mut HeaderMap,
    peer: &HeaderValue,
    host: Option<HeaderValue>,
    trust_forwarded: bool,
) {
    // One lookup per header: `entry` and `insert` find the slot once.
    match headers.entry(&X_FORWARDED_FOR) {
        Entry::Vacant(slot) => {
            slot.insert(peer.clone());
        }
        Entry::Occupied(mut slot) => {
            let mut xff = String::with_capacity(64);
            for prior in slot.iter() {
                if let Ok(p) = prior.to_str() {
                    xff.push_str(p.trim());
                    xff.push_str(", ");
                }
            }
            xff.push_str(peer.to_str().unwrap_or_default());
            if let Ok(v) = HeaderValue::try_from(xff) {
                slot.insert(v);
            }
        }
    }
    if !(trust_forwarded && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !(trust_forwarded && headers.contains_key(&X_FORWARDED_HOST)) {
        match host {
            Some(h) => {
                headers.insert(&X_FORWARDED_HOST, h);
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
}

/// Whether a shared cache may store the response (RFC 9111 §3, §5.2.2):
/// `public` or `s-maxage`. Such a response never pins a browser, or the
/// cache would hand one user's cookie to everyone.
pub fn publicly_cacheable(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().split('=').next().unwrap_or("").trim())
        .any(|d| d.eq_ignore_ascii_case("public") || d.eq_ignore_ascii_case("s-maxage"))
}

/// The request head's size as the limit counts it: target plus every
/// header line. A loop over the parsed headers, no allocation.
pub fn head_size(uri: &http::Uri, headers: &HeaderMap) -> usize {
    let target = uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    headers
        .iter()
        .fold(target, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

/// Keeps a sane client-supplied request id, else makes one.
pub fn request_id(headers: &mut HeaderMap) -> HeaderValue {
    match headers.entry(&X_REQUEST_ID) {
        Entry::Occupied(mut slot) => {
            let v = slot.get();
            if (1..=128).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_graphic()) {
                return v.clone();
            }
            let id = new_request_id();
            slot.insert(id.clone());
            id
        }
        Entry::Vacant(slot) => slot.insert(new_request_id()).clone(),
    }
}

/// 32 hex digits. Request ids only need to be unique, not unguessable, so
/// they come from a per-thread wyrand generator seeded from the OS-seeded
/// `rand::rng()`: a few multiplications instead of a ChaCha block.
pub fn new_request_id() -> HeaderValue {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(rand::random());
    }
    fn next(state: &Cell<u64>) -> u64 {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }
    let bits = STATE.with(|s| (u128::from(next(s)) << 64) | u128::from(next(s)));
    let mut buf = [0u8; 32];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((bits >> (i * 4)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-connection", "keep-alive"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn forwarded_for_appends_the_peer() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer = HeaderValue::from_static("10.0.0.2");
        add_forwarded(
            &mut h,
            &peer,
            Some(HeaderValue::from_static("app.example")),
            false,
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.0.0.2");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.example");

        let mut h = map(&[("x-forwarded-proto", "https")]);
        add_forwarded(&mut h, &peer, None, true);
        assert_eq!(h["x-forwarded-for"], "10.0.0.2");
        assert_eq!(
            h["x-forwarded-proto"], "https",
            "kept behind a trusted edge"
        );
    }

    #[test]
    fn request_ids() {
        let mut h = map(&[("x-request-id", "abc-123")]);
        assert_eq!(request_id(&mut h), "abc-123");
        let mut h = map(&[("x-request-id", "has space")]);
        let id = request_id(&mut h);
        assert_eq!(id.len(), 32);
        assert_eq!(h["x-request-id"], id);
    }
}
