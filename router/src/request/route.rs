//! Where a request goes: the routing decision both request paths share
//! (the HTTP/1 engine and the general path), read from either parser's
//! fields, and the check of the host the client addressed.

use std::{borrow::Cow, net::SocketAddr, sync::Arc};

use http::{HeaderValue, Method, uri::PathAndQuery};

use crate::{
    error::RouterError,
    request::{
        fields::Fields,
        path::unreserved_or_sub_delim,
        pick::{self, Choice},
    },
    shared::Shared,
    state::table::Target,
};

/// Where a request goes once the router has decided.
pub(crate) struct Decision {
    pub target: Arc<Target>,
    pub pinned: bool,
    /// The normalized path, when it differs from what the client sent.
    pub path: Option<PathAndQuery>,
    /// The host the client addressed, checked.
    pub host: Option<HeaderValue>,
    /// An unpinned document load with cookie affinity on: the response
    /// (unless publicly cacheable) pins the browser here.
    pub set_cookie: bool,
    /// The active deployment's id, told to pinned pages.
    pub active: Option<HeaderValue>,
    /// What to do with the page cookie (`pick::PAGE_COOKIE`).
    pub page_cookie: PageCookie,
    /// The request's own pin, kept where the response hands it back: a
    /// strict-mode token (its label and page cookie repeat it, so access
    /// never outlives the token it came from) or a page cookie to set.
    pub pin: Option<String>,
}

/// The page cookie on a response: set by a document load pinned to a
/// deployment unpinned traffic does not reach, so the page's own
/// subresources follow it; cleared by any other document load that still
/// carries one; and a subresource it routed varies on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageCookie {
    Untouched,
    Set,
    Clear,
    Routed,
}

/// `uri-host [ ":" port ]` and nothing else (RFC 9110 §7.2, RFC 3986
/// §3.2.2-3): a bracketed IPv6 literal or a reg-name, no userinfo, a port
/// of digits only. Checked byte by byte: parsing it into an `Authority`
/// would copy it to the heap for every request.
pub(crate) fn check_host(s: &str) -> Result<(), RouterError> {
    const BAD: RouterError = RouterError::BadRequest("malformed Host");
    let b = s.as_bytes();
    let (host, port) = if let Some(inner) = b.strip_prefix(b"[") {
        // IPv6address: hex digits, colons, and dots for an embedded IPv4
        // tail. IPvFuture and zone ids (RFC 6874) are not for Host.
        let close = inner.iter().position(|&c| c == b']').ok_or(BAD)?;
        let literal = &inner[..close];
        if !literal.contains(&b':')
            || !literal
                .iter()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'))
        {
            return Err(BAD);
        }
        (&b[..close + 2], &inner[close + 1..])
    } else {
        let split = b.iter().position(|&c| c == b':').unwrap_or(b.len());
        let (name, rest) = b.split_at(split);
        // reg-name = *( unreserved / sub-delims ); percent-encoding is
        // refused, as the `http` crate refuses it in an authority.
        if !name.iter().all(|&c| unreserved_or_sub_delim(c)) {
            return Err(BAD);
        }
        (name, rest)
    };
    if host.is_empty() {
        return Err(BAD);
    }
    match port.split_first() {
        None => Ok(()),
        Some((b':', digits)) if digits.iter().all(u8::is_ascii_digit) => Ok(()),
        Some(_) => Err(BAD),
    }
}

/// What routing reads of a request, whichever parser holds it.
pub(crate) struct Ask<'r, H: Fields + ?Sized> {
    pub peer: SocketAddr,
    pub method: &'r Method,
    pub query: Option<&'r str>,
    pub headers: &'r H,
    /// A stale pin falls back to the active deployment (a WebSocket that
    /// asked for it) instead of being refused.
    pub stale_to_active: bool,
    pub host: Option<HeaderValue>,
    pub path: Option<PathAndQuery>,
}

/// Where routing sent a request.
pub(crate) enum Decided {
    Go(Decision),
    /// The pin names a deployment that can no longer serve; the caller
    /// answers (`respond::stale_affinity`).
    Stale,
}

/// Picks the target. Synchronous: the table guard never lives across an
/// await.
pub(crate) fn decide<H: Fields + ?Sized>(
    shared: &Shared,
    ask: Ask<'_, H>,
) -> Result<Decided, RouterError> {
    let config = &shared.config;
    let names = &config.names;
    let table = shared.table.load();
    let Some(table) = table.as_ref() else {
        return Err(RouterError::NoSnapshot);
    };
    let load = pick::Load::of(ask.method, ask.headers);
    let pin = pick::pinned_id(ask.query, ask.headers, names, load)
        .map_err(|_| RouterError::ConflictingPins)?;
    let set_cookie = names.cookie.is_some() && load == pick::Load::Document && pin.is_none();
    let key = || {
        pick::rollout_key(
            ask.headers,
            config.rollout_key_header.as_deref(),
            ask.peer.ip(),
        )
    };
    let choice = match pin.as_deref() {
        None => pick::choose(table, None, key),
        Some(pin) => match config.pins.resolve(pin) {
            Some(id) => pick::honour_age(pick::choose(table, Some(id), key), &config.pins),
            None => Choice::Stale,
        },
    };
    let (target, pinned) = match choice {
        Choice::Pinned(t) => (t.clone(), true),
        Choice::Unpinned(t) => (t.clone(), false),
        Choice::Stale => {
            let Some(active) = &table.active else {
                return Err(RouterError::DeploymentNotFound);
            };
            if !ask.stale_to_active {
                return Ok(Decided::Stale);
            }
            (active.clone(), false)
        }
        Choice::NoActive => return Err(RouterError::DeploymentNotFound),
    };
    let page_cookie = match load {
        pick::Load::Document
            if pinned
                && table
                    .active
                    .as_ref()
                    .is_none_or(|a| !Arc::ptr_eq(a, &target)) =>
        {
            PageCookie::Set
        }
        pick::Load::Document if pick::has_page_cookie(ask.headers) => PageCookie::Clear,
        pick::Load::Subresource if pinned && pick::has_page_cookie(ask.headers) => {
            PageCookie::Routed
        }
        _ => PageCookie::Untouched,
    };
    let keep_pin = pinned && (config.pins.strict() || page_cookie == PageCookie::Set);
    Ok(Decided::Go(Decision {
        target,
        pinned,
        path: ask.path,
        host: ask.host,
        set_cookie,
        active: table.active_id.clone(),
        page_cookie,
        pin: keep_pin.then(|| pin.map(Cow::into_owned)).flatten(),
    }))
}

#[cfg(test)]
mod tests {
    use super::check_host;

    #[test]
    fn hosts() {
        for good in [
            "example.com",
            "example.com:8080",
            "example.com:",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "[2001:db8::7]",
            "[::ffff:192.0.2.1]:80",
            "my_host.local",
            "xn--bcher-kva.example",
        ] {
            assert!(check_host(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ":80",
            "user@example.com",
            "example.com:80:81",
            "example.com:http",
            "exa mple.com",
            "example.com/",
            "example.com?x",
            "example.com#x",
            "ex%41mple.com",
            "[::1",
            "::1]",
            "[]",
            "[example.com]",
            "[::1]x",
            "[::1]:8a",
            "a[::1]",
            "[fe80::1%25eth0]",
            "ex\"ample",
            "exämple.com",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    /// Every host this check lets through, `http`'s `Authority` parser
    /// accepts too (so the router never forwards what `http` would call
    /// malformed), over every string of up to four characters drawn from
    /// the characters that matter.
    #[test]
    fn never_looser_than_the_http_crate() {
        const ALPHABET: &[u8] = b"a1.-_~!:;[]@%/?# \"<>\\^`{|}\x7f\xc3";
        let mut s = Vec::new();
        fn walk(s: &mut Vec<u8>, depth: usize) {
            if let Ok(text) = std::str::from_utf8(s)
                && check_host(text).is_ok()
            {
                assert!(
                    text.parse::<http::uri::Authority>().is_ok(),
                    "{text:?} passes check_host but not Authority"
                );
            }
            if depth == 0 {
                return;
            }
            for &c in ALPHABET {
                s.push(c);
                walk(s, depth - 1);
                s.pop();
            }
        }
        walk(&mut s, 4);
    }
}
