//! Line charts as inline SVG, drawn on the server: one polyline per
//! deployment over the hour's statistics windows. A hand-written few dozen
//! lines beat a charting library here: no script to ship, nothing to load
//! from a CDN, and 50 deployments are 50 short polylines.

use std::fmt::Write;

use switchyard_core::DeploymentId;

use super::render::escape;

/// About the size a chart is drawn at, so its labels read at their size.
const WIDTH: f64 = 380.0;
const HEIGHT: f64 = 140.0;
/// Room on the left for the axis labels, below for the time labels.
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 16.0;

pub struct Series<'a> {
    pub id: &'a DeploymentId,
    pub color: &'static str,
    /// (window, value), oldest first.
    pub points: Vec<(u64, f64)>,
}

pub struct Chart<'a> {
    /// A name for tests and styles (`data-chart`).
    pub name: &'static str,
    pub title: &'static str,
    /// Formats an axis value.
    pub label: fn(f64) -> String,
    /// A fixed top of the axis (1 for a share), else the largest value.
    pub max: Option<f64>,
    pub first: u64,
    pub last: u64,
    pub series: Vec<Series<'a>>,
}

impl Chart<'_> {
    pub fn svg(&self) -> String {
        let top = self.max.unwrap_or_else(|| {
            let peak = self
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .fold(0.0, f64::max);
            nice_ceiling(peak)
        });
        let span = (self.last.saturating_sub(self.first)).max(1) as f64;
        let plot_w = WIDTH - LEFT;
        let plot_h = HEIGHT - BOTTOM;
        let x = |w: u64| LEFT + (w.saturating_sub(self.first)) as f64 / span * plot_w;
        let y = |v: f64| plot_h - (v / top).clamp(0.0, 1.0) * (plot_h - 4.0);
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<figure class="chart"><figcaption>{}</figcaption><svg data-chart="{}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
            escape(self.title),
            self.name,
            escape(self.title),
        );
        // Grid: the top, the middle and the baseline, labelled.
        for frac in [1.0, 0.5, 0.0] {
            let gy = y(top * frac);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{LEFT}" y1="{gy:.1}" x2="{WIDTH}" y2="{gy:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 4.0,
                gy + 4.0,
                escape(&(self.label)(top * frac)),
            );
        }
        let minutes = self.last.saturating_sub(self.first);
        let ago = |m: u64| format!("-{m}m");
        for (frac, text, anchor) in [
            (0.0, ago(minutes), "start"),
            (0.5, ago(minutes / 2), "middle"),
            (1.0, "now".to_string(), "end"),
        ] {
            let _ = write!(
                out,
                r#"<text class="axis" x="{:.1}" y="{HEIGHT}" text-anchor="{anchor}">{text}</text>"#,
                LEFT + frac * plot_w
            );
        }
        for s in &self.series {
            if s.points.is_empty() {
                continue;
            }
            let total: f64 = s.points.iter().map(|p| p.1).sum();
            let _ = write!(
                out,
                r#"<g data-deployment="{}" data-points="{}" data-sum="{}">"#,
                escape(s.id.as_str()),
                s.points.len(),
                total,
            );
            if let [(w, v)] = s.points.as_slice() {
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"#,
                    x(*w),
                    y(*v),
                    s.color
                );
            } else {
                out.push_str(r#"<polyline fill="none" stroke-width="1.8" stroke=""#);
                out.push_str(s.color);
                out.push_str(r#"" points=""#);
                for (w, v) in &s.points {
                    let _ = write!(out, "{:.1},{:.1} ", x(*w), y(*v));
                }
                out.push_str(r#""/>"#);
            }
            let _ = write!(out, "<title>{}</title></g>", escape(s.id.as_str()));
        }
        out.push_str("</svg></figure>");
        out
    }
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `v`, so axis
/// labels are round numbers.
pub fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(200.0), 200.0);
    }

    #[test]
    fn a_series_is_a_polyline_inside_the_box() {
        let id = DeploymentId::new("v1").unwrap_or_else(|e| panic!("{e}"));
        let chart = Chart {
            name: "requests",
            title: "Requests per second",
            label: |v| format!("{v}"),
            max: None,
            first: 100,
            last: 159,
            series: vec![Series {
                id: &id,
                color: "#000",
                points: vec![(100, 1.0), (130, 4.0), (159, 2.0)],
            }],
        };
        let svg = chart.svg();
        assert!(
            svg.contains(r#"data-deployment="v1" data-points="3""#),
            "{svg}"
        );
        let points = svg
            .split(r#" points=""#)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default();
        for pair in points.split_whitespace() {
            let (x, y) = pair.split_once(',').unwrap_or_default();
            let (x, y): (f64, f64) = (x.parse().unwrap_or(-1.0), y.parse().unwrap_or(-1.0));
            assert!(
                (LEFT..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y),
                "{pair}"
            );
        }
    }
}
