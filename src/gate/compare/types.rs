//! The comparison's types: metrics and their limits, options, verdicts and outcomes, the
//! rows and the comparison as rendered and written as JSON.

use super::*;

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

impl Comparison {
    /// How many rows have `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }
}
