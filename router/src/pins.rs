//! The pin's one home. A pin names the deployment a client was served by:
//! a bare deployment id, or in strict mode a signed, expiring token. Here
//! the router mints the pin each deployment's answers carry, resolves a
//! client's pin to the deployment it names, decides when a drained
//! deployment's pins have gone stale, labels an answer with its pin
//! (`Server-Timing`), and states the policy the heartbeat publishes.

use std::time::Duration;

use http::HeaderValue;
use switchyard_core::{
    DeploymentId, DeploymentState, UnixTime,
    names::timing,
    pin::{PinKeys, PinPolicy},
};

/// What pins mean: in strict mode signed tokens, and how old a drain may
/// be before its pins go stale.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    /// Strict mode's keys; `None` means pins are bare deployment ids.
    pub keys: Option<PinKeys>,
    /// How long the previous secret is accepted after the rotation the
    /// store records (see `heartbeat::anchor_rotation`).
    pub previous_grace: Duration,
    pub ttl: Duration,
    pub max_age: Option<Duration>,
}

impl Pins {
    pub fn strict(&self) -> bool {
        self.keys.is_some()
    }

    /// The pin a deployment's answers hand out: its id, or a token signed
    /// now (tables are rebuilt on every reload, well within its lifetime).
    pub fn mint(&self, id: &DeploymentId, now: UnixTime) -> String {
        match &self.keys {
            Some(keys) => keys.mint(id, now, self.ttl),
            None => id.to_string(),
        }
    }

    /// The deployment a client's pin names: the pin itself, or in strict
    /// mode the id inside a valid, unexpired token (a bare id, a bad
    /// signature or an expired token names nothing: stale affinity).
    pub fn resolve<'p>(&self, pin: &'p str) -> Option<&'p str> {
        match &self.keys {
            None => Some(pin),
            Some(keys) => keys.verify(pin, UnixTime::now()).ok(),
        }
    }

    /// Whether pins to a deployment in `state` since `drain_started_at`
    /// are stale by age: a security cut-off (`--max-pin-age`) that does
    /// not wait for leases to end.
    pub fn too_old(&self, state: DeploymentState, drain_started_at: Option<UnixTime>) -> bool {
        match self.max_age {
            Some(max) => {
                state == DeploymentState::Draining
                    && drain_started_at.is_some_and(|since| UnixTime::now().since(since) >= max)
            }
            None => false,
        }
    }

    /// The `Server-Timing` label naming `pin` as an answer's pin.
    pub fn label(pin: &str, deployment: &str, active: Option<&str>) -> Option<HeaderValue> {
        HeaderValue::try_from(timing::label(pin, deployment, active)).ok()
    }

    /// In strict mode a pinned answer is labelled with the token that
    /// pinned it, never a fresher one (a preview link's end stays its
    /// end); otherwise the deployment's own label serves.
    pub fn echoed(
        &self,
        pin: Option<&str>,
        deployment: &DeploymentId,
        active: Option<&HeaderValue>,
    ) -> Option<HeaderValue> {
        let token = pin.filter(|_| self.strict())?;
        Self::label(
            token,
            deployment.as_str(),
            active.and_then(|a| a.to_str().ok()),
        )
    }

    /// Accepts the previous secret until `grace` after the rotation the
    /// store records.
    pub fn anchor_rotation(&self, rotated_at: UnixTime) {
        if let Some(keys) = &self.keys {
            keys.anchor_previous(rotated_at, self.previous_grace);
        }
    }

    /// The policy this replica reports, so `status` knows it again after a
    /// restore.
    pub fn policy(&self) -> PinPolicy {
        PinPolicy {
            strict: self.strict(),
            ttl_secs: self.ttl.as_secs(),
            max_pin_age_secs: self.max_age.map(|d| d.as_secs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DeploymentId {
        DeploymentId::new(s).expect("valid id")
    }

    fn strict() -> Pins {
        Pins {
            keys: PinKeys::new(&[7u8; 32]).ok(),
            ttl: Duration::from_secs(3600),
            ..Pins::default()
        }
    }

    #[test]
    fn bare_pins_are_ids_and_name_themselves() {
        let pins = Pins::default();
        assert_eq!(pins.mint(&id("v1"), UnixTime::now()), "v1");
        assert_eq!(pins.resolve("v1"), Some("v1"));
        assert_eq!(pins.echoed(Some("v1"), &id("v1"), None), None);
    }

    #[test]
    fn strict_pins_are_tokens_and_a_bare_id_names_nothing() {
        let pins = strict();
        let token = pins.mint(&id("v1"), UnixTime::now());
        assert_ne!(token, "v1");
        assert_eq!(pins.resolve(&token), Some("v1"));
        assert_eq!(pins.resolve("v1"), None);
        // The answer echoes the token that pinned it.
        let label = pins.echoed(Some(&token), &id("v1"), None).expect("a label");
        assert!(label.to_str().unwrap_or("").contains(&token));
        assert!(pins.policy().strict);
    }

    #[test]
    fn only_a_drain_older_than_the_maximum_age_is_too_old() {
        let pins = Pins {
            max_age: Some(Duration::from_secs(60)),
            ..Pins::default()
        };
        let long_ago = UnixTime(UnixTime::now().0 - 120.0);
        let just_now = UnixTime::now();
        assert!(pins.too_old(DeploymentState::Draining, Some(long_ago)));
        assert!(!pins.too_old(DeploymentState::Draining, Some(just_now)));
        assert!(!pins.too_old(DeploymentState::Active, Some(long_ago)));
        assert!(!Pins::default().too_old(DeploymentState::Draining, Some(long_ago)));
    }
}
