//! Static SVG charts drawn in Rust for the HTML report: line charts (linear or log axes),
//! bar charts and range strips, with axes, grid, ticks and a legend. No script and no
//! library: a page draws the moment it loads, offline, and prints as it shows.

use std::fmt::Write;

/// Chart size in SVG user units (the page scales it to its width).
const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 46.0;

/// Longest series drawn point by point; longer ones are decimated to this many buckets,
/// each keeping its lowest and highest point, so spikes survive (a 1-hour run at 1 point a
/// second draws 2,000 points, not 3,600 per line).
pub const MAX_POINTS: usize = 1000;

/// Colours of successive series, distinguishable in print and for most colour blindness.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    Linear,
    /// Base-10 logarithmic; values at or below zero are not drawn.
    Log,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a planned load beside the achieved one).
    pub dashed: bool,
}

/// A line chart's frame.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Element id, for tests and links.
    pub id: &'a str,
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_scale: Scale,
    pub y_scale: Scale,
    /// Labels of the x ticks, when the default numbers would not do (percentiles).
    pub x_tick_label: Option<fn(f64) -> String>,
}

/// Text safe inside XML and HTML.
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

/// At most `MAX_POINTS` buckets of a series sorted by x, each bucket's lowest and highest
/// point kept in x order.
pub fn decimate(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= 2 * MAX_POINTS {
        return points.to_vec();
    }
    let per = points.len().div_ceil(MAX_POINTS);
    let mut out = Vec::with_capacity(2 * MAX_POINTS);
    for bucket in points.chunks(per) {
        let lo = bucket
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let hi = bucket
            .iter()
            .enumerate()
            .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let (first, second) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(bucket[first]);
        if second != first {
            out.push(bucket[second]);
        }
    }
    out
}

/// The range of the drawable values on a scale, widened so a flat line still has an axis.
fn extent(values: impl Iterator<Item = f64>, scale: Scale, from_zero: bool) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in values.filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return None;
    }
    Some(match scale {
        Scale::Linear => {
            let lo = if from_zero { lo.min(0.0) } else { lo };
            if (hi - lo).abs() < f64::EPSILON {
                (
                    lo - 1.0_f64.max(lo.abs() * 0.1),
                    hi + 1.0_f64.max(hi.abs() * 0.1),
                )
            } else {
                (lo, hi + (hi - lo) * 0.05)
            }
        }
        Scale::Log => {
            // A hair of tolerance, so that 10,000.000001 does not open another decade.
            let (lo, hi) = ((lo.log10() + 1e-9).floor(), (hi.log10() - 1e-9).ceil());
            (
                10f64.powf(lo),
                10f64.powf(if hi > lo { hi } else { lo + 1.0 }),
            )
        }
    })
}

/// Where `v` falls between `lo` and `hi`, 0 to 1.
fn fraction(v: f64, (lo, hi): (f64, f64), scale: Scale) -> f64 {
    match scale {
        Scale::Linear => (v - lo) / (hi - lo),
        Scale::Log => (v.log10() - lo.log10()) / (hi.log10() - lo.log10()),
    }
}

/// Tick values: about 6 round numbers (linear), or the powers of ten (log).
fn ticks((lo, hi): (f64, f64), scale: Scale) -> Vec<f64> {
    match scale {
        Scale::Log => {
            let (a, b) = (lo.log10().round() as i32, hi.log10().round() as i32);
            (a..=b).map(|e| 10f64.powi(e)).collect()
        }
        Scale::Linear => {
            let raw = (hi - lo) / 6.0;
            let magnitude = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .map(|m| m * magnitude)
                .find(|s| *s >= raw)
                .unwrap_or(raw);
            let mut t = (lo / step).ceil() * step;
            let mut out = Vec::new();
            while t <= hi + step * 1e-9 && out.len() < 20 {
                out.push(t);
                t += step;
            }
            out
        }
    }
}

/// A number for an axis: short, without float noise.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A line chart of `series`; an empty chart says there was nothing to draw.
pub fn line_chart(chart: &Chart, series: &[Series]) -> String {
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            points: decimate(&s.points),
            ..s.clone()
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x = extent(all().map(|p| p.0), chart.x_scale, false);
    let y = extent(all().map(|p| p.1), chart.y_scale, true);
    let mut out = frame_start(chart.id, chart.title, legend_rows(series.len()));
    let (Some(x), Some(y)) = (x, y) else {
        let _ = write!(
            out,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">nothing to draw</text></svg>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return out;
    };
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |v: f64| LEFT + fraction(v, x, chart.x_scale) * pw;
    let py = |v: f64| TOP + ph - fraction(v, y, chart.y_scale) * ph;
    // Time before the measured window (set-up, warm-up) is shaded: shown, never mixed in.
    if chart.x_scale == Scale::Linear && x.0 < 0.0 && x.1 > 0.0 {
        let _ = write!(
            out,
            "<rect class=\"warmup\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{ph}\" \
             fill=\"#f1f1f1\"/><text class=\"tick\" x=\"{:.1}\" y=\"{}\">set-up and warm-up</text>",
            px(0.0) - LEFT,
            LEFT + 4.0,
            TOP + 12.0
        );
    }
    for t in ticks(y, chart.y_scale) {
        let yy = py(t);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + pw,
            LEFT - 6.0,
            yy + 4.0,
            short_number(t)
        );
    }
    for t in ticks(x, chart.x_scale) {
        let xx = px(t);
        let label = chart.x_tick_label.map_or_else(|| short_number(t), |f| f(t));
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{}\"/>\
             <text class=\"tick\" x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            TOP + ph,
            TOP + ph + 16.0,
            escape(&label)
        );
    }
    let _ = write!(
        out,
        "<rect class=\"plot\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\"/>\
         <text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
         <text class=\"label\" transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        LEFT + pw / 2.0,
        HEIGHT - 8.0,
        escape(chart.x_label),
        TOP + ph / 2.0,
        escape(chart.y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let drawable: Vec<&(f64, f64)> = s
            .points
            .iter()
            .filter(|p| {
                p.0.is_finite()
                    && p.1.is_finite()
                    && (chart.x_scale == Scale::Linear || p.0 > 0.0)
                    && (chart.y_scale == Scale::Linear || p.1 > 0.0)
            })
            .collect();
        let mut d = String::new();
        for (j, p) in drawable.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if j == 0 { "M" } else { " L" },
                px(p.0),
                py(p.1)
            );
        }
        if drawable.len() == 1 {
            // A single point is a dot, or it would not show.
            let _ = write!(
                out,
                "<circle class=\"series\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
                px(drawable[0].0),
                py(drawable[0].1),
                escape(&s.color)
            );
        }
        let _ = write!(
            out,
            "<path class=\"series\" data-name=\"{}\" d=\"{d}\" stroke=\"{}\"{} fill=\"none\"/>",
            escape(&s.name),
            escape(&s.color),
            if s.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            }
        );
        legend_entry(&mut out, i, &s.name, &s.color);
    }
    out.push_str("</svg>");
    out
}

/// Bars over categories, e.g. a latency distribution: (label, value) each.
pub fn bar_chart(id: &str, title: &str, y_label: &str, bars: &[(String, f64)]) -> String {
    let mut out = frame_start(id, title, 0);
    let Some(max) = bars
        .iter()
        .map(|b| b.1)
        .filter(|v| v.is_finite())
        .reduce(f64::max)
        .filter(|m| *m > 0.0)
    else {
        let _ = write!(
            out,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">nothing to draw</text></svg>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return out;
    };
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let w = pw / bars.len() as f64;
    for t in ticks((0.0, max * 1.05), Scale::Linear) {
        let yy = TOP + ph - t / (max * 1.05) * ph;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + pw,
            LEFT - 6.0,
            yy + 4.0,
            short_number(t)
        );
    }
    let every = bars.len().div_ceil(12).max(1);
    for (i, (label, v)) in bars.iter().enumerate() {
        let h = v / (max * 1.05) * ph;
        let xx = LEFT + i as f64 * w;
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
            xx + 1.0,
            TOP + ph - h,
            (w - 2.0).max(1.0),
            PALETTE[0],
            escape(label),
            short_number(*v)
        );
        if i % every == 0 {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                xx + w / 2.0,
                TOP + ph + 16.0,
                escape(label)
            );
        }
    }
    let _ = write!(
        out,
        "<rect class=\"plot\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\"/>\
         <text class=\"label\" transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text></svg>",
        TOP + ph / 2.0,
        escape(y_label)
    );
    out
}

/// Legend entries per row, under the plot.
const LEGEND_PER_ROW: usize = 4;
const LEGEND_ROW: f64 = 16.0;

fn legend_rows(series: usize) -> usize {
    series.div_ceil(LEGEND_PER_ROW)
}

/// The chart's frame: its height grows by one line per row of legend below the plot.
fn frame_start(id: &str, title: &str, legend_rows: usize) -> String {
    let height = HEIGHT + LEGEND_ROW * legend_rows as f64;
    format!(
        "<svg class=\"chart\" id=\"{}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <text class=\"title\" x=\"{LEFT}\" y=\"20\">{}</text>",
        escape(id),
        escape(title),
        escape(title)
    )
}

fn legend_entry(out: &mut String, i: usize, name: &str, color: &str) {
    let x = LEFT + 200.0 * (i % LEGEND_PER_ROW) as f64;
    let y = HEIGHT + 4.0 + LEGEND_ROW * (i / LEGEND_PER_ROW) as f64;
    let _ = write!(
        out,
        "<rect class=\"key\" x=\"{x:.0}\" y=\"{:.0}\" width=\"12\" height=\"4\" fill=\"{}\"/>\
         <text class=\"legend\" x=\"{:.0}\" y=\"{:.0}\">{}</text>",
        y - 4.0,
        escape(color),
        x + 16.0,
        y,
        escape(name)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_the_extremes_and_bounds_the_points() {
        let mut points: Vec<(f64, f64)> = (0..3600).map(|i| (i as f64, 1.0)).collect();
        points[1234].1 = 500.0;
        points[2345].1 = 0.01;
        let d = decimate(&points);
        assert!(d.len() <= 2 * MAX_POINTS, "{}", d.len());
        assert!(d.contains(&(1234.0, 500.0)));
        assert!(d.contains(&(2345.0, 0.01)));
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        // Short series are drawn as they are.
        assert_eq!(decimate(&points[..100]), points[..100].to_vec());
    }

    #[test]
    fn a_line_chart_draws_each_series_and_escapes_names() {
        let chart = Chart {
            id: "c1",
            title: "latency <p99>",
            x_label: "s",
            y_label: "ms",
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            x_tick_label: None,
        };
        let series = [
            Series {
                name: "a&b".into(),
                color: PALETTE[0].into(),
                points: vec![(1.0, 2.0), (2.0, 3.0), (3.0, 1.0)],
                dashed: false,
            },
            Series {
                name: "planned".into(),
                color: PALETTE[1].into(),
                points: vec![(1.0, 2.5), (3.0, 2.5)],
                dashed: true,
            },
        ];
        let svg = line_chart(&chart, &series);
        assert_eq!(svg.matches("<path class=\"series\"").count(), 2, "{svg}");
        assert!(svg.contains("data-name=\"a&amp;b\""), "{svg}");
        assert!(svg.contains("latency &lt;p99&gt;"), "{svg}");
        assert!(svg.contains("stroke-dasharray"), "{svg}");
        assert!(svg.contains("d=\"M"), "{svg}");
        // Nothing finite to draw: said so, no path.
        let empty = line_chart(&chart, &[]);
        assert!(
            empty.contains("nothing to draw") && !empty.contains("<path"),
            "{empty}"
        );
    }

    #[test]
    fn log_axes_drop_what_they_cannot_show() {
        let chart = Chart {
            id: "c",
            title: "t",
            x_label: "x",
            y_label: "y",
            x_scale: Scale::Log,
            y_scale: Scale::Log,
            x_tick_label: None,
        };
        let s = Series {
            name: "s".into(),
            color: PALETTE[0].into(),
            points: vec![(0.0, 1.0), (10.0, 0.0), (10.0, 5.0), (1000.0, 50.0)],
            dashed: false,
        };
        let svg = line_chart(&chart, &[s]);
        // Two drawable points: one move, one line.
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d.matches('M').count() + d.matches('L').count(), 2, "{d}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn time_before_the_measured_window_is_shaded() {
        let chart = Chart {
            id: "c",
            title: "t",
            x_label: "s",
            y_label: "y",
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            x_tick_label: None,
        };
        let series = |from: f64| Series {
            name: "s".into(),
            color: PALETTE[0].into(),
            points: vec![(from, 1.0), (5.0, 2.0)],
            dashed: false,
        };
        assert!(line_chart(&chart, &[series(-3.0)]).contains("class=\"warmup\""));
        assert!(!line_chart(&chart, &[series(1.0)]).contains("class=\"warmup\""));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            ticks((0.0, 10.0), Scale::Linear),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(
            ticks((1.0, 1000.0), Scale::Log),
            vec![1.0, 10.0, 100.0, 1000.0]
        );
        assert_eq!(short_number(25_000.0), "25k");
        assert_eq!(short_number(0.5), "0.5");
    }
}
