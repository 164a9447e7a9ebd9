//! Keeping secrets out of logs and error messages: every value a program
//! prints about its configuration goes through here first.

use std::fmt;

/// A URL with its userinfo (user and password) replaced by `***`, so
/// `redis://:hunter2@host:6379` prints as `redis://***@host:6379`, and the
/// value of any query parameter named like a credential
/// (`?sentinel_password=...`) too. Strings that are not URLs pass through
/// unchanged.
pub fn url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_string();
    };
    let rest = &raw[scheme_end + 3..];
    // The authority ends at the first '/', '?' or '#'; userinfo is what
    // precedes its last '@' (a password may itself contain '@').
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let without_userinfo = match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..scheme_end + 3], &rest[at..]),
        None => raw.to_string(),
    };
    let Some((before, query)) = without_userinfo.split_once('?') else {
        return without_userinfo;
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_name(k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{before}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Whether a setting holds a credential, judged by its names: such values
/// are never printed, not even redacted.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "SECRET", "PASSWORD", "API_KEY"]
        .iter()
        .any(|w| upper.contains(w))
}

/// A value as it may appear in a message about `setting_names`: hidden for
/// credentials, userinfo removed for URLs.
pub fn value(setting_names: &[&str], raw: &str) -> String {
    if setting_names.iter().any(|n| is_secret_name(n)) {
        "***".into()
    } else {
        url(raw)
    }
}

/// Displays an optional URL redacted, for configuration summaries.
pub struct Url<'a>(pub Option<&'a str>);

impl fmt::Display for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(u) => f.write_str(&url(u)),
            None => f.write_str("none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_goes() {
        let cases = [
            (
                "redis://:hunter2@10.0.0.1:6379/0",
                "redis://***@10.0.0.1:6379/0",
            ),
            (
                "rediss://default:p%40ss@r.example:6380",
                "rediss://***@r.example:6380",
            ),
            ("redis://user:p@ss@host:1", "redis://***@host:1"),
            (
                "redis+sentinel://:pw@s1:26379,s2:26379/mymaster",
                "redis+sentinel://***@s1:26379,s2:26379/mymaster",
            ),
            ("redis://host:6379", "redis://host:6379"),
            (
                "redis+sentinel://:pw@s1:26379,s2:26379/main?sentinel_password=s3cret",
                "redis+sentinel://***@s1:26379,s2:26379/main?sentinel_password=***",
            ),
            ("rediss://h:1/?x=1#insecure", "rediss://h:1/?x=1#insecure"),
            ("http://host/path@x", "http://host/path@x"),
            ("not a url", "not a url"),
        ];
        for (raw, want) in cases {
            assert_eq!(url(raw), want, "{raw}");
        }
    }

    #[test]
    fn credentials_are_hidden_by_name() {
        assert_eq!(value(&["--railway-token", "RAILWAY_TOKEN"], "abc"), "***");
        assert_eq!(value(&["SWITCHYARD_PIN_SECRET"], "abc"), "***");
        assert_eq!(value(&["REDIS_URL"], "redis://:pw@h:1"), "redis://***@h:1");
        assert_eq!(value(&["--listen"], "0.0.0.0:1"), "0.0.0.0:1");
    }
}
