//! The page's sections as HTML, rendered on the server. The page is whole
//! on first load; after that the script swaps in each section as it is
//! pushed (the same functions render both).

use std::{collections::HashMap, fmt::Write};

use switchyard_core::{DeploymentId, UnixTime, redact};
use switchyard_store::{STATS_WINDOW_SECS, StatsWindow};

use super::{
    chart::{Chart, Series},
    view::{View, WINDOWS, ago, clock},
};

/// The sections, by element id, in page order.
pub const SECTIONS: [&str; 5] = ["banner", "deployments", "charts", "routers", "journal"];

/// Escapes text for an HTML element or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Each deployment's colour, the same in every chart and table row. A
/// deployment keeps its colour from refresh to refresh: it starts from a
/// hash of its id, and only a clash with an older deployment moves it on.
struct Colors(HashMap<DeploymentId, &'static str>);

impl Colors {
    const PALETTE: [&'static str; 10] = [
        "#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
        "#4d7c0f", "#475569",
    ];

    fn of(view: &View) -> Self {
        let mut oldest_first = view.deployments();
        oldest_first.reverse();
        let mut taken = [false; Self::PALETTE.len()];
        let mut out = HashMap::new();
        for d in oldest_first {
            let h = d
                .deployment_id
                .as_str()
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
            let mut slot = (h % Self::PALETTE.len() as u64) as usize;
            if taken.iter().all(|t| *t) {
                taken = [false; Self::PALETTE.len()];
            }
            while taken[slot] {
                slot = (slot + 1) % Self::PALETTE.len();
            }
            taken[slot] = true;
            out.insert(d.deployment_id.clone(), Self::PALETTE[slot]);
        }
        Self(out)
    }

    fn get(&self, id: &DeploymentId) -> &'static str {
        self.0.get(id).copied().unwrap_or(Self::PALETTE[9])
    }

    /// A small square of the deployment's colour (SVG: the page's content
    /// policy allows no inline styles).
    fn swatch(&self, id: &DeploymentId) -> String {
        format!(
            r#"<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" rx="2" fill="{}"/></svg>"#,
            self.get(id)
        )
    }
}

/// Every section of a view, and the store error to show above them.
pub fn sections(view: &View, error: Option<&str>) -> [(&'static str, String); 5] {
    let colors = Colors::of(view);
    [
        ("banner", banner(view, error)),
        ("deployments", deployments(view, &colors)),
        ("charts", charts(view, &colors)),
        ("routers", routers(view)),
        ("journal", journal(view)),
    ]
}

fn banner(view: &View, error: Option<&str>) -> String {
    match error {
        Some(e) => format!(
            r#"<p class="error">The store did not answer: {}. Showing what it said at {}; asking again.</p>"#,
            escape(e),
            clock(view.now)
        ),
        None => format!(
            r#"<p class="ok">Store version {} · read {}</p>"#,
            view.snap.version,
            clock(view.now)
        ),
    }
}

fn deployments(view: &View, colors: &Colors) -> String {
    let mut out = String::from(
        "<table><thead><tr><th>Deployment</th><th>State</th><th>Epoch</th><th>Age</th>\
         <th>WebSockets</th><th>Last activity</th><th>5xx / requests (5m)</th><th>Retirement</th></tr></thead><tbody>",
    );
    let rows = view.deployments();
    if rows.is_empty() {
        out.push_str(r#"<tr><td colspan="8" class="empty">No deployments yet.</td></tr>"#);
    }
    for d in rows {
        let id = &d.deployment_id;
        let (state, class) = view.state(d);
        let sockets = view.sockets(id);
        let total: u64 = sockets.iter().map(|s| s.1).sum();
        let per_replica = if sockets.len() > 1 {
            let parts: Vec<_> = sockets
                .iter()
                .map(|(r, n)| format!("{}: {n}", escape(r)))
                .collect();
            format!(r#" <span class="muted">({})</span>"#, parts.join(", "))
        } else {
            String::new()
        };
        let stats = view.recent.get(id).copied().unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr data-deployment="{id}" data-state="{class}"><td>{swatch}<code>{id}</code><div class="muted">{backend}</div></td><td><span class="badge {class}">{state}</span></td><td>{epoch}</td><td>{age}</td><td class="num">{total}{per_replica}</td><td>{seen}</td><td class="num">{err} / {req}</td><td class="why">{why}</td></tr>"#,
            id = escape(id.as_str()),
            swatch = colors.swatch(id),
            backend = escape(&redact::url(&d.backend_url)),
            state = escape(&state),
            epoch = d.epoch(),
            age = ago(view.now, d.created_at),
            seen = ago(view.now, d.last_seen_at),
            err = stats.errors_5xx,
            req = stats.requests,
            why = escape(&view.retirement(d).unwrap_or_default()),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn charts(view: &View, colors: &Colors) -> String {
    let last = StatsWindow::at(view.now).0;
    // The hour, or less when traffic began more recently (ten minutes at
    // least), so a release that started a few minutes ago fills the chart.
    let hour = last.saturating_sub(u64::from(WINDOWS) - 1);
    let earliest = view
        .history
        .values()
        .filter_map(|points| points.first().map(|p| p.window))
        .min()
        .unwrap_or(hour);
    let first = earliest.clamp(hour, last.saturating_sub(9));
    // The current window is still filling: its rate is over the time it
    // has run, not the whole minute.
    let elapsed = |w: u64| {
        if w == last {
            (view.now.secs() - (w * STATS_WINDOW_SECS) as f64).max(1.0)
        } else {
            STATS_WINDOW_SECS as f64
        }
    };
    let ids = view.deployments();
    let series =
        |value: &dyn Fn(&switchyard_store::WindowStats) -> Option<f64>| -> Vec<Series<'_>> {
            ids.iter()
                .filter_map(|d| {
                    let points: Vec<(u64, f64)> = view
                        .history
                        .get(&d.deployment_id)?
                        .iter()
                        .filter(|w| w.window >= first)
                        .filter_map(|w| Some((w.window, value(w)?)))
                        .collect();
                    Some(Series {
                        id: &d.deployment_id,
                        color: colors.get(&d.deployment_id),
                        points,
                    })
                })
                .collect()
        };
    let rate = Chart {
        name: "requests",
        title: "Requests per second",
        label: |v| trim(v, 1),
        max: None,
        first,
        last,
        // A minute the deployment was known but served nothing is a 0,
        // so a drained deployment's line falls to the axis.
        series: series(&|w| Some(w.requests.requests as f64 / elapsed(w.window))),
    };
    let errors = Chart {
        name: "errors",
        title: "5xx share of requests",
        label: |v| format!("{}%", trim(v * 100.0, 0)),
        max: Some(1.0),
        first,
        last,
        series: series(&|w| (w.requests.requests > 0).then(|| w.requests.error_ratio())),
    };
    let sockets = Chart {
        name: "websockets",
        title: "Open WebSockets (the drain curve)",
        label: |v| trim(v, 0),
        max: None,
        first,
        last,
        series: series(&|w| Some(w.websockets as f64)),
    };
    let mut out = String::new();
    for c in [&rate, &errors, &sockets] {
        out.push_str(&c.svg());
    }
    out.push_str(r#"<ul class="legend">"#);
    for d in &ids {
        if view.history.contains_key(&d.deployment_id) {
            let _ = write!(
                out,
                "<li>{}{}</li>",
                colors.swatch(&d.deployment_id),
                escape(d.deployment_id.as_str())
            );
        }
    }
    out.push_str("</ul>");
    if view.history.is_empty() {
        out.push_str(
            r#"<p class="muted">No traffic in the last hour. Routers report requests and open WebSockets on every heartbeat.</p>"#,
        );
    }
    out
}

/// A number with at most `places` decimals and no trailing zeros.
fn trim(v: f64, places: usize) -> String {
    let s = format!("{v:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn routers(view: &View) -> String {
    if view.replicas.is_empty() {
        return r#"<p class="muted">No router is heartbeating.</p>"#.into();
    }
    let mut out = String::from(
        "<table><thead><tr><th>Replica</th><th>Last beat</th><th>Snapshot</th><th>Store</th><th>Pins</th><th>Private listener</th></tr></thead><tbody>",
    );
    let mut replicas: Vec<_> = view.replicas.iter().collect();
    replicas.sort_by(|a, b| a.replica.cmp(&b.replica));
    for r in replicas {
        let (snapshot, store, pins, private) = match &r.report {
            Some(rep) => (
                rep.snapshot_version.map_or("none yet".into(), |v| {
                    format!("version {v} ({} deployments)", rep.deployments)
                }),
                if rep.store_diverged {
                    r#"<span class="badge revoked">diverged</span>"#
                } else {
                    r#"<span class="badge active">up</span>"#
                },
                rep.pins.describe(),
                rep.private_listener.clone().unwrap_or_else(|| "-".into()),
            ),
            None => ("unknown".into(), "unknown", "unknown".into(), "-".into()),
        };
        let _ = write!(
            out,
            r#"<tr data-replica="{id}"><td><code>{id}</code></td><td>{beat}</td><td>{snapshot}</td><td>{store}</td><td>{pins}</td><td><code>{private}</code></td></tr>"#,
            id = escape(&r.replica),
            beat = ago(view.now, Some(r.seen)),
            snapshot = escape(&snapshot),
            pins = escape(&pins),
            private = escape(&private),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn journal(view: &View) -> String {
    if view.journal.is_empty() {
        return r#"<p class="muted">Nothing recorded yet: promotes, rollbacks, revokes, janitor reloads and deletions appear here.</p>"#.into();
    }
    let mut out = String::from(r#"<ol class="journal">"#);
    for e in &view.journal {
        let _ = write!(
            out,
            r#"<li data-kind="{kind:?}"><time datetime="{iso}">{at}</time> <span class="kind">{what}</span> <code>{id}</code> {detail} <span class="muted">({actor}, {ago})</span></li>"#,
            kind = e.kind,
            iso = escape(&e.at.rfc3339()),
            at = clock(e.at),
            what = e.kind.as_str(),
            id = escape(e.deployment_id.as_ref().map_or("", DeploymentId::as_str)),
            detail = escape(&e.detail),
            actor = escape(&e.actor),
            ago = ago(view.now, Some(e.at)),
        );
    }
    out.push_str("</ol>");
    out
}

/// The whole page, its sections filled from the latest view.
pub fn page(sections: &[(&'static str, String)], now: UnixTime) -> String {
    let section = |id: &str| {
        sections
            .iter()
            .find(|(s, _)| *s == id)
            .map_or("", |(_, html)| html.as_str())
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Switchyard · release dashboard</title>
<link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/dashboard.js" defer></script>
</head>
<body>
<header><h1>Switchyard</h1><span id="live" class="down" title="updates pushed by the server">connecting…</span><span class="muted">read-only · page rendered {at}</span></header>
<div id="banner">{banner}</div>
<section><h2>Deployments</h2><div id="deployments">{deployments}</div></section>
<section><h2>Traffic, up to the last hour</h2><div id="charts" class="charts">{charts}</div></section>
<section><h2>Routers</h2><div id="routers">{routers}</div></section>
<section><h2>Events</h2><div id="journal">{journal}</div></section>
</body>
</html>
"#,
        at = clock(now),
        banner = section("banner"),
        deployments = section("deployments"),
        charts = section("charts"),
        routers = section("routers"),
        journal = section("journal"),
    )
}
