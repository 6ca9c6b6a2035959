//! A comparison's page: the verdict first, then each row's two sides as ranges with their
//! medians (the totals' runs as points) and the change's interval, coloured by verdict.

use super::*;

/// The page for a comparison: the verdict first, then per row the two sides as ranges with
/// their medians (the runs as points where the comparison keeps them) and the change's
/// interval, coloured by verdict.
pub fn render_compare_html(c: &Comparison) -> String {
    let title = format!(
        "stepflow-bench compare: {} ({} baseline vs {} candidate runs)",
        c.scenario, c.baseline_runs, c.candidate_runs
    );
    let mut out = page_start(&title);
    let class = match c.outcome {
        Outcome::Pass => "pass",
        Outcome::Warn | Outcome::Inconclusive => "warn",
        Outcome::Fail => "fail",
    };
    let _ = write!(
        out,
        "<h1>{}</h1><p><span class=\"verdict {class}\">{}</span></p><p>{}</p>",
        escape(&title),
        escape(&c.verdict),
        escape(&c.headline)
    );
    out.push_str("<h2>Rows</h2>");
    for row in &c.rows {
        out.push_str(&row_strip(c, row));
    }
    if !c.warnings.is_empty() {
        out.push_str("<h2>Warnings</h2><ul>");
        for w in &c.warnings {
            let _ = write!(out, "<li>{}</li>", escape(w));
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
}

pub(super) fn verdict_color(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "#c62828",
        Verdict::Warn | Verdict::Inconclusive => "#b7791f",
        Verdict::Improved => "#2e7d32",
        Verdict::Unchanged => "#555",
    }
}

/// One row as a strip: each side's min–max range and median, its runs as dots when known.
pub(super) fn row_strip(c: &Comparison, row: &Row) -> String {
    let runs = |side: Side| -> Vec<f64> {
        if row.operation != TOTALS {
            return Vec::new();
        }
        c.runs
            .iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match row.metric {
                Metric::Throughput => Some(r.throughput),
                Metric::P99 => Some(r.p99_us),
                _ => None,
            })
            .collect()
    };
    let sides = [
        ("baseline", &row.baseline, runs(Side::Baseline)),
        ("candidate", &row.candidate, runs(Side::Candidate)),
    ];
    let lo = sides
        .iter()
        .flat_map(|(_, s, r)| r.iter().copied().chain([s.min]))
        .fold(f64::INFINITY, f64::min);
    let hi = sides
        .iter()
        .flat_map(|(_, s, r)| r.iter().copied().chain([s.max]))
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    };
    let pad = (hi - lo) * 0.08;
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |v: f64| 170.0 + (v - lo) / (hi - lo) * 520.0;
    let color = verdict_color(row.verdict);
    let change = row
        .change
        .map_or("-".into(), |v| format!("{v:+.2}{}", row.change_unit));
    let interval = row.interval.map_or(String::new(), |[a, b]| {
        format!(" [{a:+.1}, {b:+.1}]{}", row.change_unit)
    });
    let mut out = format!(
        "<svg class=\"chart strip\" id=\"row-{}-{}\" viewBox=\"0 0 880 64\" \
         xmlns=\"http://www.w3.org/2000/svg\"><text class=\"title\" x=\"4\" y=\"18\">{}.{}</text>\
         <text class=\"legend\" x=\"700\" y=\"18\" fill=\"{color}\">{} {}{}</text>",
        escape(&row.operation),
        row.metric,
        escape(&row.operation),
        row.metric,
        row.verdict,
        escape(&change),
        escape(&interval)
    );
    for (k, (name, spread, points)) in sides.iter().enumerate() {
        let y = 34.0 + 18.0 * k as f64;
        let c = PALETTE[k];
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"4\" y=\"{:.0}\">{name} {}</text>\
             <line class=\"series\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{c}\" stroke-width=\"4\"/>\
             <circle cx=\"{:.1}\" cy=\"{y}\" r=\"5\" fill=\"{c}\"/>",
            y + 4.0,
            escape(&svg::short_number(spread.median)),
            x(spread.min),
            x(spread.max),
            x(spread.median)
        );
        for p in points {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"2.5\" fill=\"#fff\" stroke=\"{c}\"/>",
                x(*p)
            );
        }
    }
    out.push_str("</svg>");
    out
}
