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
pub fn is_fixed_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
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

/// Forwarding headers a client may send that only a trusted proxy in
/// front may set; without `--trust-forwarded` they are dropped, as
/// `X-Forwarded-Proto` and `-Host` are replaced.
pub fn is_forwarding(name: &str) -> bool {
    matches!(
        name,
        "forwarded" | "x-real-ip" | "x-forwarded-port" | "x-forwarded-prefix"
    )
}

/// What a request's rewrite takes out besides the hop-by-hop headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestRules<'a> {
    /// The pin header: a `Connection` token never removes it, and its
    /// underscore spelling (which CGI, WSGI, PHP and Rack read as the same
    /// header) never reaches the backend.
    pub pin_header: &'a str,
    /// Client-sent forwarding headers are kept (a trusted proxy set them).
    pub trust_forwarded: bool,
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1); for a request (`rules`),
/// also what only a trusted proxy may say and the pin's underscore
/// spelling, so the backend cannot read a pin other than the one that
/// routed.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, rules: Option<RequestRules<'_>>) {
    // One pass over the names finds them (most messages carry none, and
    // an empty Vec does not allocate), where removing each by name would
    // hash all of them every time.
    let drop = |n: &HeaderName| {
        is_fixed_hop_by_hop(n.as_str())
            || rules.is_some_and(|r| {
                (!r.trust_forwarded && is_forwarding(n.as_str()))
                    || (n.as_str().contains('_') && same_but_underscores(n.as_str(), r.pin_header))
            })
    };
    let mut named: Vec<HeaderName> = headers.keys().filter(|n| drop(n)).cloned().collect();
    if named.is_empty() {
        return;
    }
    // Headers named by Connection are hop-by-hop too, except what the
    // router itself routes and traces by. Collected first because removing
    // while iterating the map is not possible.
    let kept =
        |n: &HeaderName| n == X_REQUEST_ID || rules.is_some_and(|r| n.as_str() == r.pin_header);
    named.extend(
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .filter(|n| !kept(n)),
    );
    for name in named {
        headers.remove(name);
    }
}

/// `a` is `b` with some `-` written as `_` (header names are lowercase).
pub fn same_but_underscores(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (x == b'_' && y == b'-'))
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
pub fn publicly_cacheable<H: crate::request::fields::Fields + ?Sized>(headers: &H) -> bool {
    headers
        .all("cache-control")
        .filter_map(crate::request::fields::visible)
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
    HeaderValue::from_bytes(&fresh_id()).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// A new request id's 32 hex digits, on the stack.
pub fn fresh_id() -> [u8; 32] {
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
    buf
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
        strip_hop_by_hop(&mut h, None);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn a_request_keeps_its_pin_and_id_and_loses_what_only_a_proxy_may_say() {
        let sent = [
            ("connection", "x-pulse-deployment, x-request-id, x-secret"),
            ("x-pulse-deployment", "v1"),
            ("x-request-id", "abc"),
            ("x-secret", "1"),
            ("x_pulse_deployment", "v2"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/admin"),
            ("accept", "*/*"),
        ];
        let rules = |trust_forwarded| RequestRules {
            pin_header: "x-pulse-deployment",
            trust_forwarded,
        };
        let mut h = map(&sent);
        strip_hop_by_hop(&mut h, Some(rules(false)));
        let mut left: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        left.sort();
        assert_eq!(left, ["accept", "x-pulse-deployment", "x-request-id"]);
        let mut h = map(&sent);
        strip_hop_by_hop(&mut h, Some(rules(true)));
        assert!(h.contains_key("forwarded") && h.contains_key("x-real-ip"));
        assert!(!h.contains_key("x_pulse_deployment"));
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
