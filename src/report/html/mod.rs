//! The HTML report: one self-contained page (inline CSS and SVG, no script, no request
//! leaves it) for one run or several overlaid, and for a comparison. Charts are static SVG
//! drawn in Rust (`svg`): they show the moment the page loads, offline, and print.

use super::svg::{self, bar_chart, escape, line_chart, Chart, Scale, Series, PALETTE};
use super::{fmt_bytes, fmt_latency_us, fmt_rate, verdict_line};
use crate::gate::compare::{Comparison, Metric, Outcome, Row, Side, Verdict};
use crate::results::names::{FLOW_EXECUTION, TOTALS};
use crate::results::{Load, Results};
use hdrhistogram::Histogram;
use std::fmt::Write;

mod compare;
mod server;

pub use compare::render_compare_html;
use server::*;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:960px;\
color:#222}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;\
border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;\
border-bottom:1px solid #eee;text-align:right}th{background:#f6f6f6}td:first-child,\
th:first-child{text-align:left}.verdict{font-weight:600;padding:6px 10px;border-radius:4px;\
display:inline-block}.pass{background:#e3f4e3;color:#185c18}.fail{background:#fbe3e3;\
color:#8a1414}.warn{background:#fff3d6;color:#7a5200}.muted{color:#777}svg.chart{width:100%;\
height:auto;display:block;margin:8px 0}svg .grid{stroke:#eee}svg .plot{fill:none;stroke:#bbb}\
svg .tick,svg .legend{font-size:11px;fill:#555}svg .label{font-size:12px;fill:#333}\
svg .title{font-size:14px;font-weight:600}svg .series{stroke-width:1.8}svg .empty{fill:#999}";

/// The page for one run, or for several runs overlaid (each chart one line per run).
pub fn render_html(runs: &[&Results]) -> String {
    let title = match runs {
        [one] => format!("stepflow-bench: {} ({})", one.scenario, one.started_at),
        many => format!("stepflow-bench: {} runs", many.len()),
    };
    let mut out = page_start(&title);
    let _ = write!(out, "<h1>{}</h1>", escape(&title));
    for (i, r) in runs.iter().enumerate() {
        let class = match (r.aborted.is_some(), r.exit_code) {
            (true, _) => "warn",
            (false, 0) => "pass",
            _ => "fail",
        };
        let _ = write!(
            out,
            "<p><span class=\"verdict {class}\">{}{}</span></p>",
            if runs.len() > 1 {
                format!("run {}: ", i + 1)
            } else {
                String::new()
            },
            escape(&verdict_line(r))
        );
    }
    summary(&mut out, runs);
    targets(&mut out, runs);
    out.push_str("<h2>Over time</h2>");
    out.push_str(&throughput_chart(runs));
    out.push_str(&latency_chart(runs));
    if let [one] = runs {
        out.push_str(&per_operation_charts(one));
    }
    out.push_str(
        "<p class=\"muted\">The warm-up is not in these series: second 1 is the \
        first second measured.</p><h2>Latency spectrum</h2>",
    );
    out.push_str(&spectrum_chart(runs));
    out.push_str(&distribution_chart(runs[0]));
    operations(&mut out, runs);
    server(&mut out, runs);
    environment(&mut out, runs);
    out.push_str("</body></html>\n");
    out
}

fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

/// "run 2" for several runs, the scenario's name for one.
fn run_name(runs: &[&Results], i: usize) -> String {
    if runs.len() == 1 {
        runs[0].scenario.clone()
    } else {
        format!("run {} ({})", i + 1, runs[i].scenario)
    }
}

fn load_text(load: &Load) -> String {
    match load {
        Load::Closed { concurrency } => format!("closed model, {concurrency} workers"),
        Load::Open {
            rate_per_s,
            max_in_flight,
        } => format!(
            "open model, {} req/s (≤ {max_in_flight} in flight)",
            fmt_rate(*rate_per_s)
        ),
    }
}

fn summary(out: &mut String, runs: &[&Results]) {
    out.push_str("<h2>Summary</h2><table><tr><th></th><th>target</th><th>load</th>\
        <th>measured</th><th>requests</th><th>ops/s</th><th>p50</th><th>p99</th><th>errors</th></tr>");
    for (i, r) in runs.iter().enumerate() {
        let t = &r.totals;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&run_name(runs, i)),
            escape(&r.target),
            escape(&load_text(&r.load)),
            r.duration_s,
            t.count,
            fmt_rate(t.throughput),
            fmt_latency_us(t.latency_us.p50),
            fmt_latency_us(t.latency_us.p99),
            t.errors
        );
    }
    out.push_str("</table>");
}

fn targets(out: &mut String, runs: &[&Results]) {
    if runs.iter().all(|r| r.targets.is_empty()) {
        return;
    }
    out.push_str(
        "<h2>Targets</h2><table><tr><th>run</th><th>metric</th><th>target</th>\
        <th>measured</th><th></th></tr>",
    );
    for (i, r) in runs.iter().enumerate() {
        for t in &r.targets {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td><span class=\"verdict {}\">{}</span></td></tr>",
                escape(&run_name(runs, i)),
                escape(&t.metric),
                escape(&t.target),
                escape(&t.measured_text()),
                if t.passed { "pass" } else { "fail" },
                if t.passed { "PASS" } else { "FAIL" }
            );
        }
    }
    out.push_str("</table>");
}

fn color(i: usize) -> String {
    PALETTE[i % PALETTE.len()].to_string()
}

fn throughput_chart(runs: &[&Results]) -> String {
    let mut series = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let name = run_name(runs, i);
        let points = |f: fn(&crate::metrics::TimeSeriesPoint) -> f64| {
            r.timeseries.iter().map(|p| (p.t_s as f64, f(p))).collect()
        };
        series.push(Series {
            name: format!("{name} achieved"),
            color: color(2 * i),
            points: points(|p| (p.ops - p.errors) as f64),
            dashed: false,
        });
        if r.timeseries.iter().any(|p| p.errors > 0) {
            series.push(Series {
                name: format!("{name} errors"),
                color: color(2 * i + 1),
                points: points(|p| p.errors as f64),
                dashed: false,
            });
        }
        if let (Load::Open { rate_per_s, .. }, Some(last)) = (r.load, r.timeseries.last()) {
            series.push(Series {
                name: format!("{name} planned"),
                color: color(2 * i),
                points: vec![(1.0, rate_per_s), (last.t_s as f64, rate_per_s)],
                dashed: true,
            });
        }
    }
    line_chart(
        &Chart {
            id: "throughput",
            title: "Throughput and errors per second",
            x_label: "seconds since the measured start",
            y_label: "requests / s",
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            x_tick_label: None,
        },
        &series,
    )
}

fn latency_chart(runs: &[&Results]) -> String {
    let mut series = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let name = run_name(runs, i);
        for (k, (what, f)) in [
            (
                "p50",
                (|p: &crate::metrics::TimeSeriesPoint| p.p50_us) as fn(&_) -> f64,
            ),
            ("p99", |p| p.p99_us),
        ]
        .into_iter()
        .enumerate()
        {
            series.push(Series {
                name: format!("{name} {what}"),
                color: color(2 * i + k),
                // Seconds without a success have no latency to show.
                points: r
                    .timeseries
                    .iter()
                    .filter(|p| p.ops > p.errors)
                    .map(|p| (p.t_s as f64, f(p) / 1000.0))
                    .collect(),
                dashed: false,
            });
        }
    }
    line_chart(
        &Chart {
            id: "latency",
            title: "Latency per second (successes), from the intended send time",
            x_label: "seconds since the measured start",
            y_label: "ms",
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            x_tick_label: None,
        },
        &series,
    )
}

/// Each operation's requests per second and p99 over time, one line per operation.
fn per_operation_charts(r: &Results) -> String {
    if r.operations_timeseries.is_empty() {
        return String::new();
    }
    let series = |f: fn(&crate::metrics::TimeSeriesPoint) -> Option<f64>| -> Vec<Series> {
        r.operations_timeseries
            .iter()
            .enumerate()
            .map(|(i, (name, points))| Series {
                name: name.clone(),
                color: color(i),
                points: points
                    .iter()
                    .filter_map(|p| f(p).map(|v| (p.t_s as f64, v)))
                    .collect(),
                dashed: false,
            })
            .collect()
    };
    let chart = |id, title, y_label| Chart {
        id,
        title,
        x_label: "seconds since the measured start",
        y_label,
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        x_tick_label: None,
    };
    let mut out = line_chart(
        &chart(
            "operations-throughput",
            "Requests per second, by operation",
            "requests / s",
        ),
        &series(|p| Some(p.ops as f64)),
    );
    out.push_str(&line_chart(
        &chart(
            "operations-p99",
            "p99 latency per second, by operation",
            "ms",
        ),
        // A second without a success has no latency to show.
        &series(|p| (p.ops > p.errors).then(|| p.p99_us / 1000.0)),
    ));
    out
}

/// x of quantile q on the spectrum: 1 / (1 - q), so p90 is 10, p99 100, p99.9 1000.
fn spectrum_x(q: f64) -> f64 {
    1.0 / (1.0 - q)
}

fn percentile_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 1.0 / x);
    format!("p{}", svg::short_number((q * 100.0).round() / 100.0))
}

/// Latency at quantiles from p0 to p99.99, milliseconds, as (1/(1-q), ms).
fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=40)
        .map(|k| 1.0 - 10f64.powf(-f64::from(k) / 10.0))
        .map(|q| (spectrum_x(q), h.value_at_quantile(q) as f64 / 1e6))
        .collect()
}

fn spectrum_chart(runs: &[&Results]) -> String {
    let mut series = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        // One run: each operation and the totals; several: the totals of each.
        let ops: Vec<(&String, &crate::metrics::OpStats)> = if runs.len() == 1 {
            r.operations
                .iter()
                .filter(|(n, _)| n.as_str() != FLOW_EXECUTION)
                .collect()
        } else {
            Vec::new()
        };
        let totals = TOTALS.to_string();
        for (name, stats) in ops.into_iter().chain(std::iter::once((&totals, &r.totals))) {
            if let Ok(h) = stats.decode_histogram() {
                let label = if runs.len() == 1 {
                    name.clone()
                } else {
                    format!("{} {name}", run_name(runs, i))
                };
                series.push(Series {
                    color: color(series.len()),
                    name: label,
                    points: spectrum(&h),
                    dashed: false,
                });
            }
        }
    }
    line_chart(
        &Chart {
            id: "spectrum",
            title: "Latency by percentile (successes; HdrHistogram spectrum)",
            x_label: "percentile",
            y_label: "ms (log)",
            x_scale: Scale::Log,
            y_scale: Scale::Log,
            x_tick_label: Some(percentile_label),
        },
        &series,
    )
}

/// How many successes fell in each of 30 log-spaced latency buckets.
fn distribution(h: &Histogram<u64>) -> Vec<(String, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = ((h.min().max(1)) as f64, (h.max().max(2)) as f64);
    let n = 30;
    let step = (hi / lo).powf(1.0 / f64::from(n));
    (0..n)
        .map(|i| {
            let a = lo * step.powi(i);
            let b = lo * step.powi(i + 1);
            let count = h.count_between(a as u64, (b as u64).saturating_sub(1).max(a as u64));
            (fmt_latency_us(a / 1000.0), count as f64)
        })
        .collect()
}

fn distribution_chart(r: &Results) -> String {
    let bars = r
        .totals
        .decode_histogram()
        .map(|h| distribution(&h))
        .unwrap_or_default();
    bar_chart(
        "distribution",
        "Latency distribution of all successes (log-spaced buckets)",
        "requests",
        &bars,
    )
}

fn operations(out: &mut String, runs: &[&Results]) {
    out.push_str("<h2>Operations</h2><table><tr><th>run</th><th>operation</th><th>count</th>\
        <th>ops/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th></tr>");
    for (i, r) in runs.iter().enumerate() {
        for (name, s) in r
            .operations
            .iter()
            .chain(std::iter::once((&TOTALS.to_string(), &r.totals)))
        {
            let l = &s.latency_us;
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&run_name(runs, i)),
                escape(name),
                s.count,
                fmt_rate(s.throughput),
                fmt_latency_us(l.p50),
                fmt_latency_us(l.p90),
                fmt_latency_us(l.p99),
                fmt_latency_us(l.p999),
                fmt_latency_us(l.max),
                s.errors
            );
        }
    }
    out.push_str("</table>");
}

fn environment(out: &mut String, runs: &[&Results]) {
    out.push_str(
        "<h2>Environment</h2><table><tr><th>run</th><th>started</th><th>CPU</th>\
        <th>cores</th><th>OS</th><th>version</th><th>other work on the machine</th></tr>",
    );
    for (i, r) in runs.iter().enumerate() {
        let e = &r.environment;
        let machine = r.machine.map_or("-".into(), |m| {
            format!(
                "{:.1} % CPU, {:.1} % steal, load {:.2}",
                m.other_cpu_pct, m.steal_pct, m.load_avg_1m
            )
        });
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            escape(&run_name(runs, i)),
            escape(&r.started_at),
            escape(&e.cpu),
            e.cores,
            escape(&e.os),
            escape(&e.version),
            escape(e.git.as_deref().unwrap_or("")),
            escape(&machine)
        );
    }
    out.push_str("</table>");
    let warnings: Vec<&String> = runs.iter().flat_map(|r| &r.warnings).collect();
    if !warnings.is_empty() {
        out.push_str("<h2>Warnings</h2><ul>");
        for w in warnings {
            let _ = write!(out, "<li>{}</li>", escape(w));
        }
        out.push_str("</ul>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::compare::tests::run;
    use crate::gate::compare::{compare, CompareOptions};
    use crate::metrics::TimeSeriesPoint;

    /// `n` seconds of 100 requests, a few failing in second 5.
    fn seconds(n: u64) -> Vec<TimeSeriesPoint> {
        (1..=n)
            .map(|t| TimeSeriesPoint {
                t_s: t,
                ops: 100,
                errors: if t == 5 { 3 } else { 0 },
                p50_us: 500.0,
                p99_us: 700.0 + t as f64,
                p90_us: 600.0,
                max_us: 900.0,
            })
            .collect()
    }

    #[test]
    fn a_run_page_has_every_chart_drawn_and_nothing_external() {
        let mut r = run("st<r>ess", "2024-05-01T10:00:00Z", 1000.0, 700.0, 3);
        r.timeseries = seconds(10);
        let page = render_html(&[&r]);
        for id in ["throughput", "latency", "spectrum", "distribution"] {
            let chart = page
                .split(&format!("id=\"{id}\""))
                .nth(1)
                .unwrap_or_else(|| panic!("no {id} chart"));
            let chart = chart.split("</svg>").next().unwrap();
            assert!(
                chart.contains("d=\"M") || chart.contains("<rect class=\"bar\""),
                "{id} drew nothing: {chart}"
            );
        }
        assert!(page.contains("st&lt;r&gt;ess") && !page.contains("st<r>ess"));
        // Nothing that would fetch (addresses in the text, such as the target, fetch nothing).
        for fetch in [
            "<script", " src=", "href=", "url(", "@import", "<link", "<img", "<iframe",
        ] {
            assert!(!page.contains(fetch), "{fetch} in the page");
        }
    }

    #[test]
    fn several_runs_are_overlaid_one_line_each() {
        let mut a = run("stress", "2024-05-01T10:00:00Z", 1000.0, 700.0, 0);
        let mut b = run("stress", "2024-05-01T10:05:00Z", 900.0, 800.0, 0);
        a.timeseries = seconds(10);
        b.timeseries = seconds(12);
        let page = render_html(&[&a, &b]);
        assert!(
            page.contains("run 1 (stress) achieved") && page.contains("run 2 (stress) achieved")
        );
        assert!(page.contains("run 2 (stress) totals"), "spectrum per run");
    }

    #[test]
    fn a_comparison_page_leads_with_the_verdict_and_colours_rows() {
        let base: Vec<_> = (0..4)
            .map(|i| {
                run(
                    "stress",
                    &format!("2024-05-01T10:0{i}:00Z"),
                    1000.0 + i as f64,
                    700.0,
                    0,
                )
            })
            .collect();
        let cand: Vec<_> = (0..4)
            .map(|i| {
                run(
                    "stress",
                    &format!("2024-05-01T11:0{i}:00Z"),
                    700.0 + i as f64,
                    1000.0,
                    0,
                )
            })
            .collect();
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        let page = render_compare_html(&c);
        let verdict_at = page.find(&escape(&c.verdict)).expect("verdict shown");
        let first_row = page.find("class=\"chart strip\"").expect("rows drawn");
        assert!(verdict_at < first_row, "the verdict comes first");
        assert_eq!(page.matches("class=\"chart strip\"").count(), c.rows.len());
        assert!(page.contains(compare::verdict_color(Verdict::Regressed)));
    }

    #[test]
    fn the_spectrum_reaches_p99_99_and_rises() {
        let mut h = crate::metrics::new_latency_histogram();
        for v in 1..=100_000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = spectrum(&h);
        assert_eq!(s.len(), 41);
        assert!(
            (s.last().unwrap().0 - 10_000.0).abs() < 1.0,
            "{:?}",
            s.last()
        );
        assert!(s.windows(2).all(|w| w[1].1 >= w[0].1), "monotone");
        assert_eq!(percentile_label(100.0), "p99");
        assert_eq!(percentile_label(10_000.0), "p99.99");
    }
}
