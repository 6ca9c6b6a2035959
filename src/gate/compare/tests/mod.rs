//! compare's tests: verdicts on made-up runs whose truth is known, the statistics against
//! known values, and the JSON and pairing contracts.

use super::*;
use crate::metrics::Recorder;
use crate::results::{Environment, Load};

/// Stats of `ok` successes around `latency_us` (spread ±10 %) and `errors` failures over
/// `duration_s`; `throughput` comes out as ok / duration_s.
pub(crate) fn op_stats(ok: u64, errors: u64, latency_us: f64, duration_s: f64) -> OpStats {
    let mut r = Recorder::new();
    for i in 0..ok {
        let f = 0.9 + 0.2 * (i % 101) as f64 / 100.0;
        let ns = (latency_us * f * 1_000.0) as u64;
        r.record_ok(ns, ns);
    }
    for _ in 0..errors {
        r.record_error(1_000);
    }
    r.summarize(duration_s)
}

/// A one-operation run with the given throughput (ops/s over 10 s) and latency.
pub(crate) fn run(
    scenario: &str,
    started_at: &str,
    throughput: f64,
    latency_us: f64,
    errors: u64,
) -> Results {
    let ok = (throughput * 10.0).round() as u64;
    let stats = op_stats(ok, errors, latency_us, 10.0);
    Results {
        schema_version: SCHEMA_VERSION,
        run_id: Some(crate::results::new_run_id()),
        run_ids: Vec::new(),
        scenario: scenario.into(),
        kind: "mix".into(),
        target: "http://127.0.0.1:1".into(),
        profile: Some("optimized".into()),
        started_at: started_at.into(),
        duration_s: 10.0,
        warmup_s: 1.0,
        load: Load::Closed { concurrency: 4 },
        operations: BTreeMap::from([("get_execution".to_string(), stats.clone())]),
        totals: stats,
        service_time_us: BTreeMap::new(),
        targets: Vec::new(),
        integrity: None,
        delivery: None,
        server: None,
        environment: Environment {
            cpu: "test".into(),
            cores: 2,
            os: "test".into(),
            version: "0".into(),
            git: None,
            generator_threads: 1,
        },
        machine: None,
        timeseries: Vec::new(),
        operations_timeseries: BTreeMap::new(),
        extra: serde_json::Map::new(),
        errors: BTreeMap::new(),
        warnings: Vec::new(),
        aborted: None,
        exit_code: 0,
        shape: None,
        generator: None,
        levels: Vec::new(),
        knee: None,
        capacity: None,
    }
}

/// Runs with throughputs `tputs` and latency inversely proportional, started a minute
/// apart from `minute0`.
fn runs(tputs: &[f64], minute0: u32) -> Vec<Results> {
    tputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let at = format!("2024-05-01T10:{:02}:00.000Z", minute0 + i as u32);
            run("stress", &at, *t, 1_000_000.0 / t, 0)
        })
        .collect()
}

/// The row of `operation`'s `metric`.
fn row<'a>(c: &'a Comparison, operation: &str, metric: Metric) -> &'a Row {
    c.rows
        .iter()
        .find(|r| r.operation == operation && r.metric == metric)
        .unwrap_or_else(|| panic!("no {operation}.{metric:?} row"))
}

#[test]
fn identical_samples_are_unchanged_everywhere() {
    for n in [1, 3, 5] {
        let base = runs(&vec![1000.0; n], 0);
        let cand = runs(&vec![1000.0; n], 30);
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        assert_eq!(c.rows.len(), 10, "5 metrics for the operation and totals");
        for row in &c.rows {
            assert_eq!(row.verdict, Verdict::Unchanged, "n={n} {row:?}");
            assert_eq!(row.change, Some(0.0));
            assert_eq!(row.interval, Some([0.0, 0.0]));
            assert_eq!(row.p_value, 1.0);
        }
        assert_eq!((c.outcome, c.exit_code), (Outcome::Pass, 0));
        assert_eq!(c.headline, "10 unchanged");
    }
}

#[test]
fn clear_throughput_drop_is_a_regression() {
    let base = runs(&[1000.0, 1010.0, 990.0, 1005.0, 995.0], 0);
    let cand = runs(&[700.0, 705.0, 695.0, 702.0, 698.0], 30);
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert!(!c.paired);
    let tput = &c.rows[0];
    assert_eq!(
        (tput.metric, tput.verdict),
        (Metric::Throughput, Verdict::Regressed)
    );
    let change = tput.change.unwrap();
    assert!((change + 30.0).abs() < 0.5, "{change}");
    let [low, high] = tput.interval.unwrap();
    assert!(
        low <= change && change <= high && high < -25.0,
        "{low} {high}"
    );
    assert!((tput.p_value - 2.0 / 252.0).abs() < 1e-9);
    assert_eq!(tput.p_method, PMethod::Exact);
    assert_eq!(tput.limit, -10.0);
    // Latency rose by ~43 %: the latency rows regress too.
    assert_eq!(c.outcome, Outcome::Fail);
    assert_eq!(c.exit_code, 1);
    assert!(c.headline.starts_with("8 regressions"), "{}", c.headline);
}

#[test]
fn noise_within_three_percent_never_regresses() {
    // Deterministic pseudo-noise: many seeds of ±3 % on throughput, latency and counts.
    let mut rng = crate::rng::Rng::new(7);
    let mut noise = move || 1.0 + (rng.next_u64() % 6001) as f64 / 100_000.0 - 0.03;
    for trial in 0..40 {
        let n = 1 + trial % 6;
        let side = |minute: u32, noise: &mut dyn FnMut() -> f64| -> Vec<Results> {
            (0..n)
                .map(|i| {
                    let at = format!("2024-05-01T10:{:02}:00.000Z", minute + 2 * i as u32);
                    run("stress", &at, 1000.0 * noise(), 800.0 * noise(), 0)
                })
                .collect()
        };
        let base = side(0, &mut noise);
        let cand = side(1, &mut noise);
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        for row in &c.rows {
            assert!(
                !matches!(row.verdict, Verdict::Regressed | Verdict::Inconclusive),
                "trial {trial}: {row:?}"
            );
        }
        assert_eq!(c.exit_code, 0, "trial {trial}");
    }
}

#[test]
fn interleaved_runs_are_paired_and_cancel_drift() {
    // The machine slows by 8 % per pair; the candidate is the same as the baseline.
    let mut base = Vec::new();
    let mut cand = Vec::new();
    for i in 0..5u32 {
        let t = 1000.0 * (1.0 - 0.08 * i as f64);
        let (bm, cm) = if i % 2 == 0 {
            (4 * i, 4 * i + 1)
        } else {
            (4 * i + 1, 4 * i)
        };
        base.push(run("s", &format!("2024-05-01T10:{bm:02}:00Z"), t, 500.0, 0));
        cand.push(run("s", &format!("2024-05-01T10:{cm:02}:00Z"), t, 500.0, 0));
    }
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert!(c.paired);
    let tput = &c.rows[0];
    assert_eq!(tput.judged_on, Estimate::Pairs);
    assert_eq!(tput.change, Some(0.0));
    assert_eq!(tput.paired_change, Some(0.0));
    assert_eq!(tput.interval, Some([0.0, 0.0]));
    // The baseline alone spreads 38 %, past the limit; the pairs agree exactly.
    assert!(tput.baseline_spread > 30.0);
    assert_eq!(tput.noise, 0.0);
    assert_eq!(tput.verdict, Verdict::Unchanged);

    // The same drift with a 30 % drop in every pair stands out beyond the spread.
    let slow: Vec<Results> = cand
        .iter()
        .map(|r| {
            let t = r.totals.throughput * 0.6;
            run("s", &r.started_at, t, 500.0, 0)
        })
        .collect();
    let c = compare(&base, &slow, &CompareOptions::default()).unwrap();
    assert!(c.paired);
    assert_eq!(c.rows[0].verdict, Verdict::Regressed, "{:?}", c.rows[0]);

    // Unpaired on request, the drift is noise again and nothing can be judged.
    let options = CompareOptions {
        pairing: Pairing::Unpaired,
        ..CompareOptions::default()
    };
    let c = compare(&base, &cand, &options).unwrap();
    assert!(!c.paired);
    assert_eq!(c.rows[0].verdict, Verdict::Inconclusive);
}

#[test]
fn the_change_shown_agrees_with_the_medians_beside_it() {
    // Five interleaved pairs, (baseline, candidate) ops/s: three pairs 6.9 % slower, one
    // much faster, one much slower. Medians 117 and 159 (+35.9 %), yet the median of the
    // per-pair changes is -6.9 %: the old change column showed -6.9 % beside 117 -> 159.
    let pairs = [
        (117.0, 108.927),
        (60.0, 159.0),
        (300.0, 170.0),
        (100.0, 93.1),
        (200.0, 186.2),
    ];
    let at = |m: u32| format!("2024-05-01T10:{m:02}:00Z");
    let (mut base, mut cand) = (Vec::new(), Vec::new());
    for (i, (b, c)) in pairs.iter().enumerate() {
        let i = i as u32;
        base.push(run("s", &at(2 * i), *b, 1000.0, 0));
        cand.push(run("s", &at(2 * i + 1), *c, 1000.0, 0));
    }
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert!(c.paired);
    let tput = row(&c, TOTALS, Metric::Throughput);
    assert_eq!(
        (tput.baseline.median, tput.candidate.median),
        (117.0, 159.0)
    );
    let change = tput.change.unwrap();
    assert!((change - 35.897).abs() < 0.01, "{change}");
    let per_pair = tput.paired_change.unwrap();
    assert!((per_pair + 6.9).abs() < 0.01, "{per_pair}");
    // The pairs point the other way: they are not trusted, the medians are judged
    // unpaired, and the runs' spread (over 200 %) leaves that inconclusive.
    assert_eq!(tput.judged_on, Estimate::Medians);
    let [low, high] = tput.interval.unwrap();
    assert!(low <= change && change <= high, "{low} {change} {high}");
    assert_eq!(tput.verdict, Verdict::Inconclusive, "{}", tput.reason);
    assert!(tput.reason.contains("judged unpaired"), "{}", tput.reason);

    // Pairs that agree with the medians are judged, and named so.
    let slower: Vec<Results> = base
        .iter()
        .map(|r| run("s", &r.started_at, r.totals.throughput * 0.7, 1000.0, 0))
        .collect();
    let slower = slower.into_iter().map(|mut r| {
        // One minute later: interleaved again.
        r.started_at = r.started_at.replace(":00Z", ":30Z");
        r
    });
    let c = compare(
        &base,
        &slower.collect::<Vec<_>>(),
        &CompareOptions::default(),
    )
    .unwrap();
    assert!(c.paired);
    let tput = row(&c, TOTALS, Metric::Throughput);
    assert_eq!(tput.judged_on, Estimate::Pairs);
    assert_eq!(tput.verdict, Verdict::Regressed, "{}", tput.reason);
    assert!(
        c.verdict.contains("totals.throughput -30.0 % per pair"),
        "{}",
        c.verdict
    );
}

#[test]
fn one_disturbed_run_does_not_make_the_noise_its_own() {
    // Four steady runs and one 40 % slow one: the range is 40 % of the median, the
    // deviation of the other four predicts a range of 6.9 %.
    let steady = [1000.0, 1010.0, 990.0, 1005.0, 600.0];
    let r = robust_range(&steady);
    assert!((r - 2.326 * 1.4826 * 10.0).abs() < 0.5, "{r}");
    // Fewer than 4 runs: the range, as before; a robust estimate never exceeds it.
    assert_eq!(robust_range(&[1.0, 5.0, 3.0]), 4.0);
    assert_eq!(robust_range(&[1.0, 1.0, 9.0, 9.0]), 8.0);
    assert_eq!(robust_range(&[]), 0.0);
}

#[test]
fn wide_baseline_spread_is_inconclusive() {
    let base = runs(&[1000.0, 1200.0, 850.0, 1100.0, 950.0], 0);
    let cand = runs(&[900.0, 1000.0, 950.0, 880.0, 1020.0], 30);
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    let tput = &c.rows[0];
    assert_eq!(tput.verdict, Verdict::Inconclusive, "{tput:?}");
    // The MAD predicts a range of 34.5 % for 5 such runs (the range itself is 35 %).
    assert!((tput.baseline_spread - 34.49).abs() < 0.1, "{tput:?}");
    assert!(c.count(Verdict::Regressed) == 0);
    assert_eq!((c.outcome, c.exit_code), (Outcome::Inconclusive, 3));
}

#[test]
fn small_drops_warn_and_gains_improve() {
    // (candidate throughput, verdict) against a tight baseline of 1000 ops/s.
    let cases = [
        (1000.0, Verdict::Unchanged),
        (960.0, Verdict::Unchanged),
        (930.0, Verdict::Warn),
        (850.0, Verdict::Regressed),
        (1100.0, Verdict::Improved),
        (1500.0, Verdict::Improved),
    ];
    for (t, expected) in cases {
        let base = runs(&[1000.0, 1002.0, 998.0, 1001.0, 999.0], 0);
        let cand: Vec<Results> = [1.0, 1.002, 0.998, 1.001, 0.999]
            .iter()
            .enumerate()
            .map(|(i, f)| {
                run(
                    "stress",
                    &format!("2024-05-01T11:0{i}:00Z"),
                    t * f,
                    500.0,
                    0,
                )
            })
            .collect();
        let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
        assert_eq!(c.rows[0].verdict, expected, "{t}: {:?}", c.rows[0]);
    }
}

#[test]
fn one_run_per_side_judges_only_gross_changes() {
    // (candidate throughput against 1000 ops/s, verdict): one run a side cannot tell a
    // change under twice the limit (-20 %) from noise.
    // Latency is 1e6/t: p50 moves the other way (higher is worse), +43 % at 700.
    let cases = [
        (700.0, Verdict::Regressed, Verdict::Regressed),
        (850.0, Verdict::Inconclusive, Verdict::Inconclusive),
        (930.0, Verdict::Warn, Verdict::Warn),
        (980.0, Verdict::Unchanged, Verdict::Unchanged),
        (1150.0, Verdict::Inconclusive, Verdict::Inconclusive),
        (1300.0, Verdict::Improved, Verdict::Improved),
    ];
    for (t, expected, expected_p50) in cases {
        let c = compare(
            &runs(&[1000.0], 0),
            &runs(&[t], 1),
            &CompareOptions::default(),
        )
        .unwrap();
        let p50 = row(&c, TOTALS, Metric::P50);
        assert_eq!(p50.verdict, expected_p50, "{t}: {}", p50.reason);
        let tput = row(&c, TOTALS, Metric::Throughput);
        let [low, high] = tput.interval.unwrap();
        assert_eq!(low, high, "one run a side: the interval is the point");
        assert!((low - (t / 10.0 - 100.0)).abs() < 1e-9, "{low}");
        assert_eq!(tput.p_value, 1.0);
        assert_eq!(tput.verdict, expected, "{t}: {}", tput.reason);
        // One operation's row is never judged past the limit with runs this few.
        let op = row(&c, "get_execution", Metric::Throughput);
        if matches!(expected, Verdict::Regressed | Verdict::Improved) {
            assert_eq!(op.verdict, Verdict::Inconclusive, "{}", op.reason);
        } else {
            assert_eq!(op.verdict, expected, "{t}: {}", op.reason);
        }
    }
}

#[test]
fn with_few_runs_gains_and_losses_meet_the_same_bar() {
    // Two interleaved pairs, the candidate's throughput 12 % off either way (past the
    // 10 % limit, short of twice it; latency unchanged): noise could do either, so both are inconclusive (exit 3). The
    // old rule called the loss inconclusive and the gain unchanged (exit 0).
    let at = |m: u32| format!("2024-05-01T10:{m:02}:00Z");
    let side = |factor: f64, minute: u32| -> Vec<Results> {
        [1000.0, 1004.0]
            .iter()
            .enumerate()
            .map(|(i, t)| run("s", &at(minute + 2 * i as u32), t * factor, 500.0, 0))
            .collect()
    };
    let base = side(1.0, 0);
    for (factor, expected, code) in [
        (0.88, Verdict::Inconclusive, 3),
        (1.12, Verdict::Inconclusive, 3),
        // Beyond twice the limit on the totals, either way is judged.
        (0.70, Verdict::Regressed, 1),
        (1.30, Verdict::Improved, 0),
    ] {
        let c = compare(&base, &side(factor, 1), &CompareOptions::default()).unwrap();
        assert!(c.paired);
        let tput = row(&c, TOTALS, Metric::Throughput);
        assert_eq!(tput.verdict, expected, "x{factor}: {}", tput.reason);
        assert_eq!(c.exit_code, code, "x{factor}: {}", c.verdict);
        // One operation's row, past the limit either way, never decides.
        let op = row(&c, "get_execution", Metric::Throughput);
        assert_eq!(
            op.verdict,
            Verdict::Inconclusive,
            "x{factor}: {}",
            op.reason
        );
    }
}

#[test]
fn legacy_against_optimized_fails_at_every_run_count() {
    // The legacy profile's throughput is 2-3x lower and its runs spread wider; its
    // latency is ~3.5x higher. Interleaved as scripts/ci-gate.sh runs them.
    let optimized = [16_000.0, 16_300.0, 15_800.0, 16_100.0, 15_900.0];
    let legacy = [6_000.0, 7_100.0, 5_400.0, 6_600.0, 7_900.0];
    let at = |m: u32| format!("2026-11-22T10:{m:02}:00Z");
    for n in [1, 2, 3, 5] {
        for disturbed in [false, true] {
            let (mut base, mut cand) = (Vec::new(), Vec::new());
            for i in 0..n {
                // A busy machine slows one baseline run by 30 %.
                let slow = if disturbed && i == n / 2 { 0.7 } else { 1.0 };
                let t = optimized[i] * slow;
                base.push(run("ci", &at(4 * i as u32), t, 700.0 / slow, 0));
                let t = legacy[i];
                cand.push(run(
                    "ci",
                    &at(4 * i as u32 + 1),
                    t,
                    2_500.0 * 6_000.0 / t,
                    0,
                ));
            }
            let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
            let what = format!("{n} vs {n}, disturbed {disturbed}");
            let tput = row(&c, TOTALS, Metric::Throughput);
            assert_eq!(tput.verdict, Verdict::Regressed, "{what}: {}", tput.reason);
            assert_eq!((c.outcome, c.exit_code), (Outcome::Fail, 1), "{what}");
            assert!(
                c.verdict.starts_with("FAIL (exit 1): ")
                    && c.verdict.contains("totals.throughput -"),
                "{what}: {}",
                c.verdict
            );
        }
    }
}

#[test]
fn two_pairs_shifted_past_the_limit_are_inconclusive_not_regressed() {
    // An A/A smoke run on a shared CI machine: both candidate runs landed in a slow spell,
    // every figure about 9-11 % worse. Two pairs cannot tell that from a regression.
    let base = vec![
        run("ci", "2026-11-22T10:00:00Z", 1000.0, 660.0, 0),
        run("ci", "2026-11-22T10:00:09Z", 1002.0, 675.0, 0),
    ];
    let cand = vec![
        run("ci", "2026-11-22T10:00:03Z", 912.0, 735.0, 0),
        run("ci", "2026-11-22T10:00:06Z", 915.0, 750.0, 0),
    ];
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert!(c.paired);
    let p50 = row(&c, TOTALS, Metric::P50);
    assert!(p50.change.unwrap() > 10.0, "{p50:?}");
    assert_eq!(p50.verdict, Verdict::Inconclusive, "{}", p50.reason);
    assert!(p50.reason.contains("at least 4 runs"), "{}", p50.reason);
    assert_eq!(c.count(Verdict::Regressed), 0);
    assert_eq!((c.outcome, c.exit_code), (Outcome::Inconclusive, 3));

    // The same shift over 4 pairs with tight runs is judged: regressed.
    let at = |m: u32| format!("2026-11-22T10:{m:02}:00Z");
    let mut base = Vec::new();
    let mut cand = Vec::new();
    for i in 0..4u32 {
        let f = 1.0 + 0.002 * i as f64;
        base.push(run("ci", &at(2 * i), 1000.0 * f, 660.0 * f, 0));
        cand.push(run("ci", &at(2 * i + 1), 880.0 * f, 750.0 * f, 0));
    }
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    assert_eq!(c.outcome, Outcome::Fail);
}

#[test]
fn few_runs_never_judge_more_boldly_than_many() {
    // A wide baseline (spread 67 %) against a drop of 69 %: past twice the limit, but
    // not past the runs' own spread, so it is not judged, with 2 runs as with 5.
    let base = runs(&[1000.0, 500.0], 0);
    let cand = runs(&[310.0, 312.0, 308.0], 10);
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    let tput = row(&c, TOTALS, Metric::Throughput);
    assert_eq!(tput.verdict, Verdict::Inconclusive, "{}", tput.reason);

    // One baseline run against many candidates is still few runs: no noise estimate.
    let cand: Vec<Results> = (0..39)
        .map(|i| {
            run(
                "stress",
                &format!("2024-05-01T11:{i:02}:00Z"),
                850.0,
                500.0,
                0,
            )
        })
        .collect();
    let c = compare(&runs(&[1000.0], 0), &cand, &CompareOptions::default()).unwrap();
    assert!(c.warnings[0].contains("too few"), "{:?}", c.warnings);
    assert_eq!(c.outcome, Outcome::Inconclusive, "{}", c.headline);
}

mod verdicts;
