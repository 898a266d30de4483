//! An SVG of throughput and p99 latency against concurrency, one row per
//! path, the service beside its raw limit. Hand-written: two line charts do
//! not justify a plotting crate and its font stack.

use std::fmt::Write;

use crate::paths::Measured;

const CHART_W: f64 = 380.0;
const CHART_H: f64 = 200.0;
const MARGIN: f64 = 48.0;
const ROW_H: f64 = CHART_H + 60.0;

struct Series<'a> {
    label: &'a str,
    colour: &'a str,
    dashed: bool,
    points: Vec<(usize, f64)>,
}

fn chart(svg: &mut String, x0: f64, y0: f64, title: &str, unit: &str, series: &[Series]) {
    let levels: Vec<usize> = {
        let mut all: Vec<usize> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let max_y = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    // Concurrency levels are spaced evenly (they are usually powers of two).
    let x_of = |level: usize| {
        let index = levels.iter().position(|l| *l == level).unwrap_or(0) as f64;
        x0 + MARGIN + index * (CHART_W - MARGIN - 10.0) / (levels.len().max(2) - 1) as f64
    };
    let y_of = |value: f64| y0 + CHART_H - value / max_y * (CHART_H - 20.0);
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="12" font-weight="bold">{title}</text>"##,
        x0 + MARGIN,
        y0 + 12.0
    );
    let _ = write!(
        svg,
        r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#888"/><line x1="{0}" y1="{2}" x2="{3}" y2="{2}" stroke="#888"/>"##,
        x0 + MARGIN,
        y0 + 20.0,
        y0 + CHART_H,
        x0 + CHART_W
    );
    for tick in 0..=4 {
        let value = max_y / 1.1 * tick as f64 / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="9" text-anchor="end">{:.0}{unit}</text>"##,
            x0 + MARGIN - 4.0,
            y_of(value) + 3.0,
            value
        );
    }
    for level in &levels {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="9" text-anchor="middle">{level}</text>"##,
            x_of(*level),
            y0 + CHART_H + 12.0
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="9" text-anchor="middle">concurrent callers</text>"##,
        x0 + MARGIN + (CHART_W - MARGIN) / 2.0,
        y0 + CHART_H + 24.0
    );
    for (i, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|(level, value)| format!("{:.1},{:.1}", x_of(*level), y_of(*value)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="5,3""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"##,
            s.colour,
            path.join(" ")
        );
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="9" fill="{}">{}</text>"##,
            x0 + CHART_W - 90.0,
            y0 + 30.0 + 12.0 * i as f64,
            s.colour,
            s.label
        );
    }
}

/// The plot of every path measured at more than one concurrency.
pub fn svg(results: &[Measured]) -> String {
    let mut paths: Vec<&str> = Vec::new();
    for m in results {
        if !paths.contains(&m.path.as_str()) {
            paths.push(m.path.as_str());
        }
    }
    let height = ROW_H * paths.len() as f64 + 20.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"##,
        2.0 * CHART_W + 60.0
    );
    for (row, path) in paths.iter().enumerate() {
        let rows: Vec<&Measured> = results.iter().filter(|m| m.path == *path).collect();
        let y0 = 10.0 + ROW_H * row as f64;
        let service = |f: fn(&crate::load::Figures) -> f64| Series {
            label: "service",
            colour: "#1f77b4",
            dashed: false,
            points: rows
                .iter()
                .map(|m| (m.concurrency, f(&m.service)))
                .collect(),
        };
        let raw = |f: fn(&crate::load::Figures) -> f64| Series {
            label: "raw limit",
            colour: "#d62728",
            dashed: true,
            points: rows
                .iter()
                .filter_map(|m| m.raw.as_ref().map(|r| (m.concurrency, f(r))))
                .collect(),
        };
        chart(
            &mut svg,
            0.0,
            y0,
            &format!("{path}: calls/s"),
            "",
            &[service(|f| f.per_second), raw(|f| f.per_second)],
        );
        chart(
            &mut svg,
            CHART_W + 40.0,
            y0,
            &format!("{path}: p99"),
            " ms",
            &[service(|f| f.p99_ms), raw(|f| f.p99_ms)],
        );
    }
    svg.push_str("</svg>\n");
    svg
}
