//! Which deployment serves a request: a pure function of the request and
//! the routing table (query param, then header, then cookie, then the
//! active deployment or its rollout share).

use std::{borrow::Cow, net::IpAddr, sync::Arc};

use switchyard_core::RoutingNames;

use crate::{
    fnv,
    pins::Pins,
    request::fields::{Fields, visible},
    state::table::{Table, Target},
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
/// `load` says which cookies may pin this request: a document load is the
/// one moment a page can change version safely, so no cookie pins it; the
/// page cookie pins only a page's subresources.
pub fn pinned_id<'r, H: Fields + ?Sized>(
    query: Option<&'r str>,
    headers: &'r H,
    names: &'r RoutingNames,
    load: Load,
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
    for v in headers.all(names.header.as_str()) {
        // A value that is not visible ASCII cannot name a deployment, but
        // it is still a second opinion the backend might read.
        match visible(v) {
            // A header repeated, or patched in twice by a script, arrives
            // as a list (RFC 9110 §5.3): each element is one opinion.
            Some(v) => {
                for element in v.split(',') {
                    offer(&mut pin, Cow::Borrowed(element.trim()))?;
                }
            }
            None => offer(
                &mut pin,
                Cow::Owned(String::from_utf8_lossy(v).into_owned()),
            )?,
        }
    }
    if pin.is_some() {
        return Ok(pin);
    }
    let cookie = match load {
        Load::Document => return Ok(None),
        Load::Subresource => [names.cookie.as_deref(), Some(PAGE_COOKIE)],
        Load::Other => [names.cookie.as_deref(), None],
    };
    for name in cookie.into_iter().flatten() {
        for v in cookie_values(headers, name) {
            offer(&mut pin, Cow::Borrowed(v))?;
        }
        if pin.is_some() {
            break;
        }
    }
    Ok(pin)
}

/// The cookie a page pinned to a deployment other than the active one
/// (a preview link, an old build opened by its pin) gets, so that the
/// page's `<script src>`, stylesheets, images and fonts, which carry
/// neither the pin header nor the pin parameter, reach the same
/// deployment. Honoured only on subresource loads, never on a document,
/// a frame or a fetch: it cannot move a page, and it lives ten minutes.
pub const PAGE_COOKIE: &str = switchyard_core::names::PAGE_COOKIE;

/// How long the page cookie lives, in seconds.
pub const PAGE_COOKIE_MAX_AGE: u32 = 600;

/// Takes the page cookie away (a document load on the active deployment).
pub const PAGE_COOKIE_CLEAR: &str =
    "switchyard_page_pin=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict";

fn cookie_values<'h, H: Fields + ?Sized>(
    headers: &'h H,
    name: &'h str,
) -> impl Iterator<Item = &'h str> {
    headers
        .all("cookie")
        .filter_map(visible)
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the request carries a non-empty page cookie.
pub fn has_page_cookie<H: Fields + ?Sized>(headers: &H) -> bool {
    cookie_values(headers, PAGE_COOKIE).any(|v| !v.is_empty())
}

/// What kind of load a request is, as far as cookies may pin it: the
/// browser says so in `Sec-Fetch-Dest` (Fetch Metadata); browsers that
/// do not are judged by asking for HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// A page or frame: the moment a page may change version, so never
    /// pinned by a cookie.
    Document,
    /// A script, stylesheet, image, font or the like, loaded by a page.
    Subresource,
    /// A fetch, XHR, or a client that says nothing.
    Other,
}

impl Load {
    pub fn of<H: Fields + ?Sized>(method: &http::Method, headers: &H) -> Self {
        // A form POST is a navigation, but it acts on the page that sent
        // it, so it keeps that page's cookie.
        if matches!(*method, http::Method::GET | http::Method::HEAD)
            && is_navigation(method, headers)
        {
            return Self::Document;
        }
        match headers.first("sec-fetch-dest") {
            Some(
                b"script" | b"style" | b"image" | b"font" | b"audio" | b"video" | b"track"
                | b"manifest" | b"object" | b"embed" | b"worker" | b"sharedworker" | b"xslt"
                | b"audioworklet" | b"paintworklet",
            ) => Self::Subresource,
            _ => Self::Other,
        }
    }
}

/// A page or frame load, as opposed to a fetch, image or script:
/// `Sec-Fetch-Mode: navigate` or a document or frame destination; without
/// fetch metadata, a request that asks for HTML.
pub fn is_navigation<H: Fields + ?Sized>(method: &http::Method, headers: &H) -> bool {
    let mode = headers.first("sec-fetch-mode");
    let dest = headers.first("sec-fetch-dest");
    match (mode, dest) {
        (None, None) => {
            matches!(*method, http::Method::GET | http::Method::HEAD)
                && headers
                    .first("accept")
                    .and_then(visible)
                    .is_some_and(|a| a.contains("text/html"))
        }
        (mode, dest) => {
            mode == Some(b"navigate")
                || matches!(
                    dest,
                    Some(b"document" | b"iframe" | b"frame" | b"fencedframe")
                )
        }
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
    query.split(QUERY_SEPARATORS).filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        names_pin(k, name).then(|| form_decode(v))
    })
}

/// Pair separators backends split a query on: `&`, and `;` (older CGI
/// conventions, Python's `parse_qs` before 3.9.2, Rack before 3.0).
pub const QUERY_SEPARATORS: [char; 2] = ['&', ';'];

/// Whether a raw query parameter name is `name` as some backend decodes
/// it: form-decoded, or also as PHP mangles it (leading spaces dropped,
/// ` `, `.` and `[` read as `_`), so `pulse.deployment` is a pin to PHP.
pub fn names_pin(raw: &str, name: &str) -> bool {
    let decoded = form_decode(raw);
    if decoded == name {
        return true;
    }
    let php = decoded.trim_start_matches(' ');
    php.len() == name.len()
        && php
            .bytes()
            .zip(name.bytes())
            .all(|(a, b)| a == b || (b == b'_' && matches!(a, b' ' | b'.' | b'[')))
}

/// The first value of `name` in a query string, decoded.
pub fn query_value<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query_values(query, name).next()
}

/// A pin to a deployment that has drained longer than the maximum pin age
/// is stale (`Pins::too_old`).
pub fn honour_age<'t>(choice: Choice<'t>, pins: &Pins) -> Choice<'t> {
    match choice {
        Choice::Pinned(t) if pins.too_old(t.state, t.drain_started_at) => Choice::Stale,
        choice => choice,
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
pub fn rollout_key<H: Fields + ?Sized>(headers: &H, header: Option<&str>, client: IpAddr) -> u64 {
    const SEED: u64 = fnv::OFFSET;
    if let Some(v) = header.and_then(|h| headers.first(h)) {
        return fnv1a(v, SEED);
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
    use crate::state::traffic::TrafficRegistry;
    use http::HeaderMap;
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
            pinned_id(Some("pulse_deployment=h"), &h, &names, Load::Other)
                .unwrap()
                .unwrap(),
            "h"
        );
        assert_eq!(
            pinned_id(Some("other=1"), &h, &names, Load::Other)
                .unwrap()
                .unwrap(),
            "h"
        );
        let h2 = headers(&[("cookie", "a=1; pulse_affinity=c")]);
        assert_eq!(
            pinned_id(None, &h2, &names, Load::Other).unwrap().unwrap(),
            "c"
        );
        // A query or header pin beats the cookie, even a different one.
        assert_eq!(
            pinned_id(Some("pulse_deployment=q"), &h2, &names, Load::Other)
                .unwrap()
                .unwrap(),
            "q"
        );
        // A document load is not pinned by its cookie.
        assert!(
            pinned_id(None, &h2, &names, Load::Document)
                .unwrap()
                .is_none()
        );
        // Cookies are ignored unless enabled.
        assert!(
            pinned_id(None, &h2, &RoutingNames::default(), Load::Other)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn two_different_pins_are_refused() {
        let names = RoutingNames::default();
        let none = HeaderMap::new();
        let conflict = |q: Option<&str>, h: &HeaderMap| {
            pinned_id(q, h, &names, Load::Other) == Err(ConflictingPins)
        };
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
            Load::Other,
        );
        assert_eq!(same.unwrap().unwrap(), "a");
        let empty = pinned_id(
            Some("pulse_deployment=&pulse_deployment=b"),
            &none,
            &names,
            Load::Other,
        );
        assert_eq!(empty.unwrap().unwrap(), "b");
        // An encoded name alone pins, as the backend would read it.
        let encoded = pinned_id(Some("pulse%5Fdeployment=b"), &none, &names, Load::Other);
        assert_eq!(encoded.unwrap().unwrap(), "b");
    }

    #[test]
    fn loads_and_the_cookies_that_may_pin_them() {
        let get = http::Method::GET;
        let post = http::Method::POST;
        for dest in ["document", "iframe", "frame"] {
            assert_eq!(
                Load::of(&get, &headers(&[("sec-fetch-dest", dest)])),
                Load::Document
            );
        }
        let nav = headers(&[
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ]);
        assert_eq!(Load::of(&get, &nav), Load::Document);
        assert_eq!(
            Load::of(&post, &nav),
            Load::Other,
            "a form post keeps its page's cookie"
        );
        assert!(is_navigation(&post, &nav));
        assert_eq!(
            Load::of(&get, &headers(&[("accept", "text/html")])),
            Load::Document
        );
        for dest in ["script", "style", "image", "font"] {
            assert_eq!(
                Load::of(&get, &headers(&[("sec-fetch-dest", dest)])),
                Load::Subresource
            );
        }
        assert_eq!(
            Load::of(&get, &headers(&[("sec-fetch-dest", "empty")])),
            Load::Other
        );
        assert_eq!(Load::of(&get, &HeaderMap::new()), Load::Other);

        let names = RoutingNames::default();
        let jar = headers(&[("cookie", "switchyard_page_pin=p")]);
        let pin = |load| pinned_id(None, &jar, &names, load).unwrap();
        assert_eq!(pin(Load::Subresource).unwrap(), "p");
        assert!(pin(Load::Other).is_none());
        assert!(pin(Load::Document).is_none());
    }

    #[test]
    fn a_header_list_of_one_pin_is_one_pin() {
        let names = RoutingNames::default();
        let one = headers(&[("x-pulse-deployment", "v2, v2")]);
        assert_eq!(
            pinned_id(None, &one, &names, Load::Other).unwrap().unwrap(),
            "v2"
        );
        let two = headers(&[("x-pulse-deployment", "v2,v3")]);
        assert_eq!(
            pinned_id(None, &two, &names, Load::Other),
            Err(ConflictingPins)
        );
    }

    #[test]
    fn empty_pins_count_as_absent() {
        let names = RoutingNames::default();
        let h = headers(&[("x-pulse-deployment", "")]);
        assert!(
            pinned_id(Some("pulse_deployment="), &h, &names, Load::Other)
                .unwrap()
                .is_none()
        );
        assert!(
            pinned_id(
                Some("pulse_deployment"),
                &HeaderMap::new(),
                &names,
                Load::Other
            )
            .unwrap()
            .is_none()
        );
        let h = headers(&[("x-pulse-deployment", "v2")]);
        assert_eq!(
            pinned_id(Some("pulse_deployment="), &h, &names, Load::Other)
                .unwrap()
                .unwrap(),
            "v2"
        );
    }

    #[test]
    fn every_spelling_a_backend_reads_as_the_pin_is_the_pin() {
        let names = RoutingNames::default();
        let none = HeaderMap::new();
        let pin = |q| pinned_id(Some(q), &none, &names, Load::Other);
        assert_eq!(pin("a=1;pulse_deployment=v2").unwrap().unwrap(), "v2");
        assert_eq!(pin("pulse.deployment=v2").unwrap().unwrap(), "v2");
        assert_eq!(pin("pulse%20deployment=v2").unwrap().unwrap(), "v2");
        assert_eq!(pin("pulse[deployment=v2").unwrap().unwrap(), "v2");
        assert_eq!(
            pin("pulse_deployment=v1;pulse.deployment=v2"),
            Err(ConflictingPins)
        );
        assert_eq!(
            pin("pulse_deployment=v1&a=1;pulse_deployment=v2"),
            Err(ConflictingPins)
        );
        assert!(pin("pulsexdeployment=v2").unwrap().is_none());
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
