//! Deployment ids, validated once where they enter the system.
//!
//! An id ends up in Redis keys, Railway service names and log lines, so it is
//! restricted to `[a-z0-9][a-z0-9-]{0,62}`: safe in all three and never able
//! to smuggle a path, a key separator or a URL into anything built from it.

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest id accepted, matching the DNS label limit Railway service names obey.
pub const MAX_LEN: usize = 63;

/// A validated deployment id. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeploymentId(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDeploymentId {
    #[error(
        "the deployment id is empty; a deployment id is 1 to 63 characters: lowercase letters, digits and '-', starting with a letter or digit"
    )]
    Empty,
    #[error(
        "the deployment id is {len} characters long; a deployment id is 1 to 63 characters: lowercase letters, digits and '-', starting with a letter or digit"
    )]
    TooLong { len: usize },
    #[error(
        "deployment id {id:?} does not start with a lowercase letter or digit; a deployment id is 1 to 63 characters: lowercase letters, digits and '-', starting with a letter or digit"
    )]
    BadStart { id: String },
    #[error(
        "deployment id {id:?} contains {ch:?}; a deployment id is 1 to 63 characters: lowercase letters, digits and '-', starting with a letter or digit"
    )]
    BadChar { id: String, ch: char },
}

impl DeploymentId {
    pub fn new(raw: &str) -> Result<Self, InvalidDeploymentId> {
        validate(raw)?;
        Ok(Self(Arc::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks the id grammar without allocating; the router uses this on the
/// request path before looking a pinned id up.
pub fn validate(raw: &str) -> Result<(), InvalidDeploymentId> {
    let bytes = raw.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(InvalidDeploymentId::Empty);
    };
    if bytes.len() > MAX_LEN {
        return Err(InvalidDeploymentId::TooLong { len: bytes.len() });
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(InvalidDeploymentId::BadStart { id: raw.into() });
    }
    if let Some(ch) = raw
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(InvalidDeploymentId::BadChar { id: raw.into(), ch });
    }
    Ok(())
}

impl FromStr for DeploymentId {
    type Err = InvalidDeploymentId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for DeploymentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for DeploymentId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for DeploymentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeploymentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::new(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_grammar() {
        for ok in ["a", "0", "prod-1a2b3c", "v2", &"a".repeat(63)] {
            assert!(DeploymentId::new(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (&"a".repeat(64), "64 characters"),
            ("-a", "does not start"),
            ("Prod", "does not start"),
            ("a_b", "'_'"),
            ("a/b", "'/'"),
            ("a:b", "':'"),
            ("a.b", "'.'"),
            ("é", "does not start"),
            ("aé", "'é'"),
            ("a b", "' '"),
        ];
        for (bad, why) in cases {
            let err = DeploymentId::new(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad:?}: {err} should mention {why}");
            // Every refusal states the whole rule.
            assert!(err.contains("1 to 63 characters"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<DeploymentId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<DeploymentId>("\"../x\"").is_err());
    }
}
