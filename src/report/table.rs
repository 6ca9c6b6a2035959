//! The terminal report: per-operation latency table, targets, integrity and server figures.

use super::{
    failed_latency_parts, fmt_bytes, fmt_latency_us, fmt_rate, fmt_success_latency_us,
    nothing_measured, verdict_line,
};
use crate::metrics::OpStats;
use crate::results::names::TOTALS;
use crate::results::{Load, Results};
use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, Color, Table};

fn op_row(name: &str, s: &OpStats) -> Vec<Cell> {
    let l = &s.latency_us;
    let mut row = vec![
        Cell::new(name),
        Cell::new(s.count),
        Cell::new(fmt_rate(s.throughput)),
        Cell::new(format!("{:.2}", s.error_rate())),
    ];
    row.extend(
        [l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
            .into_iter()
            .map(|v| Cell::new(fmt_success_latency_us(s, v))),
    );
    row
}

pub fn render_table(r: &Results) -> String {
    let mut out = String::new();
    let load = match &r.load {
        Load::Closed { concurrency } => format!(
            "closed model, {concurrency} worker{}",
            if *concurrency == 1 { "" } else { "s" }
        ),
        Load::Open {
            rate_per_s: rate,
            max_in_flight,
        } => format!(
            "open model, {} req/s (≤ {max_in_flight} in flight)",
            fmt_rate(*rate)
        ),
    };
    let measured = if nothing_measured(r) {
        "nothing measured".to_string()
    } else {
        format!(
            "{:.1}s measured after {:.1}s warm-up",
            r.duration_s, r.warmup_s
        )
    };
    out.push_str(&format!(
        "{} against {}{} — {load}, {measured}\n",
        r.scenario,
        r.target,
        r.profile
            .as_ref()
            .map_or(String::new(), |p| format!(" ({p} profile)")),
    ));

    let mut ops = Table::new();
    ops.load_preset(UTF8_BORDERS_ONLY).set_header(vec![
        "operation",
        "count",
        "ops/s",
        "err %",
        "min",
        "mean",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "max",
    ]);
    for (name, s) in &r.operations {
        ops.add_row(op_row(name, s));
    }
    if r.operations.len() > 1 {
        ops.add_row(op_row(TOTALS, &r.totals));
    }
    for i in 1..12 {
        if let Some(c) = ops.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    // A run that could not start (or stopped in set-up) has nothing to show: its ABORTED
    // line says why.
    if !nothing_measured(r) {
        out.push_str(&ops.to_string());
        out.push('\n');
    }
    let failed = failed_latency_parts(r);
    if !failed.is_empty() {
        out.push_str(&format!(
            "failed requests (not in the latency columns above): {}\n",
            failed.join(" · ")
        ));
    }
    // Open model: the table's latency counts from the intended send time; the server's own
    // part, from the actual send, beside it.
    if !r.service_time_us.is_empty() {
        let parts: Vec<String> = r
            .service_time_us
            .iter()
            .map(|(name, l)| {
                format!(
                    "{name} p50 {} p99 {}",
                    fmt_latency_us(l.p50),
                    fmt_latency_us(l.p99)
                )
            })
            .collect();
        out.push_str(&format!(
            "service time (from the actual send; the latency above counts from the intended \
             send): {}\n",
            parts.join(" · ")
        ));
    }

    for line in super::shape::stage_lines(r) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(line) = super::shape::generator_line(r) {
        out.push_str(&line);
        out.push('\n');
    }

    if !r.targets.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY)
            .set_header(vec!["target", "limit", "measured", "verdict"]);
        for target in &r.targets {
            let verdict = if target.passed {
                Cell::new("PASS").fg(Color::Green)
            } else {
                Cell::new("FAIL").fg(Color::Red)
            };
            let metric = if target.implied {
                format!("{} (implied)", target.metric)
            } else {
                target.metric.clone()
            };
            t.add_row(vec![
                Cell::new(metric),
                Cell::new(&target.target),
                Cell::new(target.measured_text()),
                verdict,
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
        for hint in r.targets.iter().filter_map(|t| super::miss_hint(r, t)) {
            out.push_str(&format!("  {hint}\n"));
        }
    }
    if let Some(i) = &r.integrity {
        out.push_str(&format!(
            "integrity: {} acknowledged writes checked, lost writes: {}\n",
            i.checked, i.lost_writes
        ));
        for d in &i.details {
            out.push_str(&format!("  - {d}\n"));
        }
    }
    for (k, v) in &r.extra {
        out.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(s) = &r.server {
        out.push_str(&format!("server: peak RSS {}", fmt_bytes(s.rss_peak_bytes)));
        if let (Some(now), Some(anon), Some(file)) = (
            s.stats["rss_bytes"].as_u64(),
            s.stats["rss_anon_bytes"].as_u64(),
            s.stats["rss_file_bytes"].as_u64(),
        ) {
            // Only the optimized profile memory-maps the database.
            let mapped = if s.stats["profile"] == "optimized" {
                "the memory-mapped database and the code"
            } else {
                "the code"
            };
            out.push_str(&format!(
                "; at load end {} = {} anonymous + {} file-backed ({mapped})",
                fmt_bytes(now),
                fmt_bytes(anon),
                fmt_bytes(file)
            ));
        }
        out.push_str(&format!(", CPU {:.2}s", s.cpu_s));
        // The legacy profile commits each write on its own: no batches to show.
        if let Some(gc) = s
            .stats
            .get("group_commit")
            .filter(|gc| gc["batches"].as_u64().is_some_and(|b| b > 0))
        {
            out.push_str(&format!(
                ", group commit {} batches, mean {:.1} writes/batch (max {})",
                gc["batches"],
                gc["mean"].as_f64().unwrap_or(0.0),
                gc["max"]
            ));
        }
        out.push('\n');
        if let Some(db) = s.stats.get("db").and_then(|d| d.as_object()) {
            let parts: Vec<String> = db
                .iter()
                .filter(|(_, v)| v["count"].as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| {
                    format!(
                        "{k} p50 {} p99 {}",
                        fmt_latency_us(v["p50_us"].as_f64().unwrap_or(0.0)),
                        fmt_latency_us(v["p99_us"].as_f64().unwrap_or(0.0))
                    )
                })
                .collect();
            if !parts.is_empty() {
                out.push_str(&format!("server DB: {}\n", parts.join(" · ")));
            }
        }
    }
    if !r.errors.is_empty() {
        out.push_str("errors:\n");
        for (msg, n) in &r.errors {
            out.push_str(&format!("  {n:>8} × {msg}\n"));
        }
    }
    for w in &r.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(&verdict_line(r));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A results value with one operation whose figures are all distinct.
    fn sample() -> Results {
        let op = serde_json::json!({
            "count": 10, "errors": 1, "throughput": 1234.0, "histogram": "",
            "latency_us": {"min": 11.0, "mean": 22.0, "p50": 33.0, "p90": 44.0, "p95": 55.0,
                           "p99": 66.0, "p999": 77.0, "max": 88.0}
        });
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "scenario": "s", "kind": "mix", "target": "http://x",
            "profile": "optimized", "started_at": "2026-01-01T00:00:00Z", "duration_s": 1.0,
            "warmup_s": 0.0, "load": {"model": "closed", "concurrency": 2},
            "operations": {"only": op}, "totals": op,
            "targets": [{"metric": "totals.p99", "target": "< 1ms", "measured": 0.066,
                         "unit": "ms", "passed": true}],
            "environment": {"cpu": "c", "cores": 2, "os": "o", "version": "v", "git": null,
                            "generator_threads": 1},
            "timeseries": [], "exit_code": 0
        }))
        .expect("sample results deserialize")
    }

    #[test]
    fn every_column_header_sits_over_its_figure() {
        let out = render_table(&sample());
        let header = out
            .lines()
            .find(|l| l.contains("operation"))
            .expect("header line");
        let row = out.lines().find(|l| l.contains("only")).expect("row line");
        let names = [
            "count", "ops/s", "err %", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max",
        ];
        let values = [
            "10", "1,234", "10.00", "11.0µs", "22.0µs", "33.0µs", "44.0µs", "55.0µs", "66.0µs",
            "77.0µs", "88.0µs",
        ];
        // Right-aligned columns: each value ends where its header ends.
        let mut from = 0;
        for (name, value) in names.iter().zip(values) {
            let h = header[from..].find(&format!(" {name}")).expect(name) + from + 1 + name.len();
            let v_start = row
                .find(&format!(" {value}"))
                .unwrap_or_else(|| panic!("{value} in {row}"));
            let v_end = v_start + 1 + value.len();
            assert_eq!(
                header[..h].chars().count(),
                row[..v_end].chars().count(),
                "{name} over {value}:\n{header}\n{row}"
            );
            from = h;
        }
        assert!(out.contains("PASS: 1 of 1 targets met"), "{out}");
    }

    #[test]
    fn every_request_failing_shows_no_latency_and_no_pass() {
        let mut r = sample();
        for s in r
            .operations
            .values_mut()
            .chain(std::iter::once(&mut r.totals))
        {
            s.errors = s.count;
            s.throughput = 0.0;
        }
        r.targets.clear();
        let out = render_table(&r);
        let row = out.lines().find(|l| l.contains("only")).expect("row line");
        assert_eq!(
            row.matches(" - ").count() + row.matches(" -│").count(),
            8,
            "{row}"
        );
        assert!(!out.contains("PASS"), "{out}");
        assert!(
            out.contains("DONE, no targets set: 10 of 10 requests failed (100.00%)"),
            "{out}"
        );
    }

    #[test]
    fn a_missed_target_says_by_how_much_and_where_to_look() {
        let mut r = sample();
        r.operations.insert("slow".into(), {
            let mut slow = r.totals.clone();
            slow.latency_us.p99 = 5000.0;
            slow
        });
        r.targets = serde_json::from_value(serde_json::json!([
            {"metric": "totals.p99", "target": "< 1ms", "measured": 2.5, "unit": "ms",
             "passed": false},
            {"metric": "totals.throughput", "target": ">= 2000/s", "measured": 1234.0,
             "unit": "/s", "passed": false},
            {"metric": "totals.error_rate", "target": "<= 1%", "measured": 10.0, "unit": "%",
             "passed": false, "implied": true},
            {"metric": "only.p50", "target": "< 1ms", "measured": 0.033, "unit": "ms",
             "passed": true}
        ]))
        .unwrap();
        r.errors.insert("HTTP 500: boom".into(), 7);
        let out = render_table(&r);
        assert!(out.contains("totals.p99 missed by 1.5ms (+150 %)"), "{out}");
        assert!(
            out.contains("slowest operation: slow (p99 5.00ms)"),
            "{out}"
        );
        assert!(
            out.contains("totals.throughput missed by 766/s (-38 %)"),
            "{out}"
        );
        assert!(
            out.contains("2 workers at a mean latency of 22.0µs"),
            "{out}"
        );
        assert!(
            out.contains("most common error (7×): HTTP 500: boom"),
            "{out}"
        );
        assert!(out.contains("totals.error_rate (implied)"), "{out}");
        assert!(
            !out.contains("only.p50 missed"),
            "a met target gets no hint: {out}"
        );
    }
}
