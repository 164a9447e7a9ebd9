//! Decides whether a request path may be forwarded from the public side.
//!
//! The `/_pulse/internal` block must hold for the path *as the backend will
//! see it*: percent-decoded, repeated slashes collapsed, `.` and `..`
//! resolved (RFC 3986 §5.2.4). So the router checks the normalized form and
//! forwards exactly that form. Encodings that backends disagree about (an
//! encoded `/`, `\`, `.` or `%`, control bytes) make the path ambiguous; those
//! requests are refused with 400 rather than guessed at.

use std::borrow::Cow;

#[derive(Debug, PartialEq, Eq)]
pub enum PathVerdict<'a> {
    /// Forward this path (the input itself when it was already normal).
    Forward(Cow<'a, str>),
    /// Under the internal prefix: never forwarded.
    Internal,
    /// Under the router's own prefix: answered by the router, never
    /// forwarded. Holds the rest of the path after the prefix.
    Own(String),
    Ambiguous(&'static str),
}

/// The verdict on `raw`, with the internal prefix (never forwarded) and the
/// router's own prefix (answered here) judged on the same normalized,
/// decoded path.
pub fn check<'a>(raw: &'a str, internal_prefix: &str, own_prefix: Option<&str>) -> PathVerdict<'a> {
    if !raw.starts_with('/') {
        return PathVerdict::Ambiguous("path must start with '/'");
    }
    let bytes = raw.as_bytes();
    let mut has_escapes = false;
    // An empty segment or a dot segment: found in the same pass.
    let mut needs_normalizing = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' => {
                let next = &bytes[i + 1..];
                let segment = next.split(|&c| c == b'/').next().unwrap_or_default();
                needs_normalizing |= !next.is_empty() && matches!(segment, b"" | b"." | b"..");
                i += 1;
            }
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match decoded {
                    None => return PathVerdict::Ambiguous("malformed percent-encoding"),
                    Some(b'/' | b'\\' | b'.' | b'%') => {
                        return PathVerdict::Ambiguous("encoded '/', '\\', '.' or '%' in path");
                    }
                    Some(c) if c < 0x20 || c == 0x7f => {
                        return PathVerdict::Ambiguous("encoded control character in path");
                    }
                    Some(_) => has_escapes = true,
                }
                i += 3;
            }
            b'\\' => return PathVerdict::Ambiguous("backslash in path"),
            _ => i += 1,
        }
    }
    let path: Cow<'a, str> = if needs_normalizing {
        Cow::Owned(normalize(raw))
    } else {
        Cow::Borrowed(raw)
    };
    let decoded = if has_escapes {
        percent_encoding::percent_decode_str(&path).decode_utf8_lossy()
    } else {
        Cow::Borrowed(&*path)
    };
    // Path parameters (`;x=1` in a segment): Tomcat, Jetty and some
    // Spring and ASP.NET setups drop them before routing, so the reserved
    // prefixes are judged without them too, and a dot segment carrying
    // one (`..;`), which those servers resolve, is too ambiguous to pass.
    let bare: Cow<'_, str> = if decoded.contains(';') {
        let mut out = String::with_capacity(decoded.len());
        for seg in decoded.split('/').skip(1) {
            let name = seg.split(';').next().unwrap_or("");
            if seg.contains(';') && matches!(name, "." | "..") {
                return PathVerdict::Ambiguous("path parameter on a dot segment");
            }
            out.push('/');
            out.push_str(name);
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(&*decoded)
    };
    if under(&bare, internal_prefix) {
        return PathVerdict::Internal;
    }
    if let Some(own) = own_prefix
        && under(&bare, own)
    {
        let rest = bare[own.trim_end_matches('/').len()..].to_string();
        return PathVerdict::Own(rest);
    }
    PathVerdict::Forward(path)
}

/// Whether `path` is `prefix` or below it, ignoring ASCII case: backends
/// on case-insensitive routers (ASP.NET, Express by default, IIS) serve
/// `/_PULSE/INTERNAL` as the internal path.
/// RFC 3986 §2.2-2.3: `unreserved / sub-delims`, the characters a
/// reg-name is made of and, with `:`, `@`, `/`, `?` and `%`, a path and
/// query.
pub fn unreserved_or_sub_delim(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match (path.get(..prefix.len()), path.get(prefix.len()..)) {
        (Some(head), Some(rest)) => {
            head.eq_ignore_ascii_case(prefix) && (rest.is_empty() || rest.starts_with('/'))
        }
        _ => false,
    }
}

/// Collapses empty segments and resolves dot segments; `..` never climbs
/// above the root.
fn normalize(raw: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = raw.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (n, seg) in segments.iter().enumerate() {
        match *seg {
            "" => trailing_slash = n == last,
            "." => trailing_slash = n == last,
            ".." => {
                out.pop();
                trailing_slash = n == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut path = String::with_capacity(raw.len());
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    if trailing_slash || path.is_empty() {
        path.push('/');
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/_pulse/internal";

    fn forwarded(raw: &str) -> String {
        match check(raw, P, None) {
            PathVerdict::Forward(p) => p.into_owned(),
            other => panic!("{raw}: expected forward, got {other:?}"),
        }
    }

    /// A path is rewritten exactly when it has an empty segment (`//`)
    /// or a dot segment, anywhere: every path of up to eight characters
    /// over `/`, `.` and `a`.
    #[test]
    fn reserved_prefixes_hold_against_case_and_path_parameters() {
        for raw in [
            "/_PULSE/INTERNAL/railway/reload",
            "/_Pulse/Internal",
            "/_pulse;x=1/internal/x",
            "/_pulse/internal;jsessionid=1/x",
        ] {
            assert_eq!(check(raw, P, None), PathVerdict::Internal, "{raw}");
        }
        for raw in ["/static/..;/_pulse/internal/x", "/a/.;x/b"] {
            assert!(
                matches!(check(raw, P, None), PathVerdict::Ambiguous(_)),
                "{raw}"
            );
        }
        assert_eq!(
            check("/_SWITCHYARD/client.js", P, Some("/_switchyard")),
            PathVerdict::Own("/client.js".into())
        );
        assert_eq!(
            forwarded("/shop;jsessionid=1/cart"),
            "/shop;jsessionid=1/cart"
        );
        assert_eq!(forwarded("/_pulsex/internal"), "/_pulsex/internal");
    }

    #[test]
    fn rewritten_exactly_when_it_has_empty_or_dot_segments() {
        fn walk(p: &mut String, depth: usize) {
            let expected = p.contains("//")
                || p.contains("/./")
                || p.contains("/../")
                || p.ends_with("/.")
                || p.ends_with("/..");
            let rewritten = matches!(
                check(p, "/_pulse/internal", None),
                PathVerdict::Forward(Cow::Owned(_))
            );
            assert_eq!(rewritten, expected, "{p:?}");
            if depth > 0 {
                for c in ['/', '.', 'a'] {
                    p.push(c);
                    walk(p, depth - 1);
                    p.pop();
                }
            }
        }
        walk(&mut "/".to_owned(), 7);
    }

    #[test]
    fn ordinary_paths_pass_untouched_and_unallocated() {
        for p in [
            "/",
            "/app",
            "/a/b/",
            "/_pulse/meta",
            "/_pulse/internals",
            "/caf%C3%A9",
            "/a.b/c..d",
        ] {
            assert!(
                matches!(check(p, P, None), PathVerdict::Forward(Cow::Borrowed(x)) if x == p),
                "{p}"
            );
        }
    }

    #[test]
    fn the_routers_own_prefix_is_reserved_in_every_spelling() {
        for p in [
            "/_switchyard/client.js",
            "//_switchyard//client.js",
            "/x/../_switchyard/client.js",
            "/%5Fswitchyard/client.js",
            "/_switchyard/./client.js",
            "/_sw%69tchyard/client.js",
        ] {
            assert_eq!(
                check(p, P, Some("/_switchyard")),
                PathVerdict::Own("/client.js".into()),
                "{p}"
            );
        }
        assert!(matches!(
            check("/_switchyardx/a", P, Some("/_switchyard")),
            PathVerdict::Forward(_)
        ));
        assert_eq!(
            check("/_pulse/internal/x", P, Some("/_switchyard")),
            PathVerdict::Internal
        );
    }

    #[test]
    fn internal_paths_are_blocked_in_every_spelling() {
        for p in [
            "/_pulse/internal",
            "/_pulse/internal/",
            "/_pulse/internal/railway/reload",
            "//_pulse//internal/railway/reload",
            "/x/../_pulse/internal/railway/reload",
            "/_pulse/./internal/railway/sessions",
            "/../../_pulse/internal",
            "/_pulse/%69nternal/railway/reload",
            "/%5Fpulse/internal",
            "/_pulse/x/..//internal",
        ] {
            assert_eq!(check(p, P, None), PathVerdict::Internal, "{p}");
        }
    }

    #[test]
    fn ambiguous_encodings_are_refused() {
        for p in [
            "/_pulse%2Finternal/x",
            "/_pulse/internal%2f",
            "/%2e%2e/_pulse/internal",
            "/_pulse/%252e",
            "/a%5Cb",
            "/a\\b",
            "/a%00",
            "/a%zz",
            "/a%4",
            "*",
        ] {
            assert!(
                matches!(check(p, P, None), PathVerdict::Ambiguous(_)),
                "{p}"
            );
        }
    }

    #[test]
    fn the_normalized_form_is_what_gets_forwarded() {
        assert_eq!(forwarded("//a///b"), "/a/b");
        assert_eq!(forwarded("/a/./b/../c"), "/a/c");
        assert_eq!(forwarded("/a/b/.."), "/a/");
        assert_eq!(forwarded("/.."), "/");
        assert_eq!(forwarded("/a//"), "/a/");
    }
}
