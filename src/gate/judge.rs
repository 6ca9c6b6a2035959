//! Judging one run: its targets (the scenario's and the implied error-rate objective), lost
//! writes and how it ended, as one verdict and one exit code. Measuring (`load::run`)
//! returns only what it measured; this step fills in `targets` and `exit_code`.

use crate::exit;
use crate::metrics::OpStats;
use crate::results::names::TOTALS;
use crate::results::targets::{Figure, Target, TargetResult};
use crate::results::Results;

/// The error-rate objective of a scenario that sets none, so that a run failing most of its
/// requests never passes for want of targets.
pub const IMPLIED_ERROR_RATE: &str = "<= 1%";

/// The targets a scenario has without writing them: `totals.error_rate <= 1%` unless it sets
/// an error-rate target of its own on the totals.
pub fn implied_targets(written: &[Target]) -> Vec<Target> {
    let has_own = written
        .iter()
        .any(|t| t.subject == TOTALS && t.figure == Figure::ErrorRate);
    if has_own {
        return Vec::new();
    }
    let metric = format!("{TOTALS}.{}", Figure::ErrorRate.name());
    vec![Target::parse(&metric, IMPLIED_ERROR_RATE).expect("a valid built-in target")]
}

/// Checks `target`'s figure of `stats` (the subject's stats, chosen by the caller).
pub fn check(target: &Target, stats: &OpStats) -> TargetResult {
    // With no successful request there is no latency to judge; a summary of zeros would
    // pass any latency limit, so the target fails instead.
    if target.figure.is_latency() && stats.successes() == 0 {
        return target.result(f64::NAN);
    }
    target.result(target.figure.measure(stats))
}

/// Every target of the run, the written ones first, each checked against the figures of its
/// subject (an operation, or the totals); a subject the run did not measure fails.
pub fn check_targets(written: &[Target], results: &Results) -> Vec<TargetResult> {
    let implied = implied_targets(written);
    written
        .iter()
        .chain(&implied)
        .map(|t| {
            let stats: Option<&OpStats> = if t.subject == TOTALS {
                Some(&results.totals)
            } else {
                results.operations.get(&t.subject)
            };
            let mut result = match stats {
                Some(s) => check(t, s),
                None => t.result(f64::NAN),
            };
            result.implied = implied.contains(t);
            result
        })
        .collect()
}

/// The exit code of a run, by these rules in order:
/// 1. stopped early (Ctrl-C, the target gone, nothing could start) → aborted (3);
/// 2. an acknowledged write not read back, or a target missed → failed (1);
/// 3. otherwise → ok (0).
pub fn exit_code(results: &Results) -> u8 {
    let lost = results
        .integrity
        .as_ref()
        .is_some_and(|i| i.lost_writes > 0);
    if results.aborted.is_some() {
        exit::ABORTED
    } else if lost || results.targets.iter().any(|t| !t.passed) {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// Judges a measured run in place: its targets, then its exit code. A run that never
/// started (nothing measured) has no targets to check.
pub fn judge(written: &[Target], results: &mut Results) {
    results.targets = if results.operations.is_empty() {
        Vec::new()
    } else {
        check_targets(written, results)
    };
    results.exit_code = exit_code(results);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Recorder;

    #[test]
    fn result_reports_in_target_unit() {
        let mut recorder = Recorder::new();
        for _ in 0..99 {
            recorder.record_ok(1_200_000, 1_000_000);
        }
        recorder.record_error(1);
        let stats = recorder.summarize(0.5);
        // (metric, expr, measured, unit, passed, formatted)
        let cases = [
            ("totals.p99", "< 5ms", 1.2, "ms", true, "1.2ms"),
            ("totals.p99", "< 1000us", 1_200.0, "us", false, "1200us"),
            ("totals.throughput", ">= 200/s", 198.0, "/s", false, "198/s"),
            ("totals.error_rate", "<= 1%", 1.0, "%", true, "1%"),
            ("totals.p99", "< 1s", 0.0012, "s", true, "0.0012s"),
        ];
        for (metric, expr, measured, unit, passed, formatted) in cases {
            let t = Target::parse(metric, expr).unwrap();
            let r = check(&t, &stats);
            assert_eq!(r.metric, metric);
            assert_eq!(r.target, expr);
            // HDR keeps 3 significant digits, so allow 0.1 %.
            assert!(
                (r.measured - measured).abs() <= measured * 1e-3,
                "{expr}: {}",
                r.measured
            );
            assert_eq!((r.unit.as_str(), r.passed), (unit, passed), "{expr}");
            assert_eq!(t.format_measured(t.figure.measure(&stats)), formatted);
        }
    }

    #[test]
    fn a_scenario_without_an_error_rate_objective_gets_the_implied_one() {
        let written = vec![Target::parse("totals.p99", "< 50ms").unwrap()];
        let implied = implied_targets(&written);
        assert_eq!(implied.len(), 1);
        assert_eq!(implied[0].metric(), "totals.error_rate");
        // Most requests failing misses it; none failing meets it.
        assert!(!implied[0].evaluate(60.0));
        assert!(implied[0].evaluate(0.0));
        // A scenario's own totals objective replaces it; one operation's does not.
        let own = vec![Target::parse("totals.error_rate", "<= 5%").unwrap()];
        assert!(implied_targets(&own).is_empty());
        let one_op = vec![Target::parse("create_execution.error_rate", "<= 0%").unwrap()];
        assert_eq!(implied_targets(&one_op).len(), 1);
    }
}
