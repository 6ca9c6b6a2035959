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

use crate::gate::targets::Figure;
use crate::load::machine::MachineLoad;
use crate::load::results::{Results, SCHEMA_VERSION};
use crate::load::scenario::GateLimits;
use crate::metrics::OpStats;

/// How many limits wide the runs' own spread may be before a metric cannot be judged.
/// The range of 5 runs is about 2.3 standard deviations of one run: at one limit, a
/// metric with a 4 % run-to-run deviation (common on a shared 2-core machine) would be
/// unjudgeable against a 10 % limit, while a real 10 % change still shows in the interval.
const INCONCLUSIVE_SPREAD: f64 = 2.0;

/// Name of the all-operations row, as in results JSON.
pub const TOTALS: &str = "totals";

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

/// The figures a comparison judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Throughput,
    P50,
    P90,
    P99,
    ErrorRate,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Throughput,
        Metric::P50,
        Metric::P90,
        Metric::P99,
        Metric::ErrorRate,
    ];

    /// The name used in results JSON and scenario files.
    pub fn name(self) -> &'static str {
        self.figure().name()
    }

    pub fn figure(self) -> Figure {
        match self {
            Metric::Throughput => Figure::Throughput,
            Metric::P50 => Figure::P50,
            Metric::P90 => Figure::P90,
            Metric::P99 => Figure::P99,
            Metric::ErrorRate => Figure::ErrorRate,
        }
    }

    /// This metric of `stats`: ops/s, microseconds or percent.
    pub fn measure(self, stats: &OpStats) -> f64 {
        self.figure().measure(stats)
    }

    /// Whether a rise of this metric is a change for the worse.
    pub fn higher_is_worse(self) -> bool {
        !matches!(self, Metric::Throughput)
    }

    /// Whether changes are absolute (percentage points) rather than relative (percent).
    pub fn is_absolute(self) -> bool {
        matches!(self, Metric::ErrorRate)
    }

    /// Unit of the measured values.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Throughput => "ops/s",
            Metric::ErrorRate => "%",
            _ => "us",
        }
    }

    /// Unit of changes, limits and spreads.
    pub fn change_unit(self) -> &'static str {
        if self.is_absolute() {
            "pt"
        } else {
            "%"
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How far each metric may worsen before it counts as a regression, as positive magnitudes:
/// `throughput: 10.0` allows a 10 % drop, `p99: 20.0` a 20 % rise, `error_rate: 0.1` a rise
/// of 0.1 percentage points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    /// Allowed throughput drop, percent.
    pub throughput: f64,
    /// Allowed median latency rise, percent.
    pub p50: f64,
    /// Allowed 90th percentile latency rise, percent.
    pub p90: f64,
    /// Allowed 99th percentile latency rise, percent.
    pub p99: f64,
    /// Allowed error rate rise, percentage points.
    pub error_rate: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            throughput: 10.0,
            p50: 10.0,
            p90: 15.0,
            p99: 20.0,
            error_rate: 0.1,
        }
    }
}

impl Limits {
    /// The defaults, overridden by what a scenario's `[gate]` table sets. The table may write
    /// the throughput limit as `-10` or `10`: both mean a 10 % drop.
    pub fn from_gate(gate: &GateLimits) -> Limits {
        let mut limits = Limits::default();
        for metric in Metric::ALL {
            if let Some(v) = gate.get(metric.figure()) {
                limits.set(metric, v.abs());
            }
        }
        limits
    }

    /// The limit of `metric`: percent, or percentage points for the error rate.
    pub fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Throughput => self.throughput,
            Metric::P50 => self.p50,
            Metric::P90 => self.p90,
            Metric::P99 => self.p99,
            Metric::ErrorRate => self.error_rate,
        }
    }

    /// Overrides the limit of `metric` (a flag beats the scenario file).
    pub fn set(&mut self, metric: Metric, value: f64) {
        let slot = match metric {
            Metric::Throughput => &mut self.throughput,
            Metric::P50 => &mut self.p50,
            Metric::P90 => &mut self.p90,
            Metric::P99 => &mut self.p99,
            Metric::ErrorRate => &mut self.error_rate,
        };
        *slot = value;
    }

    /// Every limit must be a finite number above zero.
    pub fn validate(&self) -> Result<(), CompareError> {
        for metric in Metric::ALL {
            let value = self.get(metric);
            if !(value.is_finite() && value > 0.0) {
                return Err(CompareError::Limit { metric, value });
            }
        }
        Ok(())
    }
}

/// Whether run `i` of the baseline and run `i` of the candidate form a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pairing {
    /// Paired when both sides have the same number of runs (at least two) and their start
    /// times show them interleaved: sorted by start, pair `i` finished starting before any
    /// run of pair `i + 1` started.
    #[default]
    Auto,
    /// Paired in the order given; both sides must have the same number of runs.
    Paired,
    /// Never paired.
    Unpaired,
}

/// Settings of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    pub limits: Limits,
    pub pairing: Pairing,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
    /// Seed of the bootstrap's random generator.
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            limits: Limits::default(),
            pairing: Pairing::Auto,
            resamples: 2000,
            seed: 0x5EED_57E9_F10A,
        }
    }
}

/// Which set of runs an input belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Baseline,
    Candidate,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Baseline => "baseline",
            Side::Candidate => "candidate",
        })
    }
}

/// Input that cannot be compared; the command line exits 2 on these. `index` counts the runs
/// of a side from 1, in the order given, so the caller can name the file.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("no {0} runs given; pass at least one results JSON file per side")]
    Empty(Side),
    #[error("{side} run {index} has schema_version {found}; this version reads {SCHEMA_VERSION}")]
    SchemaVersion {
        side: Side,
        index: usize,
        found: u32,
    },
    #[error(
        "{side} run {index} is scenario {found:?} but baseline run 1 is {expected:?}; \
         compare runs of one scenario"
    )]
    ScenarioMismatch {
        side: Side,
        index: usize,
        expected: String,
        found: String,
    },
    #[error(
        "paired comparison needs as many candidate runs as baseline runs \
         ({baseline} baseline, {candidate} candidate)"
    )]
    PairCount { baseline: usize, candidate: usize },
    #[error("the {metric} limit must be a finite number above zero, not {value}")]
    Limit { metric: Metric, value: f64 },
}

/// The judgement of one (operation, metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Improved,
    Unchanged,
    Warn,
    Regressed,
    Inconclusive,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::Warn => "warn",
            Verdict::Regressed => "regressed",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which estimate of the change a row is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimate {
    /// The change of the candidate median against the baseline median.
    Medians,
    /// The median of the per-pair changes (interleaved runs).
    Pairs,
}

impl Row {
    /// The change the verdict is about (`paired_change` or `change`, see `judged_on`).
    pub fn judged_change(&self) -> Option<f64> {
        match self.judged_on {
            Estimate::Pairs => self.paired_change,
            Estimate::Medians => self.change,
        }
    }
}

/// The comparison as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Nothing worse than unchanged (improvements included).
    Pass,
    /// Warnings, but no failure and nothing inconclusive.
    Warn,
    /// A regression, lost writes or a missed absolute target: see [`Comparison::failures`].
    Fail,
    /// A totals figure could not be judged, and nothing failed.
    Inconclusive,
}

impl Outcome {
    /// Exit code of the command line: 0 pass or warnings only, 1 fail, 3 inconclusive.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Pass | Outcome::Warn => crate::exit::OK,
            Outcome::Fail => crate::exit::FAILED,
            Outcome::Inconclusive => crate::exit::ABORTED,
        }
    }

    /// The word the closing line starts with.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Warn => "PASS with warnings",
            Outcome::Fail => "FAIL",
            Outcome::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// Why a comparison fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A row regressed against the baseline.
    Regression,
    /// A candidate run lost acknowledged writes (its integrity check).
    LostWrites,
    /// The candidate misses an absolute target of the scenario in most of its runs.
    TargetMissed,
}

/// One reason a comparison fails (exit 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// What failed, in words: "totals.p99 +34.2 %", "totals.throughput >= 20000/s (missed
    /// in 3 of 5 runs)", "candidate run 2 lost 3 acknowledged writes".
    pub what: String,
}

/// Median and range of one side's runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Median over the runs, in the metric's unit (ops/s, microseconds or percent).
    pub median: f64,
    /// Lowest run, in the metric's unit.
    pub min: f64,
    /// Highest run, in the metric's unit.
    pub max: f64,
}

/// Which test produced a p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PMethod {
    /// Exact distribution of U (no ties, at most 50 runs in all).
    Exact,
    /// Normal approximation with tie and continuity corrections.
    Normal,
}

/// A two-sided Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankTest {
    /// U statistic of the first sample (the baseline).
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    pub method: PMethod,
}

/// One (operation, metric) of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Operation name, or "totals".
    pub operation: String,
    pub metric: Metric,
    /// Unit of `baseline` and `candidate`: "ops/s", "us" or "%".
    pub unit: &'static str,
    /// Baseline runs' median and range, in `unit`.
    pub baseline: Spread,
    /// Candidate runs' median and range, in `unit`.
    pub candidate: Spread,
    /// Unit of `change`, `interval`, `limit` and `baseline_spread`: "%" (relative) or "pt"
    /// (percentage points, error rate).
    pub change_unit: &'static str,
    /// Change of the candidate median against the baseline median, in `change_unit`: the
    /// figure that goes with the medians beside it; null when the baseline median is zero and
    /// the candidate's is not.
    pub change: Option<f64>,
    /// Paired runs only: the median of the per-pair changes, in `change_unit`.
    pub paired_change: Option<f64>,
    /// Which change `interval` and `verdict` are about: `pairs` (`paired_change`) when the
    /// runs were paired and the pairs do not point the other way than the medians,
    /// `medians` (`change`) otherwise.
    pub judged_on: Estimate,
    /// 95 % bootstrap confidence interval of the judged change, [low, high], in
    /// `change_unit`.
    pub interval: Option<[f64; 2]>,
    /// Two-sided Mann-Whitney U p-value of the runs (information only, see the module doc).
    pub p_value: f64,
    /// How `p_value` was computed.
    pub p_method: PMethod,
    /// Signed limit in `change_unit`: negative for throughput (a drop), positive otherwise.
    pub limit: f64,
    /// Baseline runs' own spread, (max − min) / median in percent ("pt": max − min).
    pub baseline_spread: f64,
    /// The noise the inconclusive rule weighs against the limit, in `change_unit`: the
    /// baseline's spread; judged on the pairs, the smaller of that and the spread (max − min)
    /// of the per-pair changes divided by √2, since pairing removes drift that the
    /// baseline's spread includes.
    pub noise: f64,
    pub verdict: Verdict,
    /// Why the verdict, in words.
    pub reason: String,
}

/// The result of comparing candidate runs with baseline runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub scenario: String,
    /// Baseline runs compared, count.
    pub baseline_runs: usize,
    /// Candidate runs compared, count.
    pub candidate_runs: usize,
    /// Whether run `i` of each side was compared as a pair.
    pub paired: bool,
    /// Confidence level of the intervals, fraction (0.95).
    pub confidence: f64,
    /// Bootstrap resamples per interval, count.
    pub resamples: usize,
    /// Seed of the bootstrap generator.
    pub seed: u64,
    pub limits: Limits,
    /// One row per (operation, metric): operations by name, then totals; metrics in the
    /// order throughput, p50, p90, p99, error_rate.
    pub rows: Vec<Row>,
    /// The rows' verdicts counted, worst first: "1 regression · 2 warnings · 14 unchanged".
    pub headline: String,
    pub outcome: Outcome,
    /// 0 pass or warnings only, 1 fail, 3 inconclusive; the command line exits with it.
    pub exit_code: u8,
    /// Why the outcome is fail: regressed rows, lost writes, missed targets; empty otherwise.
    pub failures: Vec<Failure>,
    /// The closing line, agreeing with `outcome` and `exit_code` by construction:
    /// "FAIL (exit 1): 1 regression: totals.p99 +34.2 %".
    pub verdict: String,
    /// Things a reader should know: operations on one side only, runs that aborted, ...
    pub warnings: Vec<String>,
    /// Every run of both sides in the order they started, with how busy the machine was.
    pub runs: Vec<RunInfo>,
}

/// One run of a comparison: when it ran, its totals, and the machine's other work then, so
/// that a run disturbed by the machine stands out beside the others.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub side: Side,
    /// Place among its side's runs in the order given, from 1.
    pub index: usize,
    /// RFC 3339 start of the run.
    pub started_at: String,
    /// Totals throughput, ops/s.
    pub throughput: f64,
    /// Totals 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Other processes' CPU, steal and load average during the run; null when not recorded.
    pub machine: Option<MachineLoad>,
}

/// Other work (other processes' CPU plus steal) at or above which a run is named in a
/// warning, percent of the machine: a tenth of it taken away is enough to move a
/// CPU-bound run's figures by about the default limits. It informs; it never decides.
pub const BUSY_MACHINE_PCT: f64 = 10.0;

/// The runs of both sides in the order they started (the order given when a start time
/// does not parse), and a warning naming those that ran on a busy machine.
fn run_infos(
    baseline: &[Results],
    candidate: &[Results],
    warnings: &mut Vec<String>,
) -> Vec<RunInfo> {
    let mut runs: Vec<RunInfo> = [(Side::Baseline, baseline), (Side::Candidate, candidate)]
        .into_iter()
        .flat_map(|(side, rs)| {
            rs.iter().enumerate().map(move |(i, r)| RunInfo {
                side,
                index: i + 1,
                started_at: r.started_at.clone(),
                throughput: r.totals.throughput,
                p99_us: r.totals.latency_us.p99,
                machine: r.machine,
            })
        })
        .collect();
    if runs.iter().all(|r| start_ms(&r.started_at).is_some()) {
        runs.sort_by_key(|r| start_ms(&r.started_at));
    }
    let busy: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let m = r.machine?;
            (m.other_cpu_pct + m.steal_pct >= BUSY_MACHINE_PCT).then(|| {
                format!(
                    "{} run {} (other processes {:.0} %, steal {:.0} %)",
                    r.side, r.index, m.other_cpu_pct, m.steal_pct
                )
            })
        })
        .collect();
    if !busy.is_empty() {
        warnings.push(format!(
            "the machine was busy with other work during {}: their figures may be the \
             machine's, not the code's; see the runs table",
            busy.join(", ")
        ));
    }
    runs
}

impl Comparison {
    /// How many rows have `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }
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

/// A change for people: "+34.2 %", "-6.9 %", "+0.30 pt"; "-" when undefined.
pub fn fmt_change(metric: Metric, change: Option<f64>) -> String {
    match change {
        None => "-".to_string(),
        Some(c) if metric.is_absolute() => format!("{c:+.2} pt"),
        Some(c) => format!("{c:+.1} %"),
    }
}

/// "totals.p99 +34.2 %" or, judged on the pairs, "totals.p99 +34.2 % per pair": the change
/// the verdict is about, named as the table shows it.
fn named_change(r: &Row) -> String {
    let label = match r.judged_on {
        Estimate::Pairs => " per pair",
        Estimate::Medians => "",
    };
    format!(
        "{}.{} {}{label}",
        r.operation,
        r.metric,
        fmt_change(r.metric, r.judged_change())
    )
}

/// Up to three items, then how many more: "a, b, c and 2 more".
fn some_of(items: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut out = items[..items.len().min(SHOWN)].join(", ");
    if items.len() > SHOWN {
        out.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    out
}

/// The closing line: the outcome, the exit code and why, e.g. "FAIL (exit 1): 1 regression:
/// totals.p99 +34.2 %; absolute target missed in most candidate runs: totals.throughput
/// >= 20000/s (missed in 5 of 5 runs)".
fn verdict_line(c: &Comparison) -> String {
    let word = c.outcome.word();
    let code = c.exit_code;
    // Rows with `verdict`, the totals first: only the first few are named.
    let rows_with = |verdict: Verdict, totals_only: bool| -> Vec<&Row> {
        let mut rows: Vec<&Row> = c
            .rows
            .iter()
            .filter(|r| r.verdict == verdict && (!totals_only || r.operation == TOTALS))
            .collect();
        rows.sort_by_key(|r| r.operation != TOTALS);
        rows
    };
    let named = |rows: &[&Row]| -> Vec<String> { rows.iter().map(|r| named_change(r)).collect() };
    let mut why = match c.outcome {
        Outcome::Fail => {
            let mut parts = Vec::new();
            for (kind, one, many) in [
                (FailureKind::Regression, "1 regression", "regressions"),
                (FailureKind::LostWrites, "lost writes", "lost writes"),
                (
                    FailureKind::TargetMissed,
                    "absolute target missed in most candidate runs",
                    "absolute targets missed in most candidate runs",
                ),
            ] {
                let what: Vec<String> = c
                    .failures
                    .iter()
                    .filter(|f| f.kind == kind)
                    .map(|f| f.what.clone())
                    .collect();
                let label = match (kind, what.len()) {
                    (_, 0) => continue,
                    (_, 1) => one.to_string(),
                    (FailureKind::Regression, n) => format!("{n} {many}"),
                    _ => many.to_string(),
                };
                parts.push(format!("{label}: {}", some_of(&what)));
            }
            let open = rows_with(Verdict::Inconclusive, true);
            if !open.is_empty() {
                let names: Vec<String> = open
                    .iter()
                    .map(|r| format!("{}.{}", r.operation, r.metric))
                    .collect();
                parts.push(format!("also inconclusive: {}", some_of(&names)));
            }
            parts.join("; ")
        }
        Outcome::Inconclusive => {
            let open = rows_with(Verdict::Inconclusive, true);
            let names: Vec<String> = open
                .iter()
                .map(|r| format!("{}.{}", r.operation, r.metric))
                .collect();
            let hint = if too_few_runs(c.baseline_runs, c.candidate_runs) {
                format!("rerun with at least {MIN_RUNS} runs a side")
            } else {
                "rerun with more runs or on a quieter machine".to_string()
            };
            format!(
                "{} could not be judged, nothing failed; {hint}",
                some_of(&names)
            )
        }
        Outcome::Warn => {
            let warned = rows_with(Verdict::Warn, false);
            let label = if warned.len() == 1 {
                "1 warning".to_string()
            } else {
                format!("{} warnings", warned.len())
            };
            format!("{label}: {}", some_of(&named(&warned)))
        }
        Outcome::Pass => pass_counts(c),
    };
    // Passing with operation rows that could not be judged: say they did not decide, so
    // that "inconclusive" in the table does not read as a contradiction of the exit code.
    let open = rows_with(Verdict::Inconclusive, false).len();
    if matches!(c.outcome, Outcome::Pass | Outcome::Warn) && open > 0 {
        why.push_str(&format!(
            "; {open} operation row{} inconclusive (only the totals decide)",
            if open == 1 { "" } else { "s" }
        ));
    }
    format!("{word} (exit {code}): {why}")
}

/// "2 improved · 58 unchanged": the verdicts of a passing comparison.
fn pass_counts(c: &Comparison) -> String {
    let parts: Vec<String> = [Verdict::Improved, Verdict::Unchanged]
        .into_iter()
        .map(|v| (v, c.count(v)))
        .filter(|(_, n)| *n > 0)
        .map(|(v, n)| format!("{n} {v}"))
        .collect();
    if parts.is_empty() {
        "nothing compared".to_string()
    } else {
        parts.join(" · ")
    }
}

fn refs(runs: &[Results]) -> Vec<&Results> {
    runs.iter().collect()
}

/// Both sides sorted by start time, when they pair up as interleaved runs.
fn interleaved<'a>(
    baseline: &'a [Results],
    candidate: &'a [Results],
) -> Option<(Vec<&'a Results>, Vec<&'a Results>)> {
    if baseline.len() != candidate.len() || baseline.len() < 2 {
        return None;
    }
    let sorted = |runs: &'a [Results]| -> Option<Vec<(i64, &'a Results)>> {
        let mut v = runs
            .iter()
            .map(|r| Some((start_ms(&r.started_at)?, r)))
            .collect::<Option<Vec<_>>>()?;
        v.sort_by_key(|(t, _)| *t);
        Some(v)
    };
    let b = sorted(baseline)?;
    let c = sorted(candidate)?;
    let pairs: Vec<(i64, i64)> = b
        .iter()
        .zip(&c)
        .map(|((tb, _), (tc, _))| (*tb.min(tc), *tb.max(tc)))
        .collect();
    let separated = pairs.windows(2).all(|w| w[0].1 < w[1].0);
    separated.then(|| {
        (
            b.into_iter().map(|(_, r)| r).collect(),
            c.into_iter().map(|(_, r)| r).collect(),
        )
    })
}

/// Milliseconds since the epoch of an RFC 3339 timestamp.
pub(crate) fn start_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Operations present in every run of both sides, by name; the others are named in a warning.
fn common_operations(
    baseline: &[&Results],
    candidate: &[&Results],
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let all: BTreeSet<&String> = baseline
        .iter()
        .chain(candidate)
        .flat_map(|r| r.operations.keys())
        .collect();
    let mut common = Vec::new();
    for name in all {
        let missing: BTreeMap<Side, usize> =
            [(Side::Baseline, baseline), (Side::Candidate, candidate)]
                .into_iter()
                .map(|(side, runs)| {
                    let n = runs
                        .iter()
                        .filter(|r| !r.operations.contains_key(name))
                        .count();
                    (side, n)
                })
                .filter(|(_, n)| *n > 0)
                .collect();
        if missing.is_empty() {
            common.push(name.clone());
        } else {
            let detail: Vec<String> = missing
                .iter()
                .map(|(side, n)| format!("{n} {side} run(s)"))
                .collect();
            warnings.push(format!(
                "operation {name:?} not compared: missing from {}",
                detail.join(" and ")
            ));
        }
    }
    common
}

/// Judges one metric of one operation; `limit` is the positive magnitude.
#[allow(clippy::too_many_arguments)]
fn judge(
    operation: &str,
    metric: Metric,
    base: &[f64],
    cand: &[f64],
    paired: bool,
    limit: f64,
    resamples: usize,
    seed: u64,
) -> Row {
    let summary = |v: &[f64]| Spread {
        median: median(v),
        min: v.iter().copied().fold(f64::INFINITY, f64::min),
        max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    };
    let (b, c) = (summary(base), summary(cand));
    let test = mann_whitney_u(base, cand);
    // Positive `worse` means a change for the worse, whatever the metric's direction.
    let sign = if metric.higher_is_worse() { 1.0 } else { -1.0 };
    let signed_limit = sign * limit;
    let range = robust_range(base);
    let spread = if metric.is_absolute() {
        range
    } else if range == 0.0 {
        0.0
    } else if b.median > 0.0 {
        range / b.median * 100.0
    } else {
        f64::INFINITY
    };

    let absolute = metric.is_absolute();
    let floor = limit * NOISE_FLOOR_FRACTION;
    // The change of the medians is the figure shown beside the medians; when paired, the
    // median of the per-pair changes, which cancels drift, is judged instead, unless it
    // points the other way: then the pairs disagree among themselves too much to trust
    // (runs heterogeneous enough for the two to differ in sign past the noise floor), and
    // the runs are judged unpaired.
    let change = Estimator {
        absolute,
        paired: false,
    }
    .point(base, cand);
    let pairs = Estimator {
        absolute,
        paired: true,
    };
    let per_pair = if paired {
        pairs.per_pair(base, cand)
    } else {
        None
    };
    let paired_change = per_pair.as_deref().map(median);
    let pairs_disagree = match (change, paired_change) {
        (Some(m), Some(p)) => m * p < 0.0 && m.abs().max(p.abs()) > floor,
        _ => paired_change.is_some(),
    };
    let judged_on = if paired_change.is_some() && !pairs_disagree {
        Estimate::Pairs
    } else {
        Estimate::Medians
    };
    let estimate = Estimator {
        absolute,
        paired: judged_on == Estimate::Pairs,
    };
    let point = match judged_on {
        Estimate::Pairs => paired_change,
        Estimate::Medians => change,
    };
    let interval = point.and_then(|_| estimate.interval(base, cand, resamples, seed));
    // A change between two runs carries the noise of both, √2 times one run's for
    // independent noise: scaled so, the pairs' spread is comparable with the baseline's.
    // The candidate's own spread is deliberately not pooled in: under A/A it only adds the
    // candidate side's disturbed runs to the noise (more inconclusive outcomes, not fewer),
    // and against a real change an erratic candidate is part of what is judged; the
    // per-pair spread carries both sides' noise already.
    let noise = match &per_pair {
        Some(changes) if judged_on == Estimate::Pairs => {
            spread.min(robust_range(changes) / std::f64::consts::SQRT_2)
        }
        _ => spread,
    };
    let mut row = Row {
        operation: operation.to_string(),
        metric,
        unit: metric.unit(),
        baseline: b,
        candidate: c,
        change_unit: metric.change_unit(),
        change,
        paired_change,
        judged_on,
        interval,
        p_value: test.p_value,
        p_method: test.method,
        limit: signed_limit,
        baseline_spread: spread,
        noise,
        verdict: Verdict::Unchanged,
        reason: String::new(),
    };
    let unit = metric.change_unit();
    let (Some(point), Some([low, high])) = (point, interval) else {
        row.verdict = Verdict::Inconclusive;
        row.reason = "the baseline is zero and the candidate is not; no relative change".into();
        return row;
    };
    judge_change(&mut row, point, [low, high], spread, base.len(), cand.len());
    if pairs_disagree {
        if let Some(p) = paired_change {
            row.reason.push_str(&format!(
                " (judged unpaired: the per-pair changes, median {p:+.2}{unit}, point the \
                 other way than the medians)"
            ));
        }
    }
    row
}

/// Sets the verdict and reason of `row` from the judged change `point`, its interval, the
/// baseline's `spread` and the run counts; see the module doc for the rules.
fn judge_change(
    row: &mut Row,
    point: f64,
    [low, high]: [f64; 2],
    spread: f64,
    n_base: usize,
    n_cand: usize,
) {
    let metric = row.metric;
    let operation = row.operation.as_str();
    let noise = row.noise;
    let signed_limit = row.limit;
    let limit = signed_limit.abs();
    let sign = if metric.higher_is_worse() { 1.0 } else { -1.0 };
    let unit = metric.change_unit();
    let shown = |v: f64| format!("{v:+.2}{unit}");
    // The judged change in words: which estimate it is, when it is not the medians'.
    let said = match row.judged_on {
        Estimate::Pairs => format!("the per-pair change {}", shown(point)),
        Estimate::Medians => shown(point),
    };
    let worse = sign * point;
    // The interval's ends in the worse direction: `near` is the one closest to "no change"
    // when the change is for the worse, `far` when it is for the better.
    let (near, far) = if sign > 0.0 {
        (low, high)
    } else {
        (-high, -low)
    };
    let floor = limit * NOISE_FLOOR_FRACTION;
    let warn_at = limit * WARN_FRACTION;
    let worse_shown = |v: f64| shown(sign * v);

    let what = if noise < spread {
        "per-pair changes"
    } else {
        "baseline runs"
    };
    // Errors are not timing noise (a sound service on loopback has none): judged from any
    // number of runs.
    if too_few_runs(n_base, n_cand) && !metric.is_absolute() {
        // Few runs: only a change beyond twice the limit (and beyond the runs' own spread,
        // when that is wider) is judged, and only on the totals; see the module doc. Gains
        // and losses meet the same bar: one pair that "improved" by noise is no more
        // evidence than one that "regressed".
        let gross = (limit * INCONCLUSIVE_SPREAD).max(noise);
        let runs = format!("{n_base} against {n_cand} runs");
        if operation == TOTALS && worse > limit && near > gross {
            row.verdict = Verdict::Regressed;
            row.reason = format!(
                "{} is past the {} limit and, with only {runs}, the whole interval is past \
                 twice the limit and the runs' spread",
                said,
                shown(signed_limit)
            );
            return;
        }
        if operation == TOTALS && -worse > limit && -far > gross {
            row.verdict = Verdict::Improved;
            row.reason = format!(
                "{said}, and with only {runs} the whole interval is better than twice the \
                 limit and the runs' spread"
            );
            return;
        }
        if worse.abs() > limit {
            let which = if operation == TOTALS {
                "a change under twice the limit"
            } else {
                "one operation's change"
            };
            let past = if worse > 0.0 { "past" } else { "a gain beyond" };
            row.verdict = Verdict::Inconclusive;
            row.reason = format!(
                "{said} is {past} the {} limit, but {runs} cannot tell {which} from noise; \
                 rerun with at least {MIN_RUNS} runs a side",
                shown(signed_limit)
            );
            return;
        }
        // A gain within the limit but past half of it stays "unchanged" unless the runs are
        // too noisy to say even that (judged below, as is anything smaller).
        if -worse > warn_at && noise <= limit * INCONCLUSIVE_SPREAD {
            row.reason = format!(
                "{said} is better than half the limit, but {runs} cannot confirm a gain this size"
            );
            return;
        }
    }
    if noise > limit * INCONCLUSIVE_SPREAD {
        // Too noisy to judge a change of one limit: judge only what stands out beyond it.
        if worse > limit && near > noise {
            row.verdict = Verdict::Regressed;
            row.reason = format!(
                "{} is past the {} limit, and the interval stays beyond the {what}' \
                 spread of {noise:.2}{unit}",
                said,
                shown(signed_limit)
            );
        } else if -far > noise.max(warn_at) {
            row.verdict = Verdict::Improved;
            row.reason = format!(
                "{} improves beyond the {what}' spread of {noise:.2}{unit}",
                said
            );
        } else {
            row.verdict = Verdict::Inconclusive;
            row.reason = format!(
                "{what} spread {noise:.2}{unit}, more than {INCONCLUSIVE_SPREAD}× the {} limit; \
                 rerun with more runs or on a quieter machine",
                shown(signed_limit)
            );
        }
    } else if worse > limit && near > floor {
        row.verdict = Verdict::Regressed;
        row.reason = format!(
            "{} is past the {} limit and the interval's near end {} is past the noise floor {}",
            said,
            shown(signed_limit),
            worse_shown(near),
            worse_shown(floor)
        );
    } else if worse > warn_at {
        row.verdict = Verdict::Warn;
        row.reason = if worse > limit {
            format!(
                "{} is past the {} limit, but the interval reaches {}, within the noise floor {}",
                said,
                shown(signed_limit),
                worse_shown(near),
                worse_shown(floor)
            )
        } else {
            format!("{} is past half the {} limit", said, shown(signed_limit))
        };
    } else if -far > floor && -worse > warn_at {
        row.verdict = Verdict::Improved;
        row.reason = format!(
            "{}, the whole interval better than {}",
            said,
            worse_shown(-floor)
        );
    } else {
        row.reason = format!("{} is within the {} limit", said, shown(signed_limit));
    }
}

/// How the change between the two sides is estimated.
struct Estimator {
    absolute: bool,
    paired: bool,
}

impl Estimator {
    /// Change of `c` against `b`: percent, or points when absolute. None when the baseline
    /// is zero and the candidate is not.
    fn change(&self, c: f64, b: f64) -> Option<f64> {
        if self.absolute {
            Some(c - b)
        } else if b > 0.0 {
            Some((c / b - 1.0) * 100.0)
        } else if c == b {
            Some(0.0)
        } else {
            None
        }
    }

    /// Change of each pair (run `i` of each side); None when one is undefined.
    fn per_pair(&self, base: &[f64], cand: &[f64]) -> Option<Vec<f64>> {
        base.iter()
            .zip(cand)
            .map(|(b, c)| self.change(*c, *b))
            .collect()
    }

    fn point(&self, base: &[f64], cand: &[f64]) -> Option<f64> {
        if self.paired {
            Some(median(&self.per_pair(base, cand)?))
        } else {
            self.change(median(cand), median(base))
        }
    }

    /// Percentile bootstrap interval of `point`; resamples whose change is undefined (a
    /// resampled baseline median of zero) are left out.
    fn interval(
        &self,
        base: &[f64],
        cand: &[f64],
        resamples: usize,
        seed: u64,
    ) -> Option<[f64; 2]> {
        if (base.len() == 1 && cand.len() == 1) || resamples == 0 {
            let p = self.point(base, cand)?;
            return Some([p, p]);
        }
        let mut rng = SplitMix64(seed);
        let mut stats = Vec::with_capacity(resamples);
        let mut b = vec![0.0; base.len()];
        let mut c = vec![0.0; cand.len()];
        for _ in 0..resamples {
            if self.paired {
                for i in 0..base.len() {
                    let j = rng.below(base.len());
                    b[i] = base[j];
                    c[i] = cand[j];
                }
            } else {
                for slot in b.iter_mut() {
                    *slot = base[rng.below(base.len())];
                }
                for slot in c.iter_mut() {
                    *slot = cand[rng.below(cand.len())];
                }
            }
            if let Some(change) = self.point(&b, &c) {
                stats.push(change);
            }
        }
        if stats.is_empty() {
            return None;
        }
        stats.sort_by(f64::total_cmp);
        let tail = (1.0 - CONFIDENCE) / 2.0;
        Some([
            quantile_sorted(&stats, tail),
            quantile_sorted(&stats, 1.0 - tail),
        ])
    }
}

/// Median of `values` (mean of the middle two for an even count); NaN when empty.
/// The runs' range (max − min), or for 4 runs or more the range that the median absolute
/// deviation predicts for that many runs of normal noise (d2(n) · 1.4826 · MAD), if that is
/// smaller. One disturbed run among five made the whole range, and with it the comparison,
/// unjudgeable: over 20 A/A comparisons of 5 against 5 `ci` runs on a 2-core VM, 13 came out
/// inconclusive on ranges of 20–65 % (results/reference/flap-test.md). The medians judged
/// are robust to that one run already; the noise estimate now is too.
pub fn robust_range(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let range = if values.is_empty() { 0.0 } else { max - min };
    // Expected range of n normal samples in standard deviations (Tippett's d2).
    const D2: [f64; 7] = [2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078];
    if values.len() < 4 {
        return range;
    }
    let d2 = D2.get(values.len() - 4).copied().unwrap_or(3.078);
    let m = median(values);
    let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    range.min(d2 * 1.4826 * median(&deviations))
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

/// Quantile `q` of sorted values with linear interpolation between order statistics.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// Two-sided Mann-Whitney U test of `x` against `y`.
///
/// Exact (the distribution of U by counting arrangements) when there are no ties and at most
/// 50 values in all; otherwise the normal approximation with the tie-corrected variance and a
/// continuity correction of 0.5. Either side empty gives p = 1.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> RankTest {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return RankTest {
            u: 0.0,
            p_value: 1.0,
            method: PMethod::Exact,
        };
    }
    // Midranks of the pooled sample; tie groups feed the variance correction.
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pooled.len();
    let (mut rank_sum_x, mut tie_term, mut ties) = (0.0, 0.0, false);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let midrank = (i + j) as f64 / 2.0 + 1.0;
        if t > 1.0 {
            ties = true;
            tie_term += t * t * t - t;
        }
        rank_sum_x += midrank * pooled[i..=j].iter().filter(|p| p.1).count() as f64;
        i = j + 1;
    }
    let u = rank_sum_x - (n1 * (n1 + 1)) as f64 / 2.0;

    if !ties && n <= 50 {
        let counts = u_distribution(n1, n2);
        let total: f64 = counts.iter().sum();
        let k = u.round() as usize;
        let below: f64 = counts[..=k].iter().sum();
        let above: f64 = counts[k..].iter().sum();
        return RankTest {
            u,
            p_value: (2.0 * below.min(above) / total).min(1.0),
            method: PMethod::Exact,
        };
    }
    let (f1, f2, nf) = (n1 as f64, n2 as f64, n as f64);
    let mean = f1 * f2 / 2.0;
    let variance = f1 * f2 / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    let p_value = if variance <= 0.0 {
        1.0
    } else {
        let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
        erfc(z / std::f64::consts::SQRT_2).min(1.0)
    };
    RankTest {
        u,
        p_value,
        method: PMethod::Normal,
    }
}

/// The smallest two-sided p the Mann-Whitney U test can give for `n1` against `n2` runs
/// without ties: both extreme arrangements out of C(n1 + n2, n1). 1 when a side is empty.
pub fn smallest_p_value(n1: usize, n2: usize) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (n, k) = (n1 + n2, n1.min(n2));
    // C(n, k) by the multiplicative formula; large values only make p smaller.
    let arrangements = (1..=k).fold(1.0_f64, |c, i| c * (n - k + i) as f64 / i as f64);
    (2.0 / arrangements).min(1.0)
}

/// Number of arrangements of `n1` x-values and `n2` y-values giving each U from 0 to n1·n2,
/// by the recurrence f(m, n, u) = f(m−1, n, u−n) + f(m, n−1, u). Counts stay exact in f64
/// up to 50 values in all (C(50, 25) < 2^53).
fn u_distribution(n1: usize, n2: usize) -> Vec<f64> {
    // table[m][n] is the distribution for m x-values and n y-values, built row by row.
    let mut prev: Vec<Vec<f64>> = (0..=n2).map(|_| vec![1.0]).collect();
    for m in 1..=n1 {
        let mut row: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        row.push(vec![1.0]);
        for n in 1..=n2 {
            let mut dist = vec![0.0; m * n + 1];
            // The largest value is an x: it beats all n y-values.
            for (u, c) in prev[n].iter().enumerate() {
                dist[u + n] += c;
            }
            // The largest value is a y: U unchanged.
            for (u, c) in row[n - 1].iter().enumerate() {
                dist[u] += c;
            }
            row.push(dist);
        }
        prev = row;
    }
    prev.swap_remove(n2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The seeded generator of the bootstrap (SplitMix64): small, fast, and the same numbers on
/// every platform, which is all resampling needs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (multiply-shift; the bias is below 2^-32 for small n).
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// "1 regression · 2 warnings · 14 unchanged": the verdicts that occur, worst first.
fn headline(c: &Comparison) -> String {
    let parts: Vec<String> = [
        (Verdict::Regressed, "regression", "regressions"),
        (Verdict::Inconclusive, "inconclusive", "inconclusive"),
        (Verdict::Warn, "warning", "warnings"),
        (Verdict::Improved, "improved", "improved"),
        (Verdict::Unchanged, "unchanged", "unchanged"),
    ]
    .into_iter()
    .filter_map(|(verdict, one, many)| match c.count(verdict) {
        0 => None,
        1 => Some(format!("1 {one}")),
        n => Some(format!("{n} {many}")),
    })
    .collect();
    if parts.is_empty() {
        "nothing compared".to_string()
    } else {
        parts.join(" · ")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::load::results::{Environment, LoadInfo};
    use crate::metrics::Recorder;

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
            run_id: Some(crate::load::results::new_run_id()),
            run_ids: Vec::new(),
            scenario: scenario.into(),
            kind: "mix".into(),
            target: "http://127.0.0.1:1".into(),
            profile: Some("optimized".into()),
            started_at: started_at.into(),
            duration_s: 10.0,
            warmup_s: 1.0,
            load: LoadInfo::Closed { concurrency: 4 },
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
            extra: serde_json::Map::new(),
            errors: BTreeMap::new(),
            warnings: Vec::new(),
            aborted: None,
            exit_code: 0,
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
        let mut rng = SplitMix64(7);
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

    /// `r` with the scenario target `totals.throughput >= 20000/s`, met or missed.
    fn with_throughput_target(mut r: Results, passed: bool) -> Results {
        r.targets.push(crate::gate::targets::TargetResult {
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
        cand[1].integrity = Some(crate::load::engine::Integrity {
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
    fn smallest_p_values_of_the_rank_test() {
        let exact = |n1: usize, n2: usize| {
            let x: Vec<f64> = (0..n1).map(|i| i as f64).collect();
            let y: Vec<f64> = (0..n2).map(|i| 100.0 + i as f64).collect();
            mann_whitney_u(&x, &y).p_value
        };
        for (n1, n2, p) in [
            (1, 1, 1.0),
            (2, 2, 1.0 / 3.0),
            (3, 3, 0.1),
            (3, 4, 2.0 / 35.0),
            (4, 4, 2.0 / 70.0),
            (5, 5, 2.0 / 252.0),
            (2, 8, 2.0 / 45.0),
        ] {
            assert!((smallest_p_value(n1, n2) - p).abs() < 1e-12, "{n1}v{n2}");
            assert!((exact(n1, n2) - p).abs() < 1e-12, "{n1}v{n2}: exact test");
        }
        assert_eq!(smallest_p_value(0, 5), 1.0);
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
    fn mann_whitney_matches_known_small_cases() {
        // (x, y, U, p, method), p-values as published tables and scipy's mannwhitneyu give.
        type Case<'a> = (&'a [f64], &'a [f64], f64, f64, PMethod);
        let cases: [Case; 7] = [
            (&[1., 2., 3.], &[4., 5., 6.], 0.0, 0.1, PMethod::Exact),
            (&[4., 5., 6.], &[1., 2., 3.], 9.0, 0.1, PMethod::Exact),
            (&[1., 3., 5.], &[2., 4., 6.], 3.0, 0.7, PMethod::Exact),
            (&[1., 2.], &[3., 4., 5.], 0.0, 0.2, PMethod::Exact),
            (
                &[1., 2., 3., 4., 5.],
                &[6., 7., 8., 9., 10.],
                0.0,
                2.0 / 252.0,
                PMethod::Exact,
            ),
            // Ties: normal approximation, tie-corrected variance 22.5, continuity 0.5.
            (
                &[1., 2., 3., 4., 5.],
                &[3., 4., 5., 6., 7.],
                4.5,
                0.113_846,
                PMethod::Normal,
            ),
            (&[1., 1., 1.], &[1., 1., 1.], 4.5, 1.0, PMethod::Normal),
        ];
        for (x, y, u, p, method) in cases {
            let t = mann_whitney_u(x, y);
            assert_eq!(t.u, u, "{x:?} {y:?}");
            assert!(
                (t.p_value - p).abs() < 1e-4,
                "{x:?} {y:?}: {} vs {p}",
                t.p_value
            );
            assert_eq!(t.method, method);
        }
        // Large untied samples switch to the approximation, which then agrees closely.
        let x: Vec<f64> = (0..30).map(|i| i as f64 * 2.0).collect();
        let y: Vec<f64> = (0..30).map(|i| i as f64 * 2.0 + 3.0).collect();
        let t = mann_whitney_u(&x, &y);
        assert_eq!(t.method, PMethod::Normal);
        assert!(t.p_value > 0.3 && t.p_value < 0.8, "{}", t.p_value);
    }

    #[test]
    fn exact_u_distribution_sums_to_the_arrangements() {
        for (n1, n2, total) in [(3, 3, 20.0), (5, 5, 252.0), (2, 7, 36.0), (1, 1, 2.0)] {
            let d = u_distribution(n1, n2);
            assert_eq!(d.len(), n1 * n2 + 1);
            assert_eq!(d.iter().sum::<f64>(), total);
            let reversed: Vec<f64> = d.iter().rev().copied().collect();
            assert_eq!(d, reversed, "U is symmetric");
        }
        assert_eq!(
            u_distribution(3, 3),
            [1., 1., 2., 3., 3., 3., 3., 2., 1., 1.]
        );
    }

    #[test]
    fn erfc_matches_reference_values() {
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122),
            (1.0, 0.157_299_207),
            (2.0, 0.004_677_735),
            (-1.0, 1.842_700_793),
        ] {
            assert!((erfc(x) - expected).abs() < 2e-7, "erfc({x})");
        }
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
    fn median_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
        assert_eq!(quantile_sorted(&[0.0, 10.0], 0.25), 2.5);
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
}
