//! What a scenario asks of a run, as the results contract spells it: targets such as
//! `"create_execution.p99" = "< 5ms"` (their syntax; `gate::judge` checks them), the
//! `TargetResult` written to results JSON, and the `[gate]` limits `compare` applies.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::names::TOTALS;
use crate::metrics::{LatencySummary, OpStats};

/// A figure reported for every operation and for the totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Figure {
    Min,
    Mean,
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    Throughput,
    ErrorRate,
}

impl Figure {
    pub const ALL: [Figure; 10] = [
        Figure::Min,
        Figure::Mean,
        Figure::P50,
        Figure::P90,
        Figure::P95,
        Figure::P99,
        Figure::P999,
        Figure::Max,
        Figure::Throughput,
        Figure::ErrorRate,
    ];

    /// The name used in target keys and results JSON.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Min => "min",
            Figure::Mean => "mean",
            Figure::P50 => "p50",
            Figure::P90 => "p90",
            Figure::P95 => "p95",
            Figure::P99 => "p99",
            Figure::P999 => "p999",
            Figure::Max => "max",
            Figure::Throughput => "throughput",
            Figure::ErrorRate => "error_rate",
        }
    }

    pub fn from_name(name: &str) -> Option<Figure> {
        Figure::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn is_latency(self) -> bool {
        !matches!(self, Figure::Throughput | Figure::ErrorRate)
    }

    /// Unit of a bare number in a target for this figure.
    pub fn default_unit(self) -> Unit {
        match self {
            Figure::Throughput => Unit::PerSecond,
            Figure::ErrorRate => Unit::Percent,
            _ => Unit::Millis,
        }
    }

    /// This figure of `stats`, normalised: microseconds, ops/s or percent.
    pub fn measure(self, stats: &OpStats) -> f64 {
        match self {
            Figure::Throughput => stats.throughput,
            Figure::ErrorRate => stats.error_rate(),
            latency => latency.of_latency(&stats.latency_us).unwrap_or(f64::NAN),
        }
    }

    /// This figure of a latency summary, microseconds; None for throughput and error rate.
    pub fn of_latency(self, l: &LatencySummary) -> Option<f64> {
        Some(match self {
            Figure::Min => l.min,
            Figure::Mean => l.mean,
            Figure::P50 => l.p50,
            Figure::P90 => l.p90,
            Figure::P95 => l.p95,
            Figure::P99 => l.p99,
            Figure::P999 => l.p999,
            Figure::Max => l.max,
            Figure::Throughput | Figure::ErrorRate => return None,
        })
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Relation {
    pub fn symbol(self) -> &'static str {
        match self {
            Relation::Less => "<",
            Relation::LessOrEqual => "<=",
            Relation::Greater => ">",
            Relation::GreaterOrEqual => ">=",
        }
    }

    /// Whether `measured <op> limit` holds; NaN never does.
    pub fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Relation::Less => measured < limit,
            Relation::LessOrEqual => measured <= limit,
            Relation::Greater => measured > limit,
            Relation::GreaterOrEqual => measured >= limit,
        }
    }
}

/// The unit a target was written in, and in which its measured value is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Nanos,
    Micros,
    Millis,
    Seconds,
    PerSecond,
    Percent,
}

impl Unit {
    pub const ALL: [Unit; 6] = [
        Unit::Nanos,
        Unit::Micros,
        Unit::Millis,
        Unit::Seconds,
        Unit::PerSecond,
        Unit::Percent,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Nanos => "ns",
            Unit::Micros => "us",
            Unit::Millis => "ms",
            Unit::Seconds => "s",
            Unit::PerSecond => "/s",
            Unit::Percent => "%",
        }
    }

    fn from_symbol(symbol: &str) -> Option<Unit> {
        Some(match symbol {
            "ns" => Unit::Nanos,
            "us" | "µs" => Unit::Micros,
            "ms" => Unit::Millis,
            "s" => Unit::Seconds,
            "/s" | "ops/s" => Unit::PerSecond,
            "%" => Unit::Percent,
            _ => return None,
        })
    }

    /// Normalised units (µs, ops/s, %) per one of this unit.
    fn factor(self) -> f64 {
        match self {
            Unit::Nanos => 0.001,
            Unit::Micros | Unit::PerSecond | Unit::Percent => 1.0,
            Unit::Millis => 1_000.0,
            Unit::Seconds => 1_000_000.0,
        }
    }

    fn suits(self, figure: Figure) -> bool {
        match self {
            Unit::PerSecond => figure == Figure::Throughput,
            Unit::Percent => figure == Figure::ErrorRate,
            _ => figure.is_latency(),
        }
    }
}

const FIGURES: &str = "min, mean, p50, p90, p95, p99, p999, max, throughput, error_rate";

/// A target that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "target metric \"{metric}\" {reason}: expected \"<operation or totals>.<figure>\" \
         with figure one of {FIGURES}"
    )]
    Metric {
        metric: String,
        reason: &'static str,
    },
    #[error(
        "target \"{expr}\" {reason}: expected a comparison (<, <=, >, >=), a non-negative \
         number and an optional unit (ns, us, ms, s for latency; /s for throughput; % for \
         error_rate), e.g. \"< 5ms\""
    )]
    Expression { expr: String, reason: &'static str },
    #[error("target \"{expr}\" uses unit \"{unit}\", which does not fit {figure}: use {expected}")]
    UnitMismatch {
        expr: String,
        unit: &'static str,
        figure: Figure,
        expected: &'static str,
    },
}

/// One target: `<subject>.<figure> <cmp> <value><unit>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Operation name, or "totals".
    pub subject: String,
    pub figure: Figure,
    pub cmp: Relation,
    /// Limit, normalised: microseconds for latency, ops/s for throughput, percent for
    /// error_rate.
    pub value: f64,
    /// Unit the target was written in (or the figure's default), used for display.
    pub unit: Unit,
}

impl Target {
    /// Parses a key such as `"create_execution.p99"` and a value such as `"< 5ms"`.
    pub fn parse(metric: &str, expr: &str) -> Result<Target, TargetError> {
        let metric_err = |reason| TargetError::Metric {
            metric: metric.to_string(),
            reason,
        };
        let expr_err = |reason| TargetError::Expression {
            expr: expr.to_string(),
            reason,
        };

        let (subject, figure) = metric
            .rsplit_once('.')
            .ok_or_else(|| metric_err("has no figure"))?;
        if subject.is_empty() {
            return Err(metric_err("has no operation"));
        }
        let figure =
            Figure::from_name(figure).ok_or_else(|| metric_err("has an unknown figure"))?;

        let text = expr.trim();
        // Two-character operators first, or "<=" would read as "<" followed by "=".
        let (cmp, rest) = [
            Relation::LessOrEqual,
            Relation::GreaterOrEqual,
            Relation::Less,
            Relation::Greater,
        ]
        .into_iter()
        .find_map(|c| {
            text.strip_prefix(c.symbol())
                .map(|rest| (c, rest.trim_start()))
        })
        .ok_or_else(|| expr_err("does not start with a comparison"))?;

        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, unit) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(expr_err("has no non-negative number"));
        }
        let written: f64 = number
            .parse()
            .map_err(|_| expr_err("has a malformed number"))?;
        let unit = match unit.trim() {
            "" => figure.default_unit(),
            symbol => Unit::from_symbol(symbol).ok_or_else(|| expr_err("has an unknown unit"))?,
        };
        if !unit.suits(figure) {
            return Err(TargetError::UnitMismatch {
                expr: expr.to_string(),
                unit: unit.symbol(),
                figure,
                expected: match figure {
                    Figure::Throughput => "/s",
                    Figure::ErrorRate => "%",
                    _ => "ns, us, ms or s",
                },
            });
        }
        Ok(Target {
            subject: subject.to_string(),
            figure,
            cmp,
            value: written * unit.factor(),
            unit,
        })
    }

    /// The key this target was written under, e.g. "create_execution.p99".
    pub fn metric(&self) -> String {
        format!("{}.{}", self.subject, self.figure)
    }

    /// Whether a normalised measurement (µs, ops/s, percent) meets the target.
    pub fn evaluate(&self, measured: f64) -> bool {
        self.cmp.holds(measured, self.value)
    }

    /// A normalised measurement expressed in the target's unit.
    pub fn in_unit(&self, measured: f64) -> f64 {
        measured / self.unit.factor()
    }

    /// A normalised measurement formatted in the target's unit for people, e.g. "1.2ms":
    /// three significant digits (what the histograms hold), never rounding whole units.
    pub fn format_measured(&self, measured: f64) -> String {
        format_in_unit(self.in_unit(measured), self.unit.symbol())
    }

    /// The verdict on a normalised measurement, for results JSON.
    pub fn result(&self, measured: f64) -> TargetResult {
        TargetResult {
            metric: self.metric(),
            target: self.to_string(),
            measured: round_significant(self.in_unit(measured), 6),
            unit: self.unit.symbol().to_string(),
            passed: self.evaluate(measured),
            implied: false,
        }
    }
}

impl fmt::Display for Target {
    /// The target as written, normalised: "< 5ms", ">= 1000/s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = format_number(self.in_unit(self.value));
        write!(f, "{} {}{}", self.cmp.symbol(), value, self.unit.symbol())
    }
}

/// Throughput targets the offered load cannot meet, said before anything is sent: an open
/// model sends `rate` per second in all, and each operation of a weighted mix its share.
/// `share` gives an operation's fraction of the requests (None: not known, not checked).
pub fn unreachable_throughput(
    targets: &[Target],
    rate_per_s: f64,
    share: impl Fn(&str) -> Option<f64>,
) -> Vec<String> {
    targets
        .iter()
        .filter(|t| t.figure == Figure::Throughput)
        .filter(|t| matches!(t.cmp, Relation::Greater | Relation::GreaterOrEqual))
        .filter_map(|t| {
            let fraction = if t.subject == TOTALS {
                1.0
            } else {
                share(&t.subject)?
            };
            let offered = rate_per_s * fraction;
            let reachable = if t.cmp == Relation::Greater {
                offered > t.value
            } else {
                offered >= t.value
            };
            (!reachable).then(|| {
                format!(
                    "{} {t} cannot be met: the open model offers {offered:.0}/s{}; raise --rate or lower the target",
                    t.metric(),
                    if t.subject == TOTALS {
                        String::new()
                    } else {
                        format!(" to it ({:.1} % of --rate {rate_per_s:.0}/s)", fraction * 100.0)
                    }
                )
            })
        })
        .collect()
}

/// Regression limits for `compare`, in percent, as written in `[gate]`; `None` when not set.
/// Only the figures `compare` judges can be set. Their sign convention belongs to `compare`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GateLimits {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub throughput: Option<f64>,
    pub error_rate: Option<f64>,
}

impl GateLimits {
    /// The limit set for `figure`, percent.
    pub fn get(&self, figure: Figure) -> Option<f64> {
        match figure {
            Figure::P50 => self.p50,
            Figure::P90 => self.p90,
            Figure::P99 => self.p99,
            Figure::Throughput => self.throughput,
            Figure::ErrorRate => self.error_rate,
            Figure::Min | Figure::Mean | Figure::P95 | Figure::P999 | Figure::Max => None,
        }
    }
}

/// JSON has no NaN: serde_json writes it as null, and null reads back as NaN.
fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One checked target, as written to results JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetResult {
    /// "<operation or totals>.<figure>", e.g. "create_execution.p99".
    #[schemars(schema_with = "super::schema::target_metric")]
    pub metric: String,
    /// The target, e.g. "< 5ms".
    #[schemars(length(min = 1))]
    pub target: String,
    /// Measured value in `unit`, rounded to 6 significant digits; null (NaN) when there was
    /// nothing to measure (no successful request, or no such operation).
    #[serde(deserialize_with = "nan_from_null")]
    #[schemars(schema_with = "super::schema::number_or_null")]
    pub measured: f64,
    /// Unit of `measured` and of the target: "ns", "us", "ms", "s", "/s" or "%".
    #[schemars(schema_with = "super::schema::target_unit")]
    pub unit: String,
    /// Whether the measured value meets the target.
    pub passed: bool,
    /// Not written in the scenario: the objective every run has unless its scenario sets one
    /// (see `gate::judge::implied_targets`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub implied: bool,
}

/// A value already in its unit, for people: three significant digits (what the histograms
/// hold) without rounding whole units, e.g. "7.45ms", "24852/s"; "-" when there is none.
fn format_in_unit(v: f64, unit: &str) -> String {
    if v.is_nan() {
        return "-".to_string();
    }
    let decimals = if v == 0.0 || !v.is_finite() {
        0
    } else {
        (2 - v.abs().log10().floor() as i32).max(0) as usize
    };
    format!("{}{unit}", trim_zeros(format!("{v:.decimals$}")))
}

impl TargetResult {
    /// The measured value with its unit, for people (see `format_in_unit`).
    pub fn measured_text(&self) -> String {
        format_in_unit(self.measured, &self.unit)
    }
}

/// Formats a written limit without float noise: 0.5 → "0.5", 1.1000000000000003 → "1.1".
fn format_number(v: f64) -> String {
    trim_zeros(format!("{v:.6}"))
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn round_significant(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let factor = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_measurements_read_as_people_write_them() {
        let result = |measured: f64, unit: &str| TargetResult {
            metric: "totals.p99".into(),
            target: "< 10ms".into(),
            measured,
            unit: unit.into(),
            passed: true,
            implied: false,
        };
        for (measured, unit, text) in [
            (7.45062, "ms", "7.45ms"),
            (0.012087, "ms", "0.0121ms"),
            (24851.8, "/s", "24852/s"),
            (0.0, "%", "0%"),
            (f64::NAN, "ms", "-"),
        ] {
            assert_eq!(result(measured, unit).measured_text(), text);
        }
    }

    #[test]
    fn parses_good_targets() {
        use Relation::*;
        // (metric, expr, subject, figure, cmp, normalised value, unit, display)
        #[rustfmt::skip]
        let cases = [
            ("create_execution.p99", "< 5ms", "create_execution", Figure::P99, Less, 5_000.0, Unit::Millis, "< 5ms"),
            ("totals.p50", "<= 0.5ms", "totals", Figure::P50, LessOrEqual, 500.0, Unit::Millis, "<= 0.5ms"),
            ("totals.throughput", ">= 1000/s", "totals", Figure::Throughput, GreaterOrEqual, 1_000.0, Unit::PerSecond, ">= 1000/s"),
            ("totals.error_rate", "<= 0%", "totals", Figure::ErrorRate, LessOrEqual, 0.0, Unit::Percent, "<= 0%"),
            ("health.max", "< 200us", "health", Figure::Max, Less, 200.0, Unit::Micros, "< 200us"),
            ("health.max", "<200µs", "health", Figure::Max, Less, 200.0, Unit::Micros, "< 200us"),
            ("x.p999", "< 1.5s", "x", Figure::P999, Less, 1_500_000.0, Unit::Seconds, "< 1.5s"),
            ("x.mean", "< 1500 ns", "x", Figure::Mean, Less, 1.5, Unit::Nanos, "< 1500ns"),
            ("totals.throughput", "> 20000", "totals", Figure::Throughput, Greater, 20_000.0, Unit::PerSecond, "> 20000/s"),
            ("totals.throughput", "> 20000 ops/s", "totals", Figure::Throughput, Greater, 20_000.0, Unit::PerSecond, "> 20000/s"),
            ("a.p90", "  <   2  ", "a", Figure::P90, Less, 2_000.0, Unit::Millis, "< 2ms"),
            ("a.min", ">= 1.1ms", "a", Figure::Min, GreaterOrEqual, 1_100.0, Unit::Millis, ">= 1.1ms"),
            ("totals.error_rate", "< 0.5", "totals", Figure::ErrorRate, Less, 0.5, Unit::Percent, "< 0.5%"),
            ("my.dotted.op.p95", "< 3ms", "my.dotted.op", Figure::P95, Less, 3_000.0, Unit::Millis, "< 3ms"),
        ];
        for (metric, expr, subject, figure, cmp, value, unit, display) in cases {
            let t = Target::parse(metric, expr).unwrap_or_else(|e| panic!("{metric} {expr}: {e}"));
            assert_eq!(t.subject, subject, "{expr}");
            assert_eq!((t.figure, t.cmp, t.unit), (figure, cmp, unit), "{expr}");
            assert!((t.value - value).abs() < 1e-9, "{expr}: {}", t.value);
            assert_eq!(t.to_string(), display, "{expr}");
            assert_eq!(t.metric(), metric, "{expr}");
        }
    }

    #[test]
    fn rejects_bad_targets() {
        // (metric, expr, a fragment the message must contain)
        let cases = [
            ("p99", "< 5ms", "has no figure"),
            (".p99", "< 5ms", "has no operation"),
            ("totals.p42", "< 5ms", "unknown figure"),
            ("totals.P99", "< 5ms", "unknown figure"),
            ("totals.p99", "5ms", "does not start with a comparison"),
            ("totals.p99", "= 5ms", "does not start with a comparison"),
            ("totals.p99", "", "does not start with a comparison"),
            ("totals.p99", "<", "has no non-negative number"),
            ("totals.p99", "< -5ms", "has no non-negative number"),
            ("totals.p99", "< ms", "has no non-negative number"),
            ("totals.p99", "< 1.2.3ms", "malformed number"),
            ("totals.p99", "< 5 parsecs", "unknown unit"),
            ("totals.p99", "< 5e3ms", "unknown unit"),
            (
                "totals.p99",
                "< 5/s",
                "does not fit p99: use ns, us, ms or s",
            ),
            ("totals.p99", "< 5%", "does not fit p99"),
            (
                "totals.throughput",
                ">= 5ms",
                "does not fit throughput: use /s",
            ),
            (
                "totals.error_rate",
                "< 1/s",
                "does not fit error_rate: use %",
            ),
        ];
        for (metric, expr, fragment) in cases {
            let err = Target::parse(metric, expr).expect_err(expr).to_string();
            assert!(err.contains(fragment), "{metric} = {expr:?}: {err}");
        }
    }

    #[test]
    fn evaluates_at_boundaries() {
        // (expr, normalised measurement, passes)
        let cases = [
            ("< 5ms", 4_999.9, true),
            ("< 5ms", 5_000.0, false),
            ("<= 5ms", 5_000.0, true),
            ("<= 5ms", 5_000.1, false),
            ("> 5ms", 5_000.0, false),
            (">= 5ms", 5_000.0, true),
            (">= 5ms", 4_999.9, false),
            ("< 200us", 199.0, true),
            ("< 5ms", f64::NAN, false),
            (">= 5ms", f64::NAN, false),
        ];
        for (expr, measured, passes) in cases {
            let t = Target::parse("totals.p99", expr).unwrap();
            assert_eq!(t.evaluate(measured), passes, "{measured} {expr}");
        }
    }

    #[test]
    fn result_json_matches_contract() {
        let t = Target::parse("create_execution.p99", "< 5ms").unwrap();
        let json = serde_json::to_value(t.result(1_200.0)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"metric": "create_execution.p99", "target": "< 5ms",
                               "measured": 1.2, "unit": "ms", "passed": true})
        );
    }

    #[test]
    fn throughput_targets_above_the_offered_rate_are_found_before_the_run() {
        let targets = vec![
            Target::parse("totals.throughput", ">= 1000/s").unwrap(),
            Target::parse("reads.throughput", ">= 600/s").unwrap(),
            Target::parse("writes.throughput", "> 400/s").unwrap(),
            Target::parse("totals.p99", "< 5ms").unwrap(),
        ];
        let share = |name: &str| match name {
            "reads" => Some(0.6),
            "writes" => Some(0.4),
            _ => None,
        };
        // (rate, metrics warned about)
        let cases: [(f64, &[&str]); 4] = [
            (2000.0, &[]),
            (1000.0, &["writes.throughput"]), // 400/s offered is not "> 400/s"
            (
                999.0,
                &["totals.throughput", "reads.throughput", "writes.throughput"],
            ),
            (
                0.5,
                &["totals.throughput", "reads.throughput", "writes.throughput"],
            ),
        ];
        for (rate, expected) in cases {
            let warned = unreachable_throughput(&targets, rate, share);
            let metrics: Vec<&str> = warned
                .iter()
                .map(|w| w.split(' ').next().unwrap())
                .collect();
            assert_eq!(metrics, expected, "rate {rate}: {warned:?}");
            assert!(
                warned.iter().all(|w| w.contains("raise --rate")),
                "{warned:?}"
            );
        }
        // An operation whose share is unknown (not a weighted mix) is not judged.
        let unknown = vec![Target::parse("other.throughput", ">= 1/s").unwrap()];
        assert!(unreachable_throughput(&unknown, 0.1, share).is_empty());
    }
}
