//! Signed, expiring pins for strict mode: a token names a deployment and
//! an expiry, with an HMAC-SHA256 over both (ring's, verified in constant
//! time), so nobody reaches a deployment the router (or the CLI, for
//! preview links) did not send them to.
//!
//! Form: `<id>.<expiry unix seconds>.<signature>`, the signature being the
//! HMAC in unpadded base64url. Ids never contain a dot, so the split is
//! unambiguous. Clients treat it as opaque.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::hmac;

use crate::{DeploymentId, UnixTime};

/// Shortest secret accepted: 32 bytes, the HMAC's own strength.
pub const MIN_SECRET_BYTES: usize = 32;

/// The keys a router signs and checks pins with.
#[derive(Clone)]
pub struct PinKeys {
    current: hmac::Key,
    /// The secret before the last rotation, and until when it is accepted
    /// (Unix seconds): moved to the rotation's recorded time plus the
    /// grace once the store says when the rotation happened.
    previous: Option<(
        hmac::Key,
        std::sync::Arc<std::sync::atomic::AtomicU64>,
        [u8; 8],
    )>,
}

/// Where the time of the last secret rotation is recorded
/// (`<prefix>:meta:pin-rotation`), so every router's grace for the
/// previous secret ends at the same moment, however often they restart.
pub const ROTATION_META: &str = "pin-rotation";

/// The record under `ROTATION_META`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rotation {
    /// Names the previous secret without revealing it.
    pub previous: String,
    /// When a router first saw this rotation (Unix seconds).
    pub rotated_at: u64,
}

impl std::fmt::Debug for PinKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinKeys(***)")
    }
}

/// Why a pin was refused; every one of them is stale affinity to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPin {
    Malformed,
    BadSignature,
    Expired,
}

impl PinKeys {
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        check_secret(secret)?;
        Ok(Self {
            current: hmac::Key::new(hmac::HMAC_SHA256, secret),
            previous: None,
        })
    }

    /// Also accept tokens signed with `secret` until `until`: a rotation's
    /// grace period, so pages labelled before it keep working.
    pub fn with_previous(mut self, secret: &[u8], until: UnixTime) -> Result<Self, String> {
        check_secret(secret)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let tag = hmac::sign(&key, b"switchyard previous pin secret");
        let mut id = [0u8; 8];
        id.copy_from_slice(&tag.as_ref()[..8]);
        self.previous = Some((
            key,
            std::sync::Arc::new(std::sync::atomic::AtomicU64::new(until.0 as u64)),
            id,
        ));
        Ok(self)
    }

    /// A name for the previous secret (an HMAC under it, cut short), to
    /// record a rotation by; `None` without one.
    pub fn previous_id(&self) -> Option<String> {
        self.previous
            .as_ref()
            .map(|(_, _, id)| id.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Ends the previous secret's grace at `rotated_at + grace`, for this
    /// router and every clone of its keys.
    pub fn anchor_previous(&self, rotated_at: UnixTime, grace: Duration) {
        if let Some((_, until, _)) = &self.previous {
            until.store(
                rotated_at.plus(grace).0 as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    /// A token for `id` valid until `now + ttl`.
    pub fn mint(&self, id: &DeploymentId, now: UnixTime, ttl: Duration) -> String {
        let expiry = now.plus(ttl).0 as u64;
        let body = format!("{id}.{expiry}");
        let sig = hmac::sign(&self.current, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// The deployment a valid, unexpired token names.
    pub fn verify<'t>(&self, token: &'t str, now: UnixTime) -> Result<&'t str, BadPin> {
        let (body, sig) = token.rsplit_once('.').ok_or(BadPin::Malformed)?;
        let (id, expiry) = body.split_once('.').ok_or(BadPin::Malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| BadPin::Malformed)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| BadPin::Malformed)?;
        // ring compares the tags in constant time.
        let signed_by = |key: &hmac::Key| hmac::verify(key, body.as_bytes(), &sig).is_ok();
        let valid = signed_by(&self.current)
            || self.previous.as_ref().is_some_and(|(key, until, _)| {
                now.0 < until.load(std::sync::atomic::Ordering::Relaxed) as f64 && signed_by(key)
            });
        if !valid {
            return Err(BadPin::BadSignature);
        }
        if (expiry as f64) <= now.0 {
            return Err(BadPin::Expired);
        }
        Ok(id)
    }
}

fn check_secret(secret: &[u8]) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"0123456789abcdef0123456789abcdef";
    const B: &[u8] = b"fedcba9876543210fedcba9876543210";

    fn id(s: &str) -> DeploymentId {
        DeploymentId::new(s).unwrap()
    }

    #[test]
    fn a_minted_token_names_its_deployment_until_it_expires() {
        let keys = PinKeys::new(A).unwrap();
        let now = UnixTime(1_000_000.0);
        let t = keys.mint(&id("web-3f9a1c"), now, Duration::from_secs(60));
        assert!(t.starts_with("web-3f9a1c.1000060."), "{t}");
        assert_eq!(keys.verify(&t, now), Ok("web-3f9a1c"));
        assert_eq!(keys.verify(&t, UnixTime(1_000_060.0)), Err(BadPin::Expired));
    }

    #[test]
    fn forged_tampered_and_bare_pins_are_refused() {
        let keys = PinKeys::new(A).unwrap();
        let now = UnixTime(1_000_000.0);
        let t = keys.mint(&id("web-1"), now, Duration::from_secs(60));
        let other = PinKeys::new(B)
            .unwrap()
            .mint(&id("web-1"), now, Duration::from_secs(60));
        assert_eq!(keys.verify(&other, now), Err(BadPin::BadSignature));
        let moved = t.replacen("web-1", "web-2", 1);
        assert_eq!(keys.verify(&moved, now), Err(BadPin::BadSignature));
        let later = t.replacen("1000060", "9000060", 1);
        assert_eq!(keys.verify(&later, now), Err(BadPin::BadSignature));
        for bad in [
            "web-1",
            "",
            "web-1.x.y",
            "web-1.1.",
            "a.b.c.d",
            "web-1.99999999999.AAAA",
        ] {
            assert!(keys.verify(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_previous_secret_holds_only_through_its_grace() {
        let now = UnixTime(1_000_000.0);
        let old = PinKeys::new(A)
            .unwrap()
            .mint(&id("web-1"), now, Duration::from_secs(3600));
        let keys = PinKeys::new(B)
            .unwrap()
            .with_previous(A, UnixTime(now.0 + 600.0))
            .unwrap();
        assert_eq!(keys.verify(&old, now), Ok("web-1"));
        assert_eq!(
            keys.verify(&old, UnixTime(now.0 + 601.0)),
            Err(BadPin::BadSignature)
        );
        // New tokens are signed with the new secret.
        let new = keys.mint(&id("web-1"), now, Duration::from_secs(60));
        assert_eq!(PinKeys::new(B).unwrap().verify(&new, now), Ok("web-1"));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(PinKeys::new(b"short").is_err());
    }
}

/// A router's pin settings, as each replica reports them on its heartbeat
/// for `switchyard status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PinPolicy {
    /// Signed, expiring pins (strict mode) rather than bare ids.
    pub strict: bool,
    /// Lifetime of a signed pin, in seconds.
    pub ttl_secs: u64,
    /// Pins to a deployment draining longer than this are stale.
    pub max_pin_age_secs: Option<u64>,
}

impl PinPolicy {
    /// One line for people.
    pub fn describe(&self) -> String {
        let kind = if self.strict {
            format!(
                "signed tokens valid {} (strict mode)",
                crate::time::human_duration(std::time::Duration::from_secs(self.ttl_secs))
            )
        } else {
            "deployment ids".to_string()
        };
        let age = match self.max_pin_age_secs {
            Some(s) => format!(
                "pins to a deployment draining over {} are stale",
                crate::time::human_duration(std::time::Duration::from_secs(s))
            ),
            None => "no maximum pin age".to_string(),
        };
        format!("pins: {kind}; {age}")
    }
}
