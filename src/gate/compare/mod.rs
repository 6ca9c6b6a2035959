//! Baseline comparison: candidate runs judged against baseline runs, one run = one sample,
//! with medians, bootstrap intervals, a rank test and a verdict per (operation, metric).
//!
//! How a verdict is reached, per metric, with `L` the metric's limit:
//!
//! - The change is the relative change of the candidate median against the baseline median,
//!   in percent (error rate: the difference in percentage points): the figure shown beside
//!   the medians. When the runs were interleaved (B A A B ...) and both sides have the same
//!   number, run `i` of each side is a pair, and the median of the per-pair changes, which
//!   cancels drift of the machine over the session, is what is judged — unless it points the
//!   other way than the change of the medians, one of them past the noise floor: then the
//!   pairs disagree among themselves too much to trust and the runs are judged unpaired.
//!   Either way the row names which change it judged (`judged_on`), and the table shows both.
//! - A 95 % percentile-bootstrap interval of the judged change (pairs resampled together when
//!   paired, each side on its own otherwise), from a seeded generator so the same input always
//!   gives the same interval.
//! - **regressed**: the estimate is past `L` in the worse direction *and* the interval's end
//!   nearest to "no change" is past the noise floor `L/2`;
//!   **warn**: the estimate is past `L/2` (or past `L` with an interval too wide to be sure);
//!   **improved**: the whole interval is past `L/2` in the better direction;
//!   **inconclusive**: the baseline runs' own spread, (max − min) / median, exceeds `2·L`, so a
//!   change of `L` cannot be told from noise — unless the interval's near end lies beyond
//!   that spread as well, in which case the change is judged anyway. Judged on the pairs,
//!   the spread of the per-pair changes (divided by √2: a difference carries two runs'
//!   noise) is used instead if it is smaller: pairing removes drift that the baseline's
//!   spread includes;
//!   **unchanged** otherwise.
//! - **Few runs.** When a side has fewer than 4 runs (3 against 3 gives the rank test at
//!   best p = 0.1, 2 against 2 p = 0.33, and one side's spread is the noise estimate), neither
//!   the spread nor the interval says much (the "95 %" interval of 2 pairs is their range,
//!   which holds the true change half the time). Such a comparison judges only changes that
//!   are gross, and only on the totals (one operation's figures, a share of a random mix,
//!   swing by 25 % between 2-second runs here): a totals row regresses, or improves, when
//!   the whole interval is beyond twice the limit and beyond the runs' spread; a change past
//!   the limit either way short of that, or any operation's row past it, is inconclusive,
//!   with a note to rerun with more runs. Gains and losses meet the same bar: one pair that
//!   improved by noise is as likely as one that regressed by it. Changes within the limit
//!   are judged as usual. The error rate is exempt: errors are not timing noise, and a sound
//!   service on loopback has none.
//!
//! The outcome is **fail** (exit 1) if any row regressed, a candidate run lost acknowledged
//! writes, or the candidate misses one of the scenario's absolute targets in most of its runs;
//! otherwise inconclusive (exit 3) if a `totals` row is (a single operation's inconclusive
//! row is shown but does not decide); warn if any row warns; pass otherwise. One closing
//! line, [`Comparison::verdict`], names the outcome, its exit code and why, and every
//! rendering ends (the table) or opens (markdown) with it.
//!
//! The p-value of a two-sided Mann-Whitney U test on the two sets of runs is reported beside
//! the verdict; only its smallest attainable value decides anything (the few-runs rule).
//! Gating on p itself would make paired gates blind: with 5 runs a side the smallest p is
//! 0.008, but a drift that pairing cancels can keep the two sides' ranks mixed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::metrics::OpStats;
use crate::results::names::TOTALS;
use crate::results::start_ms;
use crate::results::targets::Figure;
use crate::results::targets::GateLimits;
use crate::results::{MachineLoad, Results, SCHEMA_VERSION};

mod pairing;
mod stats;
#[cfg(test)]
pub(crate) mod tests;
mod types;
mod verdict;

use pairing::*;
use stats::*;
pub use stats::{mann_whitney_u, median, robust_range, smallest_p_value};
pub use types::*;
pub use verdict::fmt_change;
use verdict::*;

/// How many limits wide the runs' own spread may be before a metric cannot be judged.
/// The range of 5 runs is about 2.3 standard deviations of one run: at one limit, a
/// metric with a 4 % run-to-run deviation (common on a shared 2-core machine) would be
/// unjudgeable against a 10 % limit, while a real 10 % change still shows in the interval.
const INCONCLUSIVE_SPREAD: f64 = 2.0;

/// The noise floor and the warning threshold, as fractions of a metric's limit.
const NOISE_FLOOR_FRACTION: f64 = 0.5;
const WARN_FRACTION: f64 = 0.5;

/// Confidence level of the bootstrap intervals.
pub const CONFIDENCE: f64 = 0.95;

/// The rank test's significance level: run counts whose smallest attainable p is above it
/// are too few to judge changes near the limit (see "Few runs" in the module doc).
const ALPHA: f64 = 1.0 - CONFIDENCE;

/// Runs a side below which changes near the limit are not judged, whatever the other side
/// has: one side's spread is all the noise estimate there is.
const MIN_RUNS: usize = 4;

/// Whether `n1` against `n2` runs are too few to judge changes near the limit.
fn too_few_runs(n1: usize, n2: usize) -> bool {
    n1.min(n2) < MIN_RUNS || smallest_p_value(n1, n2) > ALPHA
}

/// Checks that the inputs can be compared at all.
pub fn validate(baseline: &[Results], candidate: &[Results]) -> Result<(), CompareError> {
    let first = baseline
        .first()
        .ok_or(CompareError::Empty(Side::Baseline))?;
    if candidate.is_empty() {
        return Err(CompareError::Empty(Side::Candidate));
    }
    let sides = [(Side::Baseline, baseline), (Side::Candidate, candidate)];
    for (side, runs) in sides {
        for (i, r) in runs.iter().enumerate() {
            if r.schema_version != SCHEMA_VERSION {
                return Err(CompareError::SchemaVersion {
                    side,
                    index: i + 1,
                    found: r.schema_version,
                });
            }
        }
    }
    for (side, runs) in sides {
        for (i, r) in runs.iter().enumerate() {
            if r.scenario != first.scenario {
                return Err(CompareError::ScenarioMismatch {
                    side,
                    index: i + 1,
                    expected: first.scenario.clone(),
                    found: r.scenario.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Compares candidate runs with baseline runs; see the module documentation for the rules.
pub fn compare(
    baseline: &[Results],
    candidate: &[Results],
    options: &CompareOptions,
) -> Result<Comparison, CompareError> {
    validate(baseline, candidate)?;
    options.limits.validate()?;
    let mut warnings = Vec::new();

    // Runs are named by their place in the order given.
    let (baseline_given, candidate_given) = (baseline, candidate);
    // Pairs are formed in start-time order when detected, in the given order when forced.
    let (baseline, candidate, paired) = match options.pairing {
        Pairing::Unpaired => (refs(baseline), refs(candidate), false),
        Pairing::Paired => {
            if baseline.len() != candidate.len() {
                return Err(CompareError::PairCount {
                    baseline: baseline.len(),
                    candidate: candidate.len(),
                });
            }
            (refs(baseline), refs(candidate), true)
        }
        Pairing::Auto => match interleaved(baseline, candidate) {
            Some((b, c)) => (b, c, true),
            None => (refs(baseline), refs(candidate), false),
        },
    };

    for (side, runs) in [(Side::Baseline, &baseline), (Side::Candidate, &candidate)] {
        for r in runs.iter() {
            if let Some(why) = &r.aborted {
                warnings.push(format!(
                    "{side} run started {} aborted: {why}",
                    r.started_at
                ));
            }
        }
        let loads: BTreeSet<String> = runs.iter().map(|r| format!("{:?}", r.load)).collect();
        if loads.len() > 1 {
            warnings.push(format!(
                "{side} runs were made with different load settings: {}",
                loads.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if baseline[0].load != candidate[0].load {
        warnings.push(format!(
            "baseline and candidate ran with different load settings ({:?} vs {:?}); \
             throughput changes may come from that",
            baseline[0].load, candidate[0].load
        ));
    }

    if too_few_runs(baseline.len(), candidate.len()) {
        let smallest_p = smallest_p_value(baseline.len(), candidate.len());
        warnings.push(format!(
            "{} against {} runs are too few to judge changes near the limits (the rank test's \
             smallest p is {smallest_p:.3}): only a totals change beyond twice the limit, or \
             new errors, can come out regressed (exit 1); other changes past a limit are \
             inconclusive (exit 3). For a gate, use at least {MIN_RUNS} runs a side",
            baseline.len(),
            candidate.len()
        ));
    }

    let runs = run_infos(baseline_given, candidate_given, &mut warnings);
    let mut rows = Vec::new();
    let operations = common_operations(&baseline, &candidate, &mut warnings);
    let subjects = operations
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(TOTALS));
    for operation in subjects {
        let stats = |r: &Results| -> OpStats {
            if operation == TOTALS {
                r.totals.clone()
            } else {
                r.operations[operation].clone()
            }
        };
        let base_stats: Vec<OpStats> = baseline.iter().map(|r| stats(r)).collect();
        let cand_stats: Vec<OpStats> = candidate.iter().map(|r| stats(r)).collect();
        for metric in Metric::ALL {
            let b: Vec<f64> = base_stats.iter().map(|s| metric.measure(s)).collect();
            let c: Vec<f64> = cand_stats.iter().map(|s| metric.measure(s)).collect();
            let seed = options.seed ^ fnv1a(operation.as_bytes()) ^ (metric as u64 + 1);
            rows.push(judge(
                operation,
                metric,
                &b,
                &c,
                paired,
                options.limits.get(metric),
                options.resamples,
                seed,
            ));
        }
    }

    // The totals first: the verdict line names only the first few.
    let regressed = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Regressed && r.operation == TOTALS)
        .chain(
            rows.iter()
                .filter(|r| r.verdict == Verdict::Regressed && r.operation != TOTALS),
        );
    let mut failures: Vec<Failure> = regressed
        .map(|r| Failure {
            kind: FailureKind::Regression,
            what: named_change(r),
        })
        .collect();
    failures.extend(run_failures(candidate_given, baseline_given, &mut warnings));

    let outcome = if !failures.is_empty() {
        Outcome::Fail
    } else if rows
        .iter()
        .any(|r| r.verdict == Verdict::Inconclusive && r.operation == TOTALS)
    {
        // A single operation's figures are noisier than the totals (fewer samples, a share
        // of a random mix); they are shown as inconclusive but only the totals decide.
        Outcome::Inconclusive
    } else if rows.iter().any(|r| r.verdict == Verdict::Warn) {
        Outcome::Warn
    } else {
        Outcome::Pass
    };
    let mut comparison = Comparison {
        scenario: baseline[0].scenario.clone(),
        baseline_runs: baseline.len(),
        candidate_runs: candidate.len(),
        paired,
        confidence: CONFIDENCE,
        resamples: options.resamples,
        seed: options.seed,
        limits: options.limits,
        rows,
        headline: String::new(),
        outcome,
        exit_code: outcome.exit_code(),
        failures,
        verdict: String::new(),
        warnings,
        runs,
    };
    comparison.headline = headline(&comparison);
    comparison.verdict = verdict_line(&comparison);
    Ok(comparison)
}

/// What fails a comparison whatever the baseline did: a candidate run that lost acknowledged
/// writes, and an absolute target of the scenario that the candidate misses in most of its
/// runs (one unlucky run out of five does not fail the gate; a target missed by the baseline
/// too still does: it is absolute). Runs are counted from 1 in the order given.
fn run_failures(
    candidate: &[Results],
    baseline: &[Results],
    warnings: &mut Vec<String>,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    for (i, r) in candidate.iter().enumerate() {
        if let Some(lost) = r
            .integrity
            .as_ref()
            .map(|i| i.lost_writes)
            .filter(|n| *n > 0)
        {
            failures.push(Failure {
                kind: FailureKind::LostWrites,
                what: format!("candidate run {} lost {lost} acknowledged writes", i + 1),
            });
        }
    }
    for (i, r) in baseline.iter().enumerate() {
        if let Some(lost) = r
            .integrity
            .as_ref()
            .map(|i| i.lost_writes)
            .filter(|n| *n > 0)
        {
            warnings.push(format!(
                "baseline run {} lost {lost} acknowledged writes",
                i + 1
            ));
        }
    }
    if let Some(first) = candidate.first() {
        for (i, t) in first.targets.iter().enumerate() {
            let missed = candidate
                .iter()
                .filter(|r| {
                    r.targets
                        .get(i)
                        .is_some_and(|x| x.metric == t.metric && !x.passed)
                })
                .count();
            if missed * 2 > candidate.len() {
                failures.push(Failure {
                    kind: FailureKind::TargetMissed,
                    what: format!(
                        "{} {} (missed in {missed} of {} runs)",
                        t.metric,
                        t.target,
                        candidate.len()
                    ),
                });
            }
        }
    }
    failures
}
