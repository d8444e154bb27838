//! Charts as SVG text, drawn on the server. Every piece of user text goes through `esc`.
//! Colours come with a second cue (a legend with names, markers, dashes) so that no
//! chart relies on colour alone.

use std::fmt::Write;

use crate::db::runs::PhaseRow;
use crate::db::Ts;

/// Series colours (colour-blind friendly, Okabe–Ito).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

/// Outcome colours, shared with the stylesheet.
pub fn outcome_colour(outcome: &str) -> &'static str {
    match outcome {
        "PASS" => "#1a7f37",
        "FAIL" => "#cf222e",
        "ERROR" => "#8250df",
        "TIMEOUT" => "#bc4c00",
        "ABORTED" => "#57606a",
        "SKIP" => "#8c959f",
        _ => "#8c959f",
    }
}

/// XML text escaping.
pub fn esc(s: &str) -> String {
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

const W: f64 = 760.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;

fn open(h: f64, label: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" class="svg-chart" role="img" aria-label="{}" font-family="system-ui, sans-serif" font-size="11">"#,
        esc(label)
    )
}

fn short(x: f64) -> String {
    super::fmt::num(Some(x))
}

/// "Nice" axis ticks over `[lo, hi]`.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// Padded value range over some numbers (and extra reference lines).
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.06;
    (lo - pad, hi + pad)
}

/// Y axis with grid lines; returns the mapping of values to y.
fn y_axis(out: &mut String, lo: f64, hi: f64, plot_h: f64, label: &str, pct: bool) {
    for t in ticks(lo, hi, 5) {
        let y = TOP + plot_h - (t - lo) / (hi - lo) * plot_h;
        let text = if pct {
            format!("{}%", short(t * 100.0))
        } else {
            short(t)
        };
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#d0d7de" stroke-width="1"/><text x="{}" y="{:.1}" text-anchor="end" fill="#57606a">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(&text)
        );
    }
    if !label.is_empty() {
        let _ = write!(
            out,
            r##"<text x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle" fill="#57606a">{}</text>"##,
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            esc(label)
        );
    }
}

fn legend(out: &mut String, y: f64, items: &[(String, &str, bool)]) {
    let mut x = LEFT;
    for (name, colour, dashed) in items {
        let dash = if *dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r##"<line x1="{x}" x2="{}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="3"{dash}/><text x="{}" y="{}" fill="#24292f">{}</text>"##,
            x + 18.0,
            x + 22.0,
            y + 4.0,
            esc(name)
        );
        x += 30.0 + name.chars().count() as f64 * 6.5;
    }
}

/// Phases of a run as bars on a time axis from the run's start to its end.
pub fn timeline(start: Ts, end: Ts, phases: &[PhaseRow]) -> String {
    let row_h = 22.0;
    let label_w = 180.0;
    let h = TOP + phases.len() as f64 * row_h + 30.0;
    let t0 = start.micros().min(
        phases
            .iter()
            .map(|p| p.started_at.micros())
            .min()
            .unwrap_or(i64::MAX),
    );
    let t1 = end.micros().max(
        phases
            .iter()
            .map(|p| p.ended_at.micros())
            .max()
            .unwrap_or(0),
    );
    let span = (t1 - t0).max(1) as f64;
    let plot_w = W - label_w - RIGHT;
    let mut out = open(h, "Phase timeline");
    for (i, p) in phases.iter().enumerate() {
        let y = TOP + i as f64 * row_h;
        let x = label_w + (p.started_at.micros() - t0) as f64 / span * plot_w;
        let w = ((p.ended_at.micros() - p.started_at.micros()) as f64 / span * plot_w).max(2.0);
        let name: String = p.name.chars().take(28).collect();
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#24292f">{}</text><rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="3" fill="{}" class="phase" data-outcome="{}"><title>{} — {} — {}</title></rect>"##,
            label_w - 8.0,
            y + 15.0,
            esc(&name),
            y + 4.0,
            row_h - 8.0,
            outcome_colour(&p.outcome),
            esc(&p.outcome),
            esc(&p.name),
            esc(&p.outcome),
            esc(&super::fmt::duration(p.duration_us)),
        );
        if p.outcome != "PASS" {
            // A second cue besides colour: the outcome written after the bar.
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" fill="{}" font-weight="bold">{}</text>"##,
                (x + w + 4.0).min(W - 40.0),
                y + 15.0,
                outcome_colour(&p.outcome),
                esc(&p.outcome)
            );
        }
    }
    let axis_y = TOP + phases.len() as f64 * row_h + 4.0;
    let _ = write!(
        out,
        r##"<line x1="{label_w}" x2="{}" y1="{axis_y}" y2="{axis_y}" stroke="#8c959f"/><text x="{label_w}" y="{}" fill="#57606a">0 s</text><text x="{}" y="{}" text-anchor="end" fill="#57606a">{}</text></svg>"##,
        W - RIGHT,
        axis_y + 16.0,
        W - RIGHT,
        axis_y + 16.0,
        esc(&super::fmt::duration(t1 - t0))
    );
    out
}

/// A named series of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Line plot over a numeric x axis.
pub fn lines(series: &[Series], x_label: &str, y_label: &str) -> String {
    let h = 260.0;
    let plot_h = h - TOP - 56.0;
    let plot_w = W - LEFT - RIGHT;
    let (x0, x1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (y0, y1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut out = open(h, "Measurement plot");
    y_axis(&mut out, y0, y1, plot_h, y_label, false);
    for t in ticks(x0, x1, 8) {
        let x = LEFT + (t - x0) / (x1 - x0) * plot_w;
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#57606a">{}</text>"##,
            TOP + plot_h + 14.0,
            esc(&short(t))
        );
    }
    let _ = write!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#57606a">{}</text>"##,
        LEFT + plot_w / 2.0,
        TOP + plot_h + 28.0,
        esc(x_label)
    );
    let mut items = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + (x - x0) / (x1 - x0) * plot_w,
                    TOP + plot_h - (y - y0) / (y1 - y0) * plot_h
                )
            })
            .collect();
        let dash = if i % 2 == 1 {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
            pts.join(" ")
        );
        items.push((s.name.clone(), colour, i % 2 == 1));
    }
    legend(&mut out, h - 10.0, &items);
    out.push_str("</svg>");
    out
}

/// One line per series over days (categorical x), with gaps where a value is missing.
pub fn daily_lines(days: &[String], series: &[(String, Vec<Option<f64>>)], pct: bool) -> String {
    let h = 280.0;
    let plot_h = h - TOP - 60.0;
    let plot_w = W - LEFT - RIGHT;
    let (mut y0, mut y1) = range(series.iter().flat_map(|s| s.1.iter().flatten().copied()));
    let all_positive = series
        .iter()
        .flat_map(|s| s.1.iter().flatten())
        .all(|v| *v >= 0.0);
    if !pct && all_positive {
        // Counts and durations read against zero.
        y0 = 0.0;
    }
    if pct {
        y0 = y0.clamp(0.0, 1.0).min(0.9);
        y0 = (y0 * 10.0).floor() / 10.0;
        y1 = 1.0;
    }
    let n = days.len().max(1);
    let xs = |i: usize| LEFT + (i as f64 + 0.5) / n as f64 * plot_w;
    let mut out = open(h, "Daily values");
    y_axis(&mut out, y0, y1, plot_h, "", pct);
    day_labels(&mut out, days, TOP + plot_h, &xs);
    let mut items = Vec::new();
    for (i, (name, values)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut segment: Vec<String> = Vec::new();
        let flush = |seg: &mut Vec<String>, out: &mut String| {
            if seg.len() > 1 {
                let _ = write!(
                    out,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                    seg.join(" ")
                );
            }
            seg.clear();
        };
        for (d, v) in values.iter().enumerate() {
            match v {
                Some(v) if v.is_finite() => {
                    let (x, y) = (xs(d), TOP + plot_h - (v - y0) / (y1 - y0) * plot_h);
                    segment.push(format!("{x:.1},{y:.1}"));
                    // Markers differ per series (circle, square, diamond…) besides colour.
                    let _ = write!(
                        out,
                        "{}",
                        marker(
                            i,
                            x,
                            y,
                            colour,
                            &format!(
                                "{name} {}: {}",
                                days[d],
                                if pct {
                                    super::fmt::percent(Some(*v))
                                } else {
                                    short(*v)
                                }
                            )
                        )
                    );
                }
                _ => flush(&mut segment, &mut out),
            }
        }
        flush(&mut segment, &mut out);
        items.push((name.clone(), colour, false));
    }
    legend(&mut out, h - 10.0, &items);
    out.push_str("</svg>");
    out
}

fn marker(i: usize, x: f64, y: f64, colour: &str, title: &str) -> String {
    let t = format!("<title>{}</title>", esc(title));
    match i % 4 {
        0 => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}">{t}</circle>"#),
        1 => format!(
            r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{colour}">{t}</rect>"#,
            x - 3.5,
            y - 3.5
        ),
        2 => format!(
            r#"<path d="M{x:.1} {:.1} L{:.1} {y:.1} L{x:.1} {:.1} L{:.1} {y:.1} Z" fill="{colour}">{t}</path>"#,
            y - 4.5,
            x + 4.5,
            y + 4.5,
            x - 4.5
        ),
        _ => format!(
            r#"<path d="M{x:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z" fill="{colour}">{t}</path>"#,
            y - 4.5,
            x + 4.5,
            y + 4.0,
            x - 4.5,
            y + 4.0
        ),
    }
}

fn day_labels(out: &mut String, days: &[String], base: f64, xs: &dyn Fn(usize) -> f64) {
    let every = (days.len() / 10).max(1);
    for (i, d) in days.iter().enumerate() {
        if i % every == 0 || i + 1 == days.len() {
            let label = d.get(5..).unwrap_or(d);
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#57606a">{}</text>"##,
                xs(i),
                base + 14.0,
                esc(label)
            );
        }
    }
}

/// Stacked bars per day: `stacks` are (name, colour, value per day).
pub fn stacked_bars(days: &[String], stacks: &[(String, String, Vec<f64>)]) -> String {
    let h = 260.0;
    let plot_h = h - TOP - 56.0;
    let plot_w = W - LEFT - RIGHT;
    let n = days.len().max(1);
    let totals: Vec<f64> = (0..days.len())
        .map(|d| {
            stacks
                .iter()
                .map(|s| s.2.get(d).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let top = totals.iter().copied().fold(0.0, f64::max).max(1.0);
    let (y0, y1) = (0.0, top * 1.08);
    let xs = |i: usize| LEFT + (i as f64 + 0.5) / n as f64 * plot_w;
    let bw = (plot_w / n as f64 * 0.7).max(1.0);
    let mut out = open(h, "Daily counts");
    y_axis(&mut out, y0, y1, plot_h, "", false);
    day_labels(&mut out, days, TOP + plot_h, &xs);
    for (d, day) in days.iter().enumerate() {
        let mut acc = 0.0;
        for (name, colour, values) in stacks {
            let v = values.get(d).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let y_top = TOP + plot_h - (acc + v) / y1 * plot_h;
            let bh = v / y1 * plot_h;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{y_top:.1}" width="{bw:.1}" height="{bh:.1}" fill="{colour}"><title>{} {}: {}</title></rect>"#,
                xs(d) - bw / 2.0,
                esc(day),
                esc(name),
                short(v)
            );
            acc += v;
        }
    }
    let items: Vec<(String, &str, bool)> = stacks
        .iter()
        .map(|(n, c, _)| (n.clone(), c.as_str(), false))
        .collect();
    legend(&mut out, h - 10.0, &items);
    out.push_str("</svg>");
    out
}

/// Horizontal bars with a label each (a Pareto: longest first, cumulative share noted).
pub fn hbars(items: &[(String, f64, String)]) -> String {
    let row_h = 22.0;
    let label_w = 240.0;
    let h = TOP + items.len().max(1) as f64 * row_h + 8.0;
    let plot_w = W - label_w - RIGHT - 90.0;
    let top = items.iter().map(|i| i.1).fold(0.0, f64::max).max(1e-12);
    let mut out = open(h, "Failure Pareto");
    for (i, (label, v, note)) in items.iter().enumerate() {
        let y = TOP + i as f64 * row_h;
        let w = (v / top * plot_w).max(1.0);
        let name: String = label.chars().take(36).collect();
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#24292f">{}</text><rect x="{label_w}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#cf222e"><title>{}</title></rect><text x="{:.1}" y="{:.1}" fill="#57606a">{}</text>"##,
            label_w - 8.0,
            y + 15.0,
            esc(&name),
            y + 4.0,
            row_h - 8.0,
            esc(label),
            label_w + w + 6.0,
            y + 15.0,
            esc(note)
        );
    }
    out.push_str("</svg>");
    out
}

/// A horizontal reference line with a label at the right end.
fn hline(out: &mut String, y: f64, colour: &str, dash: &str, label: &str) {
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/><text x="{}" y="{:.1}" text-anchor="end" fill="{colour}">{}</text>"##,
        W - RIGHT,
        W - RIGHT,
        y - 3.0,
        esc(label)
    );
}

/// Reference lines of a chart: (label, value, colour, dash).
pub type Reference = (String, f64, &'static str, &'static str);

/// Individuals control chart: the values in order with CL, UCL/LCL and limits; points
/// beyond the control limits drawn as red squares.
pub fn control_chart(
    values: &[f64],
    refs: &[Reference],
    ucl: Option<f64>,
    lcl: Option<f64>,
) -> String {
    let h = 280.0;
    let plot_h = h - TOP - 40.0;
    let plot_w = W - LEFT - RIGHT;
    let (y0, y1) = range(values.iter().copied().chain(refs.iter().map(|r| r.1)));
    let n = values.len().max(2);
    let xs = |i: usize| LEFT + i as f64 / (n - 1) as f64 * plot_w;
    let ys = |v: f64| TOP + plot_h - (v - y0) / (y1 - y0) * plot_h;
    let mut out = open(h, "Control chart");
    y_axis(&mut out, y0, y1, plot_h, "", false);
    for (label, v, colour, dash) in refs {
        hline(
            &mut out,
            ys(*v),
            colour,
            dash,
            &format!("{label} {}", short(*v)),
        );
    }
    let pts: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", xs(i), ys(*v)))
        .collect();
    let _ = write!(
        out,
        r##"<polyline fill="none" stroke="#0072B2" stroke-width="1.2" points="{}"/>"##,
        pts.join(" ")
    );
    for (i, v) in values.iter().enumerate() {
        let out_of_control = ucl.is_some_and(|u| *v > u) || lcl.is_some_and(|l| *v < l);
        if out_of_control {
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="#cf222e"><title>#{} {} (out of control)</title></rect>"##,
                xs(i) - 3.5,
                ys(*v) - 3.5,
                i + 1,
                short(*v)
            );
        } else if values.len() <= 400 {
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#0072B2"><title>#{} {}</title></circle>"##,
                xs(i),
                ys(*v),
                i + 1,
                short(*v)
            );
        }
    }
    let _ = write!(
        out,
        r##"<text x="{LEFT}" y="{:.1}" fill="#57606a">1</text><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#57606a">{} (value number, in time order)</text></svg>"##,
        TOP + plot_h + 16.0,
        W - RIGHT,
        TOP + plot_h + 16.0,
        values.len()
    );
    out
}

/// Histogram drawn from its bins (`edges` has one more entry than `counts`), with the
/// limits and the mean as vertical lines.
pub fn histogram(edges: &[f64], counts: &[u64], refs: &[Reference]) -> String {
    let h = 260.0;
    let plot_h = h - TOP - 40.0;
    let plot_w = W - LEFT - RIGHT;
    let (x0, x1) = range(edges.iter().copied().chain(refs.iter().map(|r| r.1)));
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let xs = |v: f64| LEFT + (v - x0) / (x1 - x0) * plot_w;
    let mut out = open(h, "Histogram");
    y_axis(&mut out, 0.0, top, plot_h, "count", false);
    for (i, c) in counts.iter().enumerate() {
        let (Some(a), Some(b)) = (edges.get(i), edges.get(i + 1)) else {
            break;
        };
        let bh = *c as f64 / top * plot_h;
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#56B4E9" stroke="#0072B2"><title>{} – {}: {c}</title></rect>"##,
            xs(*a),
            TOP + plot_h - bh,
            (xs(*b) - xs(*a)).max(1.0),
            short(*a),
            short(*b)
        );
    }
    for t in ticks(x0, x1, 8) {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#57606a">{}</text>"##,
            xs(t),
            TOP + plot_h + 14.0,
            esc(&short(t))
        );
    }
    for (label, v, colour, dash) in refs {
        let x = xs(*v);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"##,
            TOP + plot_h,
            x + 3.0,
            TOP + 10.0,
            esc(label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let s = lines(
            &[Series {
                name: "<script>".into(),
                points: vec![(0.0, 1.0), (1.0, 2.0)],
            }],
            "a&b",
            "\"q\"",
        );
        assert!(!s.contains("<script>"));
        assert!(s.contains("&lt;script&gt;"));
        assert!(s.contains("a&amp;b"));
    }

    #[test]
    fn ticks_are_round() {
        let t = ticks(0.0, 1.0, 5);
        assert_eq!(t.len(), 6);
        assert_eq!(t[0], 0.0);
        assert!((t[5] - 1.0).abs() < 1e-9);
        assert_eq!(ticks(0.0, 100.0, 4), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
    }
}
