//! `--svg FILE`: one self-contained SVG picture of a run, written by hand (it is plain text).
//! Top panel: throughput (GB/s) per second. Bottom panel: latency p50, p90, p99 and max per
//! second on a logarithmic axis (milliseconds), with red marks at seconds that had errors.
//! The title line repeats the headline figures so the picture stands alone.
//!
//! Invariants: the output is valid XML whatever the input (text is escaped, empty series and
//! zero values are handled); its size is linear in the series (at most one day of points).

use std::fmt::Write;

use crate::report::{SeriesPoint, Summary};
use crate::units::format_us;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 660.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const TOP1: f64 = 80.0;
const H1: f64 = 220.0;
const TOP2: f64 = 370.0;
const H2: f64 = 230.0;
/// The most decades the latency axis spans (1 us .. 1 hour is under 10).
const MAX_DECADES: f64 = 12.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_ceil(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let exp = max.log10().floor();
    let base = 10f64.powf(exp);
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * base >= max {
            return m * base;
        }
    }
    10.0 * base
}

fn polyline(out: &mut String, points: &[(f64, f64)], color: &str, dash: bool) {
    if points.is_empty() {
        return;
    }
    let mut d = String::new();
    for (x, y) in points {
        let _ = write!(d, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{color}" stroke-width="1.6"{} points="{}"/>"#,
        if dash {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        },
        d.trim_end()
    );
}

/// Renders the picture of a run.
pub fn render(summary: &Summary) -> String {
    let series = &summary.series;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let c = &summary.config;
    let title = format!(
        "dp-bench {} {}: {} conns, {}; {:.3} GB/s, {:.1} pieces/s, p99 {}{}",
        c.protocol,
        c.target,
        c.concurrency,
        match c.rate_per_s {
            Some(r) => format!("open loop {r}/s"),
            None => "closed loop".into(),
        },
        summary.throughput.gb_per_s,
        summary.throughput.pieces_per_s,
        format_us(summary.latency.p99_us as f64),
        if summary.ok {
            String::new()
        } else {
            format!("; FAILED: {}", summary.problems.join("; "))
        }
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="30" font-size="15" font-weight="bold"{}>{}</text>"#,
        if summary.ok { "" } else { r##" fill="#c00""## },
        escape(&title)
    );

    let t_max = series.iter().map(|p| p.t_s).fold(0.0f64, f64::max).max(1.0);
    let x = |t: f64| LEFT + t / t_max * PLOT_W;

    // Panel 1: throughput.
    let gb_max = nice_ceil(series.iter().map(|p| p.gb_per_s).fold(0.0, f64::max));
    let y1 = |v: f64| TOP1 + H1 - v / gb_max * H1;
    axes(&mut out, TOP1, H1, "throughput (GB/s)");
    for i in 0..=4 {
        let v = gb_max * i as f64 / 4.0;
        grid_line(&mut out, y1(v), &format!("{v:.3}"));
    }
    let tp: Vec<(f64, f64)> = series.iter().map(|p| (x(p.t_s), y1(p.gb_per_s))).collect();
    polyline(&mut out, &tp, "#1f77b4", false);

    // Panel 2: latency, log scale in ms.
    let lat_ms = |v: Option<u64>| v.map(|us| (us.max(1) as f64) / 1000.0);
    let all: Vec<f64> = series
        .iter()
        .flat_map(|p| [p.p50_us, p.max_us])
        .filter_map(lat_ms)
        .collect();
    // Decades spanned, from the smallest p50 to the largest max; 0.001 ms (1 us) .. 10 ms
    // when there is nothing to show. At most MAX_DECADES grid lines.
    let (lo, hi) = if all.is_empty() {
        (-3.0, 1.0)
    } else {
        let min = all.iter().copied().fold(f64::INFINITY, f64::min).max(0.001);
        let max = all.iter().copied().fold(0.0f64, f64::max).max(0.001);
        let lo = min.log10().floor();
        (lo, max.log10().ceil().clamp(lo + 1.0, lo + MAX_DECADES))
    };
    let y2 = |ms: f64| TOP2 + H2 - ((ms.log10() - lo) / (hi - lo)).clamp(0.0, 1.0) * H2;
    axes(&mut out, TOP2, H2, "latency per second (ms, log scale)");
    for i in 0..=((hi - lo) as usize) {
        let ms = 10f64.powf(lo + i as f64);
        grid_line(&mut out, y2(ms), &format!("{ms}"));
    }
    type Line = (
        &'static str,
        &'static str,
        bool,
        fn(&SeriesPoint) -> Option<u64>,
    );
    let lines: [Line; 4] = [
        ("p50", "#2ca02c", false, |p| p.p50_us),
        ("p90", "#ff7f0e", false, |p| p.p90_us),
        ("p99", "#d62728", false, |p| p.p99_us),
        ("max", "#7f7f7f", true, |p| p.max_us),
    ];
    for (i, (name, color, dash, get)) in lines.iter().enumerate() {
        let pts: Vec<(f64, f64)> = series
            .iter()
            .filter_map(|p| lat_ms(get(p)).map(|ms| (x(p.t_s), y2(ms))))
            .collect();
        polyline(&mut out, &pts, color, *dash);
        let lx = LEFT + 10.0 + i as f64 * 70.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{x2}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{tx}" y="{ty}">{name}</text>"#,
            ly = TOP2 - 12.0,
            x2 = lx + 18.0,
            tx = lx + 22.0,
            ty = TOP2 - 8.0
        );
    }
    for p in series.iter().filter(|p| p.errors > 0) {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#c00" stroke-width="2"><title>{3} errors</title></line>"##,
            x(p.t_s),
            TOP2 + H2,
            TOP2 + H2 + 8.0,
            p.errors
        );
    }

    // Time axis labels, under both panels.
    for i in 0..=5 {
        let t = t_max * i as f64 / 5.0;
        for top_h in [TOP1 + H1, TOP2 + H2] {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{t:.0}s</text>"#,
                x(t),
                top_h + 20.0
            );
        }
    }
    if series.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">no data</text>"#,
            LEFT + PLOT_W / 2.0,
            TOP1 + H1 / 2.0
        );
    }
    out.push_str("</svg>\n");
    out
}

fn axes(out: &mut String, top: f64, height: f64, label: &str) {
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{PLOT_W}" height="{height}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#,
        top - 26.0,
        escape(label)
    );
}

fn grid_line(out: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
        LEFT + PLOT_W,
        LEFT - 6.0,
        y + 4.0,
        escape(label)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(0.7), 1.0);
        assert_eq!(nice_ceil(1.3), 2.0);
        assert_eq!(nice_ceil(3.0), 5.0);
        assert_eq!(nice_ceil(7.0), 10.0);
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
