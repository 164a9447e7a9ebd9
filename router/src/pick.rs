//! Which deployment serves a request: a pure function of the request and
//! the routing table (query param, then header, then cookie, then the
//! active deployment or its rollout share).

use std::{borrow::Cow, net::IpAddr, sync::Arc};

use http::HeaderMap;
use switchyard_core::RoutingNames;

use crate::{
    fnv,
    table::{Table, Target},
};

#[derive(Debug)]
pub enum Choice<'t> {
    /// The request named this deployment and it can serve.
    Pinned(&'t Arc<Target>),
    /// No pin: the active deployment, or the rollout candidate.
    Unpinned(&'t Arc<Target>),
    /// The pin names a deployment that is gone, unknown or revoked.
    Stale,
    /// Nothing to route to.
    NoActive,
}

/// The request names two different deployments: whichever the router
/// picked, the backend might read the other.
#[derive(Debug, PartialEq, Eq)]
pub struct ConflictingPins;

/// The request's pin: the query parameter, else the header, else the
/// cookie. Empty values count as absent. Every occurrence is read, with
/// names and values decoded as a backend decodes them, and two different
/// values (repeated parameter, repeated header, or query against header)
/// are refused: one request, one pin.
///
/// `cookie` says whether the cookie may pin this request: a document load
/// is the one moment a page can change version safely, so it is routed
/// unpinned and gets a fresh cookie instead.
pub fn pinned_id<'r>(
    query: Option<&'r str>,
    headers: &'r HeaderMap,
    names: &RoutingNames,
    cookie: bool,
) -> Result<Option<Cow<'r, str>>, ConflictingPins> {
    fn offer<'r>(pin: &mut Option<Cow<'r, str>>, v: Cow<'r, str>) -> Result<(), ConflictingPins> {
        if v.is_empty() {
            return Ok(());
        }
        match pin {
            Some(p) if *p != v => Err(ConflictingPins),
            Some(_) => Ok(()),
            None => {
                *pin = Some(v);
                Ok(())
            }
        }
    }
    let mut pin: Option<Cow<'r, str>> = None;
    if let Some(q) = query {
        for v in query_values(q, &names.query_param) {
            offer(&mut pin, v)?;
        }
    }
    for v in headers.get_all(names.header.as_str()) {
        // A value that is not visible ASCII cannot name a deployment, but
        // it is still a second opinion the backend might read.
        match v.to_str() {
            Ok(v) => offer(&mut pin, Cow::Borrowed(v.trim()))?,
            Err(_) => offer(
                &mut pin,
                Cow::Owned(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )?,
        }
    }
    if pin.is_some() || !cookie {
        return Ok(pin);
    }
    let Some(cookie) = names.cookie.as_deref() else {
        return Ok(None);
    };
    for v in headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == cookie)
    {
        offer(&mut pin, Cow::Borrowed(v.1.trim()))?;
    }
    Ok(pin)
}

/// A top-level page load, as opposed to a fetch, image or script: the
/// browser says so in `Sec-Fetch-Dest`; older ones are judged by asking
/// for HTML.
pub fn is_document_load(method: &http::Method, headers: &HeaderMap) -> bool {
    if method != http::Method::GET {
        return false;
    }
    match headers.get("sec-fetch-dest") {
        Some(dest) => dest.as_bytes() == b"document",
        None => headers
            .get(http::header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html")),
    }
}

/// Decodes one query component as form decoding does: `+` is a space,
/// then percent escapes.
fn form_decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['%', '+']) {
        return Cow::Borrowed(raw);
    }
    let spaced = raw.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Every value of `name` in a query string, names and values decoded.
pub fn query_values<'q>(query: &'q str, name: &str) -> impl Iterator<Item = Cow<'q, str>> {
    query.split('&').filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(k) == name).then(|| form_decode(v))
    })
}

/// The first value of `name` in a query string, decoded.
pub fn query_value<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query_values(query, name).next()
}

/// The deployment a pin names: the pin itself, or in strict mode the id
/// inside a valid, unexpired token (a bare id, a bad signature or an
/// expired token names nothing, which is stale affinity).
pub fn pinned_deployment<'p>(pin: &'p str, pins: &crate::config::Pins) -> Option<&'p str> {
    match &pins.keys {
        None => Some(pin),
        Some(keys) => keys.verify(pin, switchyard_core::UnixTime::now()).ok(),
    }
}

/// The maximum pin age: a pin to a deployment that has drained longer than
/// it is stale, a security cut-off that does not wait for leases to end.
pub fn honour_age<'t>(choice: Choice<'t>, pins: &crate::config::Pins) -> Choice<'t> {
    match (choice, pins.max_age) {
        (Choice::Pinned(t), Some(max))
            if t.state == switchyard_core::DeploymentState::Draining
                && t.drain_started_at
                    .is_some_and(|since| switchyard_core::UnixTime::now().since(since) >= max) =>
        {
            Choice::Stale
        }
        (choice, _) => choice,
    }
}

pub fn choose<'t>(
    table: &'t Table,
    pin: Option<&str>,
    rollout_key: impl FnOnce() -> u64,
) -> Choice<'t> {
    if let Some(pin) = pin {
        return match table.get(pin) {
            Some(t) if t.state.accepts_pinned() => Choice::Pinned(t),
            _ => Choice::Stale,
        };
    }
    let Some(active) = &table.active else {
        return Choice::NoActive;
    };
    if let Some((candidate, percent)) = &table.rollout
        && bucket(rollout_key(), candidate.id.as_str()) < u64::from(*percent)
    {
        return Choice::Unpinned(candidate);
    }
    Choice::Unpinned(active)
}

/// 0..100, stable for a (key, candidate) pair on every replica, so a user
/// stays on one side of the split; a new candidate reshuffles.
fn bucket(key: u64, candidate: &str) -> u64 {
    fnv1a(candidate.as_bytes(), key) % 100
}

/// The rollout key: the configured header's value when present, else the
/// client address.
pub fn rollout_key(headers: &HeaderMap, header: Option<&str>, client: IpAddr) -> u64 {
    const SEED: u64 = fnv::OFFSET;
    if let Some(v) = header.and_then(|h| headers.get(h)) {
        return fnv1a(v.as_bytes(), SEED);
    }
    match client {
        IpAddr::V4(a) => fnv1a(&a.octets(), SEED),
        IpAddr::V6(a) => fnv1a(&a.octets(), SEED),
    }
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = fnv::step(seed, bytes);
    // Final avalanche so adjacent keys spread across buckets.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::TrafficRegistry;
    use switchyard_core::{Deployment, DeploymentId, DeploymentState, Rollout, Snapshot};

    fn table(
        deps: &[(&str, DeploymentState)],
        active: Option<&str>,
        rollout: Option<(&str, u8)>,
    ) -> Table {
        let mut snap = Snapshot::default();
        for (id, state) in deps {
            let id = DeploymentId::new(id).unwrap();
            snap.deployments.insert(
                id.clone(),
                Deployment {
                    deployment_id: id.clone(),
                    state: *state,
                    service_name: id.to_string(),
                    backend_url: format!("http://{id}:8000"),
                    created_at: None,
                    last_seen_at: None,
                    drain_started_at: None,
                    revoked_at: None,
                    service_id: None,
                    state_epoch: None,
                },
            );
        }
        snap.active = active.map(|a| DeploymentId::new(a).unwrap());
        snap.rollout = rollout.map(|(id, percent)| Rollout {
            deployment_id: DeploymentId::new(id).unwrap(),
            percent,
        });
        Table::build(
            &snap,
            &RoutingNames::default(),
            &crate::config::Pins::default(),
            &TrafficRegistry::default(),
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn pin_precedence_query_header_cookie() {
        let names = RoutingNames {
            cookie: Some("pulse_affinity".into()),
            ..Default::default()
        };
        let h = headers(&[
            ("x-pulse-deployment", "h"),
            ("cookie", "a=1; pulse_affinity=c"),
        ]);
        assert_eq!(
            pinned_id(Some("pulse_deployment=h"), &h, &names, true)
                .unwrap()
                .unwrap(),
            "h"
        );
        assert_eq!(
            pinned_id(Some("other=1"), &h, &names, true)
                .unwrap()
                .unwrap(),
            "h"
        );
        let h2 = headers(&[("cookie", "a=1; pulse_affinity=c")]);
        assert_eq!(pinned_id(None, &h2, &names, true).unwrap().unwrap(), "c");
        // A query or header pin beats the cookie, even a different one.
        assert_eq!(
            pinned_id(Some("pulse_deployment=q"), &h2, &names, true)
                .unwrap()
                .unwrap(),
            "q"
        );
        // A document load is not pinned by its cookie.
        assert!(pinned_id(None, &h2, &names, false).unwrap().is_none());
        // Cookies are ignored unless enabled.
        assert!(
            pinned_id(None, &h2, &RoutingNames::default(), true)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn two_different_pins_are_refused() {
        let names = RoutingNames::default();
        let none = HeaderMap::new();
        let conflict =
            |q: Option<&str>, h: &HeaderMap| pinned_id(q, h, &names, true) == Err(ConflictingPins);
        assert!(conflict(
            Some("pulse_deployment=a&pulse_deployment=b"),
            &none
        ));
        assert!(conflict(
            Some("pulse_deployment=a&pulse%5Fdeployment=b"),
            &none
        ));
        assert!(conflict(
            Some("pulse_deployment=a&pulse%5fdeployment=b"),
            &none
        ));
        assert!(conflict(
            Some("pulse_deployment=a"),
            &headers(&[("x-pulse-deployment", "b")])
        ));
        assert!(conflict(
            None,
            &headers(&[("x-pulse-deployment", "a"), ("x-pulse-deployment", "b")])
        ));
        // The same pin twice, or beside an empty one, is one pin.
        let same = pinned_id(
            Some("pulse_deployment=a&pulse%5Fdeployment=a"),
            &none,
            &names,
            true,
        );
        assert_eq!(same.unwrap().unwrap(), "a");
        let empty = pinned_id(
            Some("pulse_deployment=&pulse_deployment=b"),
            &none,
            &names,
            true,
        );
        assert_eq!(empty.unwrap().unwrap(), "b");
        // An encoded name alone pins, as the backend would read it.
        let encoded = pinned_id(Some("pulse%5Fdeployment=b"), &none, &names, true);
        assert_eq!(encoded.unwrap().unwrap(), "b");
    }

    #[test]
    fn empty_pins_count_as_absent() {
        let names = RoutingNames::default();
        let h = headers(&[("x-pulse-deployment", "")]);
        assert!(
            pinned_id(Some("pulse_deployment="), &h, &names, true)
                .unwrap()
                .is_none()
        );
        assert!(
            pinned_id(Some("pulse_deployment"), &HeaderMap::new(), &names, true)
                .unwrap()
                .is_none()
        );
        let h = headers(&[("x-pulse-deployment", "v2")]);
        assert_eq!(
            pinned_id(Some("pulse_deployment="), &h, &names, true)
                .unwrap()
                .unwrap(),
            "v2"
        );
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_value("a=1&pulse_deployment=v%31", "pulse_deployment").unwrap(),
            "v1"
        );
        assert!(query_value("xpulse_deployment=v1", "pulse_deployment").is_none());
    }

    #[test]
    fn routing_by_state() {
        use DeploymentState::*;
        let t = table(
            &[
                ("a", Active),
                ("d", Draining),
                ("p", Pending),
                ("r", Revoked),
            ],
            Some("a"),
            None,
        );
        assert!(matches!(choose(&t, None, || 0), Choice::Unpinned(x) if x.id.as_str() == "a"));
        for pinned in ["a", "d", "p"] {
            assert!(
                matches!(choose(&t, Some(pinned), || 0), Choice::Pinned(x) if x.id.as_str() == pinned)
            );
        }
        for stale in ["r", "gone", "../etc", "UPPER"] {
            assert!(
                matches!(choose(&t, Some(stale), || 0), Choice::Stale),
                "{stale}"
            );
        }
        let none = table(&[("d", Draining)], None, None);
        assert!(matches!(choose(&none, None, || 0), Choice::NoActive));
        assert!(matches!(choose(&none, Some("gone"), || 0), Choice::Stale));
    }

    #[test]
    fn rollout_split_is_sticky_and_near_its_share() {
        use DeploymentState::*;
        let t = table(&[("a", Active), ("c", Pending)], Some("a"), Some(("c", 10)));
        let mut to_candidate = 0;
        for key in 0..10_000u64 {
            let k = fnv1a(&key.to_le_bytes(), 1);
            let first =
                matches!(choose(&t, None, || k), Choice::Unpinned(x) if x.id.as_str() == "c");
            let again =
                matches!(choose(&t, None, || k), Choice::Unpinned(x) if x.id.as_str() == "c");
            assert_eq!(first, again, "a key never flips");
            to_candidate += usize::from(first);
        }
        assert!(
            (800..=1200).contains(&to_candidate),
            "{to_candidate} of 10000 for 10%"
        );
        // Pins beat the split.
        assert!(matches!(choose(&t, Some("a"), || 0), Choice::Pinned(x) if x.id.as_str() == "a"));
    }
}
