//! Renders results and comparisons for people (a terminal table, markdown) and machines
//! (JSON, JUnit), each format one `Exporter`. Rendering never measures: everything shown
//! comes from a [`Results`] or a `Comparison` value.

pub mod compare;
pub mod export;
pub mod html;
pub mod junit;
mod markdown;
pub mod search;
pub mod shape;
mod svg;
mod table;

pub use compare::{render_compare_markdown, render_compare_table};
pub use export::{exporter, Exporter};
pub use junit::{render_junit, render_junit_results};
pub use markdown::render_markdown;
pub use table::render_table;

use crate::metrics::OpStats;
use crate::results::names::{FLOW_EXECUTION, TOTALS};
use crate::results::targets::{Figure, Target, TargetResult};
use crate::results::{Load, Results};

/// Output formats of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Markdown,
    Junit,
    /// A self-contained page with charts.
    Html,
}

/// A run's results in `format`.
pub fn render(results: &Results, format: Format) -> String {
    exporter(format).results(results)
}

/// A latency in microseconds with a unit that keeps 3 significant digits readable.
pub fn fmt_latency_us(us: f64) -> String {
    if us.is_nan() {
        "-".to_string()
    } else if us < 1.0 {
        format!("{:.0}ns", us * 1000.0)
    } else if us < 1000.0 {
        format!("{:.1}µs", us)
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// A latency figure of `stats`, or "-" when nothing succeeded (latency describes successes;
/// the zeros of an empty histogram would read as instant answers).
pub fn fmt_success_latency_us(stats: &OpStats, us: f64) -> String {
    if stats.successes() == 0 {
        "-".to_string()
    } else {
        fmt_latency_us(us)
    }
}

/// Whether a run measured nothing: it could not start, or stopped before any answer.
pub fn nothing_measured(results: &Results) -> bool {
    results.operations.is_empty() || (results.aborted.is_some() && results.totals.count == 0)
}

/// "name p50 X p99 Y max Z (N failed)" for every operation some of whose requests failed:
/// a failing endpoint's timings, which the latency columns (successes only) leave out.
pub fn failed_latency_parts(results: &Results) -> Vec<String> {
    results
        .operations
        .iter()
        .filter_map(|(name, s)| {
            let l = s.errors_latency_us.as_ref()?;
            Some(format!(
                "{name} p50 {} p99 {} max {} ({} failed)",
                fmt_latency_us(l.p50),
                fmt_latency_us(l.p99),
                fmt_latency_us(l.max),
                s.errors
            ))
        })
        .collect()
}

/// A rate with thousands separators: 21345.6 → "21,346".
pub fn fmt_rate(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    if v < 100.0 {
        return format!("{v:.1}");
    }
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn fmt_bytes(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// For a missed target: by how much, and what to look at next (the operation that pulled the
/// figure furthest, the server's own figures beside it). None for a met target.
pub fn miss_hint(results: &Results, target: &TargetResult) -> Option<String> {
    if target.passed {
        return None;
    }
    let written = Target::parse(&target.metric, &target.target).ok()?;
    if target.measured.is_nan() {
        return Some(format!(
            "{}: nothing to measure (no successful request of `{}`)",
            target.metric, written.subject
        ));
    }
    let limit = written.in_unit(written.value);
    let by = target.measured - limit;
    let relative = if limit != 0.0 {
        format!(" ({:+.0} %)", by / limit * 100.0)
    } else {
        String::new()
    };
    let amount = format!("{}{}", trim_number(by.abs()), target.unit);
    let mut hint = format!("{} missed by {amount}{relative}", target.metric);
    let ops = results
        .operations
        .iter()
        .filter(|(name, _)| name.as_str() != FLOW_EXECUTION);
    match written.figure {
        f if f.is_latency() => {
            if written.subject == TOTALS {
                if let Some((name, s)) = ops
                    .filter(|(_, s)| s.successes() > 0)
                    .max_by(|a, b| f.measure(a.1).total_cmp(&f.measure(b.1)))
                {
                    hint.push_str(&format!(
                        "; slowest operation: {name} ({f} {})",
                        fmt_latency_us(f.measure(s))
                    ));
                }
            }
            if let Some(db) = server_db_line(results) {
                hint.push_str(&format!("; server {db}"));
            }
        }
        Figure::Throughput => {
            let t = &results.totals;
            match results.load {
                Load::Closed { concurrency } if t.latency_us.mean > 0.0 => hint.push_str(
                    &format!(
                        "; {concurrency} workers at a mean latency of {} can do at most {}/s: raise --concurrency, or see what makes answers slow",
                        fmt_latency_us(t.latency_us.mean),
                        fmt_rate(f64::from(concurrency) * 1e6 / t.latency_us.mean)
                    ),
                ),
                Load::Open { rate_per_s: rate, .. } => {
                    hint.push_str(&format!("; the offered rate was {}/s", fmt_rate(rate)))
                }
                _ => {}
            }
            if let Some(s) = &results.server {
                if results.duration_s > 0.0 {
                    hint.push_str(&format!(
                        "; server CPU {:.0} % of one core",
                        s.cpu_s / results.duration_s * 100.0
                    ));
                }
            }
        }
        Figure::ErrorRate => {
            if let Some((message, n)) = results.errors.iter().max_by_key(|(_, n)| **n) {
                hint.push_str(&format!("; most common error ({n}×): {message}"));
            }
        }
        _ => {}
    }
    Some(hint)
}

/// The server's database timings that explain write latency: commit and the slowest op.
fn server_db_line(results: &Results) -> Option<String> {
    let stats = &results.server.as_ref()?.stats;
    let db = stats.get("db").and_then(|d| d.as_object())?;
    let commit = db.get("commit")?;
    let mut line = format!(
        "commit p99 {}",
        fmt_latency_us(commit["p99_us"].as_f64().unwrap_or(f64::NAN))
    );
    if let Some(gc) = stats.get("group_commit") {
        line.push_str(&format!(
            ", {:.1} writes/batch",
            gc["mean"].as_f64().unwrap_or(0.0)
        ));
    }
    if let Some(pages) = stats.pointer("/wal/peak_pages").and_then(|v| v.as_i64()) {
        line.push_str(&format!(", WAL peak {pages} pages"));
    }
    Some(line)
}

fn trim_number(v: f64) -> String {
    let decimals = if v == 0.0 || !v.is_finite() {
        0
    } else {
        (2 - v.abs().log10().floor() as i32).max(0) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The one-line verdict shown under every report.
pub fn verdict_line(results: &Results) -> String {
    let failed = results.targets.iter().filter(|t| !t.passed).count();
    let lost = results.integrity.as_ref().map_or(0, |i| i.lost_writes);
    match (&results.aborted, failed, lost) {
        (Some(why), _, _) => format!("ABORTED: {why}"),
        // Nothing to judge: say so rather than "PASS", and what went wrong if anything did.
        (None, 0, 0) if results.targets.is_empty() => {
            let t = &results.totals;
            if t.errors > 0 {
                format!(
                    "DONE, no targets set: {} of {} requests failed ({:.2}%)",
                    t.errors,
                    t.count,
                    t.error_rate()
                )
            } else {
                "DONE, no targets set".to_string()
            }
        }
        (None, 0, 0) => format!(
            "PASS: {} of {} targets met",
            results.targets.len(),
            results.targets.len()
        ),
        (None, f, l) => {
            let mut parts = Vec::new();
            if f > 0 {
                parts.push(format!("{f} of {} targets missed", results.targets.len()));
            }
            if l > 0 {
                parts.push(format!("{l} lost writes"));
            }
            format!("FAIL: {}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_units_switch_at_each_thousand() {
        assert_eq!(fmt_latency_us(0.5), "500ns");
        assert_eq!(fmt_latency_us(45.06), "45.1µs");
        assert_eq!(fmt_latency_us(1234.0), "1.23ms");
        assert_eq!(fmt_latency_us(2_500_000.0), "2.50s");
    }

    #[test]
    fn rates_get_thousands_separators() {
        assert_eq!(fmt_rate(21345.6), "21,346");
        assert_eq!(fmt_rate(1_000_000.0), "1,000,000");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(fmt_rate(15.94), "15.9");
    }
}
