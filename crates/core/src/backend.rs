//! The one rule for a deployment's backend URL, shared by the CLI that
//! records it and the router that dials it, so a URL one accepts the other
//! never refuses.
//!
//! A backend sits on a private network and is spoken to in plain HTTP/1.1:
//! the URL is `http://host[:port]`, with at most a trailing `/`. A path is
//! refused rather than dropped: the router forwards the client's own path
//! unchanged (and the janitor calls `/_pulse/...` at the root), so a base
//! path could only be ignored, which is worse than an error. Credentials
//! are refused too: nothing would send them, and they would be printed in
//! every `status` (errors show the URL with its userinfo as `***`).

use std::fmt;

/// A validated backend base URL: `http://` plus an authority, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUrl {
    /// `host[:port]` as written (a bracketed IPv6 literal keeps its brackets).
    authority: String,
}

/// Why a backend URL was refused. Its message shows the URL redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidBackendUrl {
    shown: String,
    reason: &'static str,
}

impl fmt::Display for InvalidBackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend URL {:?} {}", self.shown, self.reason)
    }
}

impl std::error::Error for InvalidBackendUrl {}

impl BackendUrl {
    pub fn parse(raw: &str) -> Result<Self, InvalidBackendUrl> {
        let fail = |reason| InvalidBackendUrl {
            shown: crate::redact::url(raw),
            reason,
        };
        let Some(rest) = raw
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &raw[7..])
        else {
            return Err(fail(
                "must start with http:// (backends are reached in plain HTTP on a private network)",
            ));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(fail(
                "must not carry a user or password (nothing would send them)",
            ));
        }
        if !tail.is_empty() && tail != "/" {
            return Err(fail(
                "must not have a path, query or fragment: the router forwards each request's own path, so give only http://host:port",
            ));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| fail("has no host"))?;
        if !host_is_valid(host) {
            return Err(fail("has a host that is not a DNS name or IP address"));
        }
        if let Some(port) = port {
            match port.parse::<u16>() {
                Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
                _ => return Err(fail("has a port that is not a number from 1 to 65535")),
            }
        }
        Ok(Self {
            authority: authority.to_ascii_lowercase(),
        })
    }

    /// `host[:port]`, what the router dials and sends as `Host`.
    pub fn authority(&self) -> &str {
        &self.authority
    }
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority)
    }
}

/// Splits `host[:port]`, keeping an IPv6 literal's brackets on the host.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, after) = authority.split_at(close + 1);
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    (!host.is_empty()).then_some((host, port))
}

fn host_is_valid(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_authorities_are_accepted() {
        for (raw, authority) in [
            (
                "http://app.railway.internal:8000",
                "app.railway.internal:8000",
            ),
            ("http://127.0.0.1:9001/", "127.0.0.1:9001"),
            ("HTTP://Example.COM", "example.com"),
            ("http://[::1]:8080", "[::1]:8080"),
            ("http://[::1]", "[::1]"),
            ("http://my_service:80", "my_service:80"),
        ] {
            let url = BackendUrl::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(url.authority(), authority);
            assert_eq!(url.to_string(), format!("http://{authority}"));
        }
    }

    #[test]
    fn credentials_are_refused_and_never_shown() {
        let err = BackendUrl::parse("http://u:hunter2@127.0.0.1:9001").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("***"), "{text}");
        assert!(text.contains("user or password"), "{text}");
    }

    #[test]
    fn paths_queries_and_fragments_are_refused() {
        for raw in [
            "http://h:1/app",
            "http://h:1/app/",
            "http://h:1?x=1",
            "http://h:1#f",
            "http://h:1//",
        ] {
            let err = BackendUrl::parse(raw).unwrap_err().to_string();
            assert!(err.contains("path"), "{raw}: {err}");
        }
    }

    #[test]
    fn other_schemes_hosts_and_ports_are_refused() {
        for raw in [
            "https://h:1",
            "h:1",
            "",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:65536",
            "http://h:+80",
            "http://h:",
            "http://h h:1",
            "http://h..x:1",
            "http://[nothex]:1",
            "http://[::1]x",
        ] {
            assert!(BackendUrl::parse(raw).is_err(), "{raw} was accepted");
        }
    }
}
