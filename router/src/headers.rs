//! Header rewriting between client and backend: hop-by-hop removal
//! (RFC 9110 §7.6.1), forwarding headers and the request id.

use http::{HeaderMap, HeaderName, HeaderValue, header};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static SELECTED: HeaderName =
    HeaderName::from_static(switchyard_core::names::headers::SELECTED_DEPLOYMENT);
pub static ACTIVE: HeaderName =
    HeaderName::from_static(switchyard_core::names::headers::ACTIVE_DEPLOYMENT);
pub static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that describe one connection, never the message (RFC 9110
/// §7.6.1), plus `Proxy-Connection`, which old clients still send.
fn fixed_hop_by_hop() -> [&'static HeaderName; 9] {
    [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
    ]
}

pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named by Connection are hop-by-hop too. Collected first
    // because removing while iterating the map is not possible.
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in fixed_hop_by_hop() {
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
    if headers.contains_key(&X_FORWARDED_FOR) {
        let mut xff = String::with_capacity(64);
        for prior in headers.get_all(&X_FORWARDED_FOR) {
            if let Ok(p) = prior.to_str() {
                xff.push_str(p.trim());
                xff.push_str(", ");
            }
        }
        xff.push_str(peer.to_str().unwrap_or_default());
        if let Ok(v) = HeaderValue::try_from(xff) {
            headers.insert(&X_FORWARDED_FOR, v);
        }
    } else {
        headers.insert(&X_FORWARDED_FOR, peer.clone());
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
    if let Some(v) = headers.get(&X_REQUEST_ID)
        && (1..=128).contains(&v.len())
        && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return v.clone();
    }
    let id = new_request_id();
    headers.insert(&X_REQUEST_ID, id.clone());
    id
}

pub fn new_request_id() -> HeaderValue {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
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
