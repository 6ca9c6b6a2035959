//! Markdown rendering of results, for pull-request comments and job summaries.

use super::{
    failed_latency_parts, fmt_rate, fmt_success_latency_us, nothing_measured, verdict_line,
};
use crate::results::Results;

pub fn render_markdown(r: &Results) -> String {
    let measured = if nothing_measured(r) {
        "nothing measured".to_string()
    } else {
        format!("{:.1}s measured", r.duration_s)
    };
    let mut out = format!(
        "### {} — {}\n\n{} · {measured} · target `{}`{}\n\n",
        r.scenario,
        verdict_line(r),
        r.kind,
        r.target,
        r.profile
            .as_ref()
            .map_or(String::new(), |p| format!(" ({p})"))
    );
    let mut rows: Vec<(&str, &crate::metrics::OpStats)> =
        r.operations.iter().map(|(k, v)| (k.as_str(), v)).collect();
    if r.operations.len() > 1 {
        rows.push(("**totals**", &r.totals));
    }
    // A run that could not start has no operations: the headline says why.
    if nothing_measured(r) {
        rows.clear();
    }
    if !rows.is_empty() {
        out.push_str("| operation | count | ops/s | err % | p50 | p90 | p99 | p99.9 | max |\n");
        out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    }
    for (name, s) in rows {
        let l = &s.latency_us;
        let lat = |v: f64| fmt_success_latency_us(s, v);
        out.push_str(&format!(
            "| {name} | {} | {} | {:.2} | {} | {} | {} | {} | {} |\n",
            s.count,
            fmt_rate(s.throughput),
            s.error_rate(),
            lat(l.p50),
            lat(l.p90),
            lat(l.p99),
            lat(l.p999),
            lat(l.max)
        ));
    }
    let failed = failed_latency_parts(r);
    if !failed.is_empty() {
        out.push_str(&format!(
            "\nFailed requests (not in the latency columns): {}\n",
            failed.join(" · ")
        ));
    }
    if !r.targets.is_empty() {
        out.push_str("\n| target | limit | measured | verdict |\n|---|---|--:|---|\n");
        for t in &r.targets {
            out.push_str(&format!(
                "| {}{} | `{}` | {} | {} |\n",
                t.metric,
                if t.implied { " (implied)" } else { "" },
                t.target,
                t.measured_text(),
                if t.passed { "✅ PASS" } else { "❌ FAIL" }
            ));
        }
        for hint in r.targets.iter().filter_map(|t| super::miss_hint(r, t)) {
            out.push_str(&format!("\n- {hint}"));
        }
    }
    if let Some(i) = &r.integrity {
        out.push_str(&format!(
            "\nIntegrity: {} acknowledged writes checked, lost writes: {}\n",
            i.checked, i.lost_writes
        ));
    }
    let stages = super::shape::stage_lines(r);
    if !stages.is_empty() {
        out.push_str(&format!("\n```\n{}\n```\n", stages.join("\n")));
    }
    if let Some(line) = super::shape::generator_line(r) {
        out.push_str(&format!("\n{line}\n"));
    }
    for w in &r.warnings {
        out.push_str(&format!("\n> warning: {w}\n"));
    }
    out
}
