//! compare's verdict lines and exit codes, the targets and lost writes in them, the machine
//! beside the runs, limits and bad input, and the JSON contract.

use super::*;

/// `r` with the scenario target `totals.throughput >= 20000/s`, met or missed.
fn with_throughput_target(mut r: Results, passed: bool) -> Results {
    r.targets.push(crate::results::targets::TargetResult {
        metric: "totals.throughput".into(),
        target: ">= 20000/s".into(),
        measured: r.totals.throughput,
        unit: "/s".into(),
        passed,
        implied: false,
    });
    r
}

#[test]
fn a_target_missed_in_most_candidate_runs_fails_with_one_verdict() {
    // The case: every row unchanged, the absolute target missed by every run.
    let base: Vec<Results> = runs(&[1000.0; 5], 0)
        .into_iter()
        .map(|r| with_throughput_target(r, false))
        .collect();
    let cand: Vec<Results> = runs(&[1000.0; 5], 30)
        .into_iter()
        .map(|r| with_throughput_target(r, false))
        .collect();
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert_eq!(c.headline, "10 unchanged");
    assert_eq!((c.outcome, c.exit_code), (Outcome::Fail, 1));
    assert_eq!(
        c.verdict,
        "FAIL (exit 1): absolute target missed in most candidate runs: \
         totals.throughput >= 20000/s (missed in 5 of 5 runs)"
    );
    assert_eq!(c.failures.len(), 1);
    assert_eq!(c.failures[0].kind, FailureKind::TargetMissed);

    // Missed in 2 of 5 candidate runs: not most, so the rows decide (pass).
    let cand: Vec<Results> = runs(&[1000.0; 5], 30)
        .into_iter()
        .enumerate()
        .map(|(i, r)| with_throughput_target(r, i >= 2))
        .collect();
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert_eq!((c.outcome, c.exit_code), (Outcome::Pass, 0));
    assert_eq!(c.verdict, "PASS (exit 0): 10 unchanged");
}

#[test]
fn lost_writes_and_regressions_are_named_in_the_verdict() {
    let base = runs(&[1000.0, 1010.0, 990.0, 1005.0, 995.0], 0);
    let mut cand = runs(&[1000.0, 1010.0, 990.0, 1005.0, 995.0], 30);
    cand[1].integrity = Some(crate::results::Integrity {
        checked: 100,
        lost_writes: 3,
        details: Vec::new(),
    });
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert_eq!(c.count(Verdict::Regressed), 0);
    assert_eq!((c.outcome, c.exit_code), (Outcome::Fail, 1));
    assert_eq!(
        c.verdict,
        "FAIL (exit 1): lost writes: candidate run 2 lost 3 acknowledged writes"
    );

    // A regression: named with its change, and counted.
    let slow = runs(&[700.0, 705.0, 695.0, 702.0, 698.0], 30);
    let c = compare(&base, &slow, &CompareOptions::default()).unwrap();
    assert_eq!((c.outcome, c.exit_code), (Outcome::Fail, 1));
    assert!(
        c.verdict
            .starts_with("FAIL (exit 1): 8 regressions: totals.throughput -30.0 %, "),
        "{}",
        c.verdict
    );
    assert!(c.verdict.ends_with(" and 5 more"), "{}", c.verdict);
}

#[test]
fn a_pass_says_that_inconclusive_operation_rows_did_not_decide() {
    // One run a side; one operation 30 % faster, the totals unchanged.
    let base = runs(&[1000.0], 0);
    let mut cand = runs(&[1000.0], 1);
    let faster = op_stats(13_000, 0, 1000.0, 10.0);
    cand[0].operations.insert("get_execution".into(), faster);
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    let op = row(&c, "get_execution", Metric::Throughput);
    assert_eq!(op.verdict, Verdict::Inconclusive, "{}", op.reason);
    assert_eq!((c.outcome, c.exit_code), (Outcome::Pass, 0));
    assert!(
        c.verdict.starts_with("PASS (exit 0): ")
            && c.verdict
                .ends_with(" inconclusive (only the totals decide)"),
        "{}",
        c.verdict
    );
}

#[test]
fn every_outcome_has_a_verdict_line_with_its_exit_code() {
    let tight = [1000.0, 1002.0, 998.0, 1001.0, 999.0];
    let wide = [1000.0, 1200.0, 850.0, 1100.0, 950.0];
    let scaled = |f: f64| -> Vec<f64> { tight.iter().map(|t| t * f).collect() };
    let cases = [
        (
            tight,
            tight.to_vec(),
            Outcome::Pass,
            "PASS (exit 0): 10 unchanged",
        ),
        (
            tight,
            scaled(0.93),
            Outcome::Warn,
            "PASS with warnings (exit 0): 6 warnings: totals.throughput -7.0 %",
        ),
        (
            wide,
            wide.to_vec(),
            Outcome::Inconclusive,
            "INCONCLUSIVE (exit 3): totals.throughput, totals.p50",
        ),
    ];
    for (base, cand, outcome, start) in cases {
        let (base, cand) = (runs(&base, 0), runs(&cand, 30));
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        assert_eq!(c.outcome, outcome, "{}", c.verdict);
        assert!(c.verdict.starts_with(start), "{}", c.verdict);
        assert!(
            c.verdict.contains(&format!("(exit {})", c.exit_code)),
            "{}",
            c.verdict
        );
    }
}

#[test]
fn runs_are_listed_as_they_ran_and_a_busy_machine_is_named() {
    let at = |m: u32| format!("2024-05-01T10:{m:02}:00Z");
    let load = |other: f64| MachineLoad {
        other_cpu_pct: other,
        steal_pct: 1.0,
        load_avg_1m: 2.0,
        idle_pct: None,
        monitor_cpu_pct: None,
    };
    let (mut base, mut cand) = (Vec::new(), Vec::new());
    for i in 0..5u32 {
        // Interleaved B A A B B A ...
        let (b, c) = if i % 2 == 0 {
            (2 * i, 2 * i + 1)
        } else {
            (2 * i + 1, 2 * i)
        };
        let mut r = run("s", &at(b), 1000.0, 500.0, 0);
        // Other work took a third of the machine during baseline run 2.
        r.machine = Some(load(if i == 1 { 35.0 } else { 2.0 }));
        base.push(r);
        cand.push(run("s", &at(c), 1000.0, 500.0, 0));
    }
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    let order: Vec<(Side, usize)> = c.runs.iter().map(|r| (r.side, r.index)).collect();
    use Side::{Baseline as B, Candidate as C};
    assert_eq!(
        order,
        [
            (B, 1),
            (C, 1),
            (C, 2),
            (B, 2),
            (B, 3),
            (C, 3),
            (C, 4),
            (B, 4),
            (B, 5),
            (C, 5)
        ]
    );
    assert_eq!(c.runs[3].machine, Some(load(35.0)));
    assert_eq!(c.runs[1].machine, None, "not recorded");
    let busy: Vec<&String> = c.warnings.iter().filter(|w| w.contains("busy")).collect();
    assert_eq!(busy.len(), 1, "{:?}", c.warnings);
    assert!(
        busy[0].contains("during baseline run 2 (other processes 35 %, steal 1 %)"),
        "{}",
        busy[0]
    );
    // It informs; the verdict is the rows'.
    assert_eq!((c.outcome, c.exit_code), (Outcome::Pass, 0));

    // A quiet machine draws no warning.
    base[1].machine = Some(load(2.0));
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert!(
        !c.warnings.iter().any(|w| w.contains("busy")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn new_errors_are_judged_in_points() {
    let base = vec![run("s", "2024-05-01T10:00:00Z", 1000.0, 500.0, 0)];
    // 10,000 ok; 30 errors is 0.30 % of 10,030.
    let cand = vec![run("s", "2024-05-01T10:01:00Z", 1000.0, 500.0, 30)];
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    let err = row(&c, "get_execution", Metric::ErrorRate);
    assert_eq!(err.verdict, Verdict::Regressed);
    assert_eq!(err.change_unit, "pt");
    assert!((err.change.unwrap() - 0.299).abs() < 0.001);
    // Under the 0.1 point limit: 5 errors (0.05 %) is unchanged, 8 (0.08 %) warns.
    for (errors, expected) in [(5, Verdict::Unchanged), (8, Verdict::Warn)] {
        let cand = vec![run("s", "2024-05-01T10:01:00Z", 1000.0, 500.0, errors)];
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        let err = row(&c, "get_execution", Metric::ErrorRate);
        assert_eq!(err.verdict, expected, "{errors} errors");
    }
}

#[test]
fn limits_come_from_the_gate_table_and_overrides() {
    let gate = GateLimits {
        throughput: Some(-5.0),
        p99: Some(50.0),
        ..GateLimits::default()
    };
    let mut limits = Limits::from_gate(&gate);
    assert_eq!(limits.throughput, 5.0);
    assert_eq!(limits.p99, 50.0);
    assert_eq!(
        (limits.p50, limits.p90, limits.error_rate),
        (10.0, 15.0, 0.1)
    );
    limits.set(Metric::P50, 3.0);
    assert_eq!(limits.get(Metric::P50), 3.0);
    limits.set(Metric::P90, f64::NAN);
    assert!(matches!(
        limits.validate(),
        Err(CompareError::Limit {
            metric: Metric::P90,
            ..
        })
    ));
    let options = CompareOptions {
        limits,
        ..CompareOptions::default()
    };
    assert!(compare(&runs(&[1.0], 0), &runs(&[1.0], 1), &options).is_err());
}

#[test]
fn bad_input_is_an_error() {
    let good = runs(&[1000.0], 0);
    let mut old = runs(&[1000.0], 1);
    old[0].schema_version = 2;
    let other = vec![run("api", "2024-05-01T10:00:00Z", 1000.0, 500.0, 0)];
    let o = CompareOptions::default();
    assert!(matches!(
        compare(&good, &old, &o),
        Err(CompareError::SchemaVersion {
            side: Side::Candidate,
            index: 1,
            found: 2
        })
    ));
    assert!(matches!(
        compare(&good, &other, &o),
        Err(CompareError::ScenarioMismatch { .. })
    ));
    assert!(matches!(
        compare(&[], &good, &o),
        Err(CompareError::Empty(Side::Baseline))
    ));
    let paired = CompareOptions {
        pairing: Pairing::Paired,
        ..o
    };
    assert!(matches!(
        compare(&good, &runs(&[1.0, 2.0], 3), &paired),
        Err(CompareError::PairCount { .. })
    ));
}

#[test]
fn operations_on_one_side_only_are_named_in_warnings() {
    let base = runs(&[1000.0], 0);
    let mut cand = runs(&[1000.0], 1);
    let stats = cand[0].totals.clone();
    cand[0].operations.insert("health".into(), stats);
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert_eq!(c.rows.len(), 10);
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("too few"), "{:?}", c.warnings);
    assert!(c.warnings[1].contains("\"health\""), "{:?}", c.warnings);
}

#[test]
fn zero_baseline_is_inconclusive_unless_both_are_zero() {
    let base = vec![run("s", "2024-05-01T10:00:00Z", 0.0, 500.0, 10)];
    let cand = vec![run("s", "2024-05-01T10:01:00Z", 100.0, 500.0, 0)];
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert_eq!(c.rows[0].verdict, Verdict::Inconclusive);
    assert_eq!(c.rows[0].change, None);
    let c = compare(&base, &base, &CompareOptions::default()).unwrap();
    assert_eq!(c.rows[0].verdict, Verdict::Unchanged);
}

#[test]
fn bootstrap_is_deterministic_and_seed_dependent() {
    // Enough distinct runs that resampled medians take many values.
    let spread =
        |n: usize, at: f64| -> Vec<f64> { (0..n).map(|i| at + (i * 37 % 23) as f64).collect() };
    let base = runs(&spread(15, 1000.0), 0);
    let cand = runs(&spread(12, 980.0), 30);
    let o = CompareOptions::default();
    let a = compare(&base, &cand, &o).unwrap();
    let b = compare(&base, &cand, &o).unwrap();
    assert_eq!(a, b);
    let reseeded = compare(&base, &cand, &CompareOptions { seed: 1, ..o }).unwrap();
    assert_ne!(a.rows[0].interval, reseeded.rows[0].interval);
    let [low, high] = a.rows[0].interval.unwrap();
    let point = a.rows[0].change.unwrap();
    assert!(low < point && point < high, "{low} {point} {high}");
}

#[test]
fn comparison_serializes_with_snake_case_names() {
    let c = compare(
        &runs(&[1.0], 0),
        &runs(&[1.0], 1),
        &CompareOptions::default(),
    )
    .unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["rows"][0]["metric"], "throughput");
    assert_eq!(json["rows"][4]["metric"], "error_rate");
    assert_eq!(json["rows"][0]["verdict"], "unchanged");
    assert_eq!(json["outcome"], "pass");
    assert_eq!(json["headline"], "10 unchanged");
}
