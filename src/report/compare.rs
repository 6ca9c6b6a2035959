//! Renderings of a baseline comparison: a terminal table, markdown for pull-request comments
//! and job summaries, and JUnit XML with one test case per (operation, metric).

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, Color, Table};

use super::{fmt_latency_us, fmt_rate};
use crate::gate::compare::{Comparison, Estimate, Metric, Outcome, Row, Verdict};

/// A measured value in its metric's unit: "1,234/s", "1.23ms", "0.10%".
pub(super) fn fmt_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::Throughput => format!("{}/s", fmt_rate(v)),
        Metric::ErrorRate => format!("{v:.2}%"),
        _ => fmt_latency_us(v),
    }
}

/// "1.23ms [1.20ms–1.31ms]", or the median alone when every run agrees.
pub(super) fn fmt_spread(metric: Metric, s: &crate::gate::compare::Spread) -> String {
    if s.min == s.max {
        fmt_value(metric, s.median)
    } else {
        format!(
            "{} [{}–{}]",
            fmt_value(metric, s.median),
            fmt_value(metric, s.min),
            fmt_value(metric, s.max)
        )
    }
}

/// The change cell: the change of the medians (what the columns beside it give), then, for
/// paired runs, the median of the per-pair changes; the interval goes with the one the
/// verdict is about: "-31.2% [-33.0, -29.5]", "+8.0% · pairs +12.0% [+10.1, +14.0]", and
/// "+35.9% [+2.0, +80.1] · pairs -6.9% disagree" when the pairs point the other way and the
/// medians are judged. The interval is left out when it is the point (one run a side).
pub(super) fn fmt_change(row: &Row) -> String {
    let digits = if row.metric.is_absolute() { 2 } else { 1 };
    let unit = row.change_unit;
    let interval = match row.interval {
        Some([lo, hi]) if lo != hi => format!(" [{lo:+.digits$}, {hi:+.digits$}]"),
        _ => String::new(),
    };
    let medians = match row.change {
        None => "-".to_string(),
        Some(c) => format!("{c:+.digits$}{unit}"),
    };
    match (row.judged_on, row.paired_change) {
        (Estimate::Pairs, Some(p)) => format!("{medians} · pairs {p:+.digits$}{unit}{interval}"),
        (Estimate::Medians, Some(p)) => {
            format!("{medians}{interval} · pairs {p:+.digits$}{unit} disagree")
        }
        _ => format!("{medians}{interval}"),
    }
}

pub(super) fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

pub(super) fn fmt_limit(row: &Row) -> String {
    format!("{:+}{}", row.limit, row.change_unit)
}

/// What the runs were and how they were judged, in one line.
pub(super) fn method_line(c: &Comparison) -> String {
    format!(
        "{} baseline vs {} candidate runs{} · {:.0}% bootstrap intervals ({} resamples) · \
         p: Mann-Whitney U, two-sided",
        c.baseline_runs,
        c.candidate_runs,
        if c.paired {
            ", paired (interleaved)"
        } else {
            ""
        },
        c.confidence * 100.0,
        c.resamples
    )
}

/// The runs in the order they started, one line each, with the machine's other work beside
/// each: (side, #, started, throughput, p99, other CPU, steal, load average).
fn run_lines(c: &Comparison) -> Vec<[String; 8]> {
    c.runs
        .iter()
        .map(|r| {
            let (other, steal, load) = match r.machine {
                Some(m) => (
                    format!("{:.0}%", m.other_cpu_pct),
                    format!("{:.0}%", m.steal_pct),
                    format!("{:.2}", m.load_avg_1m),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            [
                r.side.to_string(),
                r.index.to_string(),
                r.started_at.clone(),
                format!("{}/s", fmt_rate(r.throughput)),
                fmt_latency_us(r.p99_us),
                other,
                steal,
                load,
            ]
        })
        .collect()
}

const RUN_HEADER: [&str; 8] = [
    "run",
    "#",
    "started",
    "throughput",
    "p99",
    "other CPU",
    "steal",
    "load 1m",
];

fn verdict_cell(v: Verdict) -> Cell {
    match v {
        Verdict::Regressed => Cell::new("REGRESSED").fg(Color::Red),
        Verdict::Inconclusive => Cell::new("INCONCLUSIVE").fg(Color::Magenta),
        Verdict::Warn => Cell::new("warn").fg(Color::Yellow),
        Verdict::Improved => Cell::new("improved").fg(Color::Green),
        Verdict::Unchanged => Cell::new("unchanged"),
    }
}

/// The terminal table: one row per (operation, metric), warnings, then the outcome.
pub fn render_compare_table(c: &Comparison) -> String {
    let mut out = format!("{}: {}\n", c.scenario, method_line(c));
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(vec![
        "operation",
        "metric",
        "baseline median [min–max]",
        "candidate median",
        "change [95% CI]",
        "p",
        "limit",
        "verdict",
    ]);
    let mut previous = "";
    for row in &c.rows {
        // The operation is named once per group of metrics.
        let operation = if row.operation == previous {
            ""
        } else {
            &row.operation
        };
        previous = &row.operation;
        table.add_row(vec![
            Cell::new(operation),
            Cell::new(row.metric.name()),
            Cell::new(fmt_spread(row.metric, &row.baseline)),
            Cell::new(fmt_value(row.metric, row.candidate.median)),
            Cell::new(fmt_change(row)),
            Cell::new(fmt_p(row.p_value)),
            Cell::new(fmt_limit(row)),
            verdict_cell(row.verdict),
        ]);
    }
    for i in 2..7 {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(&table.to_string());
    out.push('\n');
    // The runs, so that one disturbed by the machine's other work is visible.
    let mut runs = Table::new();
    runs.load_preset(UTF8_BORDERS_ONLY)
        .set_header(RUN_HEADER.to_vec());
    for line in run_lines(c) {
        runs.add_row(line.to_vec());
    }
    for i in 3..8 {
        if let Some(col) = runs.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(
        "runs in the order they started (other CPU: other processes' share of the machine):\n",
    );
    out.push_str(&runs.to_string());
    out.push('\n');
    for row in c
        .rows
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::Unchanged | Verdict::Improved))
    {
        out.push_str(&format!(
            "{} {}.{}: {}\n",
            row.verdict, row.operation, row.metric, row.reason
        ));
    }
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(&format!("rows: {}\n", c.headline));
    out.push_str(&c.verdict);
    out.push('\n');
    out
}

fn markdown_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn markdown_rows(rows: &[&Row]) -> String {
    let mut out = String::from(
        "| operation | metric | baseline median [min–max] | candidate median | change [95% CI] \
         | p | limit | verdict |\n|---|---|--:|--:|--:|--:|--:|---|\n",
    );
    for row in rows {
        let verdict = match row.verdict {
            Verdict::Regressed => "❌ **regressed**",
            Verdict::Inconclusive => "❔ inconclusive",
            Verdict::Warn => "⚠️ warn",
            Verdict::Improved => "✅ improved",
            Verdict::Unchanged => "unchanged",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            markdown_cell(&row.operation),
            row.metric,
            fmt_spread(row.metric, &row.baseline),
            fmt_value(row.metric, row.candidate.median),
            fmt_change(row),
            fmt_p(row.p_value),
            fmt_limit(row),
            verdict
        ));
    }
    out
}

/// Markdown for a pull-request comment or `$GITHUB_STEP_SUMMARY`: the headline on the first
/// line, then the rows that need a look, with the unchanged ones folded away.
pub fn render_compare_markdown(c: &Comparison) -> String {
    let icon = match c.outcome {
        Outcome::Pass => "✅",
        Outcome::Warn => "⚠️",
        Outcome::Fail => "❌",
        Outcome::Inconclusive => "❔",
    };
    // The first line is the verdict the table closes with, word for word.
    let mut out = format!(
        "{icon} **{}**: {}\n\nrows: {}\n\n{}\n\n",
        markdown_cell(&c.scenario),
        markdown_cell(&c.verdict),
        c.headline,
        method_line(c)
    );
    let (quiet, notable): (Vec<&Row>, Vec<&Row>) =
        c.rows.iter().partition(|r| r.verdict == Verdict::Unchanged);
    if !notable.is_empty() {
        out.push_str(&markdown_rows(&notable));
        out.push('\n');
        for row in notable.iter().filter(|r| r.verdict != Verdict::Improved) {
            out.push_str(&format!(
                "- `{}.{}` {}: {}\n",
                row.operation, row.metric, row.verdict, row.reason
            ));
        }
        out.push('\n');
    }
    if !quiet.is_empty() {
        out.push_str(&format!(
            "<details><summary>{} unchanged</summary>\n\n{}\n</details>\n",
            quiet.len(),
            markdown_rows(&quiet)
        ));
    }
    let mut runs = format!(
        "| {} |\n|---|--:|---|--:|--:|--:|--:|--:|\n",
        RUN_HEADER.join(" | ")
    );
    for line in run_lines(c) {
        runs.push_str(&format!("| {} |\n", line.join(" | ")));
    }
    out.push_str(&format!(
        "<details><summary>{} runs, with the machine's other work</summary>\n\n{runs}\n</details>\n",
        c.runs.len()
    ));
    for w in &c.warnings {
        out.push_str(&format!("\n> warning: {}\n", markdown_cell(w)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::compare::tests::run;
    use crate::gate::compare::{compare, CompareOptions};
    use crate::report::junit::{render_junit, xml_escape};

    /// 4 vs 4 runs: throughput −30 %, latency +43 %, a few new errors.
    fn regressed() -> Comparison {
        let base: Vec<_> = [1000.0, 1010.0, 990.0, 1000.0]
            .iter()
            .enumerate()
            .map(|(i, t)| run("st<r>ess", &format!("2024-05-01T10:0{i}:00Z"), *t, 700.0, 0))
            .collect();
        let cand: Vec<_> = [700.0, 707.0, 693.0, 700.0]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                run(
                    "st<r>ess",
                    &format!("2024-05-01T11:0{i}:00Z"),
                    *t,
                    1000.0,
                    2,
                )
            })
            .collect();
        compare(&base, &cand, &CompareOptions::default()).unwrap()
    }

    fn unchanged() -> Comparison {
        let r = vec![run("stress", "2024-05-01T10:00:00Z", 1000.0, 700.0, 0)];
        compare(&r, &r, &CompareOptions::default()).unwrap()
    }

    #[test]
    fn table_shows_every_row_and_the_outcome() {
        let c = regressed();
        let out = render_compare_table(&c);
        assert!(
            out.starts_with("st<r>ess: 4 baseline vs 4 candidate runs ·"),
            "{out}"
        );
        for needle in [
            "baseline median [min–max]",
            "1,000/s [990/s–1,010/s]",
            "-30.0% [",
            "-10%",
            "+20%",
            "+0.1pt",
            "REGRESSED",
            "regressed get_execution.throughput: -30.00% is past the -10.00% limit",
        ] {
            assert!(out.contains(needle), "{needle:?} missing from\n{out}");
        }
        assert_eq!(out.lines().last(), Some(c.verdict.as_str()));
        assert!(c.verdict.starts_with("FAIL (exit 1): 8 regressions: "));
        assert!(out.contains(&format!("\nrows: {}\n", c.headline)));
        // The operation is named on the first row of its group only.
        let explained = c
            .rows
            .iter()
            .filter(|r| r.operation == "get_execution" && r.verdict == Verdict::Regressed)
            .count();
        let above_verdict = out.trim_end().rsplit_once('\n').unwrap().0;
        assert_eq!(
            above_verdict.matches("get_execution").count(),
            1 + explained
        );
    }

    #[test]
    fn markdown_opens_with_the_headline_and_folds_unchanged_rows() {
        let c = regressed();
        let md = render_compare_markdown(&c);
        let first = md.lines().next().unwrap();
        assert_eq!(first, format!("❌ **st<r>ess**: {}", c.verdict));
        assert!(md.contains("| get_execution | throughput | 1,000/s [990/s–1,010/s] |"));
        assert!(md.contains("❌ **regressed**"));

        let md = render_compare_markdown(&unchanged());
        assert!(
            md.starts_with("✅ **stress**: PASS (exit 0): 10 unchanged\n"),
            "{md}"
        );
        assert!(md.contains("<details><summary>10 unchanged</summary>"));
        assert_eq!(md.matches("| totals |").count(), 5);
    }

    #[test]
    fn junit_has_a_case_per_metric_and_failures_for_regressions() {
        let c = regressed();
        let xml = render_junit(&c);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
        assert_eq!(xml.matches("<testcase ").count(), c.rows.len());
        assert_eq!(
            xml.matches("<failure ").count(),
            c.count(Verdict::Regressed)
        );
        assert!(xml.contains(&format!("failures=\"{}\"", c.count(Verdict::Regressed))));
        assert!(xml.contains("classname=\"st&lt;r&gt;ess.get_execution\" name=\"throughput\""));
        assert!(!xml.contains("st<r>ess"), "names are escaped");

        let xml = render_junit(&unchanged());
        assert!(xml.contains("tests=\"10\" failures=\"0\" errors=\"0\" skipped=\"0\""));
        assert!(!xml.contains("<failure"));
    }

    #[test]
    fn warnings_and_inconclusive_rows_are_marked() {
        let base: Vec<_> = [1000.0, 1300.0, 800.0]
            .iter()
            .enumerate()
            .map(|(i, t)| run("s", &format!("2024-05-01T10:0{i}:00Z"), *t, 700.0, 0))
            .collect();
        let cand: Vec<_> = [930.0, 931.0, 929.0]
            .iter()
            .enumerate()
            .map(|(i, t)| run("s", &format!("2024-05-01T11:0{i}:00Z"), *t, 700.0, 0))
            .collect();
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        assert_eq!(c.rows[0].verdict, Verdict::Inconclusive);
        let xml = render_junit(&c);
        assert!(xml.contains("<skipped message=\"inconclusive: baseline runs spread"));
        let table = render_compare_table(&c);
        assert!(table.contains("INCONCLUSIVE"));
        assert!(
            c.verdict.starts_with("INCONCLUSIVE (exit 3): "),
            "{}",
            c.verdict
        );
        assert_eq!(table.lines().last(), Some(c.verdict.as_str()));
    }

    #[test]
    fn a_missed_target_reads_the_same_in_every_rendering() {
        // Every row unchanged, the absolute target missed in every candidate run: the
        // old table said "PASS: 10 unchanged" above "gate failed: ...", and exited 1.
        let with_target = |mut r: crate::results::Results| {
            r.targets.push(crate::results::targets::TargetResult {
                metric: "totals.throughput".into(),
                target: ">= 20000/s".into(),
                measured: r.totals.throughput,
                unit: "/s".into(),
                passed: false,
                implied: false,
            });
            r
        };
        let base = vec![with_target(run(
            "s",
            "2024-05-01T10:00:00Z",
            1000.0,
            700.0,
            0,
        ))];
        let cand = vec![with_target(run(
            "s",
            "2024-05-01T10:01:00Z",
            1000.0,
            700.0,
            0,
        ))];
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        let verdict = "FAIL (exit 1): absolute target missed in most candidate runs: \
                       totals.throughput >= 20000/s (missed in 1 of 1 runs)";
        assert_eq!(c.verdict, verdict);
        let table = render_compare_table(&c);
        assert_eq!(table.lines().last(), Some(verdict));
        assert!(!table.contains("PASS"), "{table}");
        let md = render_compare_markdown(&c);
        assert_eq!(
            md.lines().next(),
            Some(format!("❌ **s**: {verdict}").as_str())
        );
        assert!(!md.contains("PASS"), "{md}");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["verdict"], verdict);
        assert_eq!(
            (json["outcome"].as_str(), json["exit_code"].as_u64()),
            (Some("fail"), Some(1))
        );
        assert_eq!(json["failures"][0]["kind"], "target_missed");
        let xml = render_junit(&c);
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("<failure type=\"target\" message=\"totals.throughput &gt;= 20000/s"));
    }

    #[test]
    fn the_change_cell_names_the_pairs_and_puts_the_interval_with_the_judged_change() {
        let mut row = unchanged().rows[0].clone();
        row.change = Some(35.897);
        row.interval = Some([2.0, 80.1]);
        assert_eq!(fmt_change(&row), "+35.9% [+2.0, +80.1]");
        row.paired_change = Some(-6.9);
        assert_eq!(
            fmt_change(&row),
            "+35.9% [+2.0, +80.1] · pairs -6.9% disagree"
        );
        row.change = Some(8.0);
        row.paired_change = Some(12.0);
        row.judged_on = Estimate::Pairs;
        row.interval = Some([10.1, 14.0]);
        assert_eq!(fmt_change(&row), "+8.0% · pairs +12.0% [+10.1, +14.0]");
    }

    #[test]
    fn the_runs_are_shown_with_the_machine_beside_them() {
        let mut base = vec![run("s", "2024-05-01T10:00:00Z", 1000.0, 700.0, 0)];
        base[0].machine = Some(crate::results::MachineLoad {
            other_cpu_pct: 35.4,
            steal_pct: 0.2,
            load_avg_1m: 3.25,
            idle_pct: None,
            monitor_cpu_pct: None,
        });
        let cand = vec![run("s", "2024-05-01T10:01:00Z", 1000.0, 700.0, 0)];
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        let table = render_compare_table(&c);
        let line = |needle: &str| {
            table
                .lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle:?} line in\n{table}"))
                .to_string()
        };
        assert!(line("load 1m").contains("other CPU"));
        let b = line("2024-05-01T10:00:00Z");
        assert!(
            b.contains("baseline") && b.contains("35%") && b.contains("3.25"),
            "{b}"
        );
        let c_line = line("2024-05-01T10:01:00Z");
        assert!(
            c_line.contains("candidate") && c_line.contains(" - "),
            "{c_line}"
        );
        assert!(
            table.contains("warning: the machine was busy with other work during baseline run 1")
        );
        let md = render_compare_markdown(&c);
        assert!(md.contains("<details><summary>2 runs, with the machine's other work</summary>"));
        assert!(
            md.contains("| baseline | 1 | 2024-05-01T10:00:00Z | 1,000/s |"),
            "{md}"
        );
    }

    #[test]
    fn xml_escaping_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;&apos;?\n"
        );
    }
}
