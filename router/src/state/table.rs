//! The routing table: an immutable view of one store snapshot, swapped
//! whole when a new snapshot arrives and read without locks on every
//! request.

use std::{collections::HashMap, sync::Arc};

use http::{HeaderValue, uri::Authority};
use switchyard_core::{DeploymentId, DeploymentState, RoutingNames, Snapshot, names::timing};

use crate::{
    pins::Pins,
    state::traffic::{Traffic, TrafficRegistry},
};

/// Everything the request path needs about one deployment, precomputed.
#[derive(Debug)]
pub struct Target {
    pub id: DeploymentId,
    pub state: DeploymentState,
    pub authority: Authority,
    /// `Host` for requests to the backend: its own authority (the client's
    /// host travels in `X-Forwarded-Host`).
    pub host: HeaderValue,
    /// Value of `x-pulse-selected-deployment`.
    pub selected: HeaderValue,
    /// `Set-Cookie` pinning a client here, when cookie affinity is on.
    /// `[plain, Secure]`: the second for clients that came over https.
    pub set_cookie: Option<[HeaderValue; 2]>,
    /// `Server-Timing` naming this deployment's pin and the active one:
    /// the one response header page script can read for the document
    /// itself (`performance.getEntriesByType("navigation")`), which is how
    /// the browser client learns its pin without app changes.
    pub label: HeaderValue,
    /// What pins a request here: the id, or in strict mode a token.
    pub pin: String,
    /// For the maximum pin age.
    pub drain_started_at: Option<switchyard_core::UnixTime>,
    pub traffic: Arc<Traffic>,
}

#[derive(Debug, Default)]
pub struct Table {
    /// The active deployment's id, for `x-switchyard-active`.
    pub active_id: Option<HeaderValue>,
    pub version: u64,
    /// The snapshot this table was built from, served on the private
    /// listener so a store that lost its data can be restored.
    pub snapshot: Snapshot,
    by_id: HashMap<DeploymentId, Arc<Target>>,
    pub active: Option<Arc<Target>>,
    pub rollout: Option<(Arc<Target>, u8)>,
    /// Deployments that may answer an asset the chosen one lacks: active
    /// and draining, newest first. Never revoked ones, never previews.
    pub asset_order: Vec<Arc<Target>>,
}

/// The authority the router dials for a backend base URL, by the rule the
/// CLI applied when it recorded it (`switchyard_core::BackendUrl`).
pub fn backend_authority(url: &str) -> Result<Authority, String> {
    let url = switchyard_core::BackendUrl::parse(url).map_err(|e| e.to_string())?;
    url.authority().parse().map_err(|e| format!("{e}"))
}

impl Table {
    pub fn build(
        snap: &Snapshot,
        names: &RoutingNames,
        pins: &Pins,
        traffic: &TrafficRegistry,
    ) -> Self {
        let now = switchyard_core::UnixTime::now();
        let mut by_id = HashMap::with_capacity(snap.deployments.len());
        for d in snap.deployments.values() {
            let authority = match backend_authority(&d.backend_url) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(deployment = %d.deployment_id, error = %e,
                        "deployment has an unusable backend URL; it cannot be routed to");
                    continue;
                }
            };
            let id = &d.deployment_id;
            let pin = pins.mint(id, now);
            let Ok(host) = HeaderValue::from_str(authority.as_str()) else {
                continue;
            };
            let target = Target {
                id: id.clone(),
                state: d.state,
                host,
                authority,
                // Ids are validated to [a-z0-9-], always a valid header value.
                selected: HeaderValue::from_str(id.as_str())
                    .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
                set_cookie: names.cookie.as_ref().and_then(|c| {
                    let plain = format!("{c}={pin}; Path=/; HttpOnly; SameSite=Lax");
                    let secure = HeaderValue::try_from(format!("{plain}; Secure")).ok()?;
                    Some([HeaderValue::try_from(plain).ok()?, secure])
                }),
                drain_started_at: d.drain_started_at,
                label: Pins::label(
                    &pin,
                    id.as_str(),
                    snap.active.as_ref().map(DeploymentId::as_str),
                )
                .unwrap_or_else(|| HeaderValue::from_static(timing::PIN)),
                traffic: traffic.get(id),
                pin,
            };
            by_id.insert(id.clone(), Arc::new(target));
        }
        let active = snap.active.as_ref().and_then(|a| by_id.get(a)).cloned();
        let rollout = snap.rollout.as_ref().and_then(|r| {
            let t = by_id.get(&r.deployment_id)?;
            Some((t.clone(), r.percent))
        });
        let mut live: Vec<_> = snap
            .deployments
            .values()
            .filter(|d| matches!(d.state, DeploymentState::Active | DeploymentState::Draining))
            .filter_map(|d| {
                Some((
                    d.created_at.map_or(0.0, |t| t.0),
                    by_id.get(&d.deployment_id)?.clone(),
                ))
            })
            .collect();
        live.sort_by(|a, b| b.0.total_cmp(&a.0));
        Self {
            asset_order: live.into_iter().map(|(_, t)| t).collect(),
            active_id: snap
                .active
                .as_ref()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
            version: snap.version,
            snapshot: snap.clone(),
            by_id,
            active,
            rollout,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Target>> {
        self.by_id.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &DeploymentId> {
        self.by_id.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_urls() {
        assert_eq!(
            backend_authority("http://app.railway.internal:8000")
                .unwrap()
                .as_str(),
            "app.railway.internal:8000"
        );
        assert!(backend_authority("https://x:1").is_err());
        assert!(backend_authority("http://u:p@x:1").is_err());
        assert!(backend_authority("not a url").is_err());
        let err = backend_authority("http://u:hunter2@x:1").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
