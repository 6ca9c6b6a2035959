//! The verdict rules: one row's verdict from its change, interval and noise (the rules as
//! a list, tried in order), and the closing line of the whole comparison.

use super::*;

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
pub(super) fn named_change(r: &Row) -> String {
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
pub(super) fn some_of(items: &[String]) -> String {
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
pub(super) fn verdict_line(c: &Comparison) -> String {
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
pub(super) fn pass_counts(c: &Comparison) -> String {
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

/// Judges one metric of one operation; `limit` is the positive magnitude.
#[allow(clippy::too_many_arguments)]
pub(super) fn judge(
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
/// baseline's `spread` and the run counts: the first of `RULES` that applies decides.
pub(super) fn judge_change(
    row: &mut Row,
    point: f64,
    [low, high]: [f64; 2],
    spread: f64,
    n_base: usize,
    n_cand: usize,
) {
    let metric = row.metric;
    let sign = if metric.higher_is_worse() { 1.0 } else { -1.0 };
    let unit = metric.change_unit();
    let limit = row.limit.abs();
    // The interval's ends in the worse direction: `near` is the one closest to "no change"
    // when the change is for the worse, `far` when it is for the better.
    let (near, far) = if sign > 0.0 {
        (low, high)
    } else {
        (-high, -low)
    };
    let facts = Facts {
        said: match row.judged_on {
            Estimate::Pairs => format!("the per-pair change {point:+.2}{unit}"),
            Estimate::Medians => format!("{point:+.2}{unit}"),
        },
        limit_shown: format!("{:+.2}{unit}", row.limit),
        limit,
        worse: sign * point,
        near,
        far,
        floor: limit * NOISE_FLOOR_FRACTION,
        warn_at: limit * WARN_FRACTION,
        noise: row.noise,
        what: if row.noise < spread {
            "per-pair changes"
        } else {
            "baseline runs"
        },
        unit,
        sign,
        // Errors are not timing noise (a sound service on loopback has none): judged from
        // any number of runs.
        few: (too_few_runs(n_base, n_cand) && !metric.is_absolute())
            .then(|| format!("{n_base} against {n_cand} runs")),
        totals: row.operation == TOTALS,
    };
    let (verdict, reason) = RULES
        .iter()
        .find_map(|(_, rule)| rule(&facts))
        .expect("the last rule always applies");
    row.verdict = verdict;
    row.reason = reason;
}

/// What the verdict rules look at: one row's judged change, its interval and the noise, all
/// in the worse direction (positive is worse, whatever the metric's direction).
struct Facts {
    /// The judged change in words (which estimate it is, when not the medians').
    said: String,
    /// The signed limit as the row shows it, e.g. "+10.00%".
    limit_shown: String,
    /// The limit, positive.
    limit: f64,
    /// The judged change, positive when worse.
    worse: f64,
    /// The interval's end nearest to "no change" for a change for the worse, and the other.
    near: f64,
    far: f64,
    /// The noise floor and the warning threshold (fractions of the limit).
    floor: f64,
    warn_at: f64,
    /// The runs' own spread, and whose it is ("baseline runs" or "per-pair changes").
    noise: f64,
    what: &'static str,
    unit: &'static str,
    sign: f64,
    /// Too few runs to judge changes near the limit: "N against M runs".
    few: Option<String>,
    /// The row is the totals' (few runs judge only those).
    totals: bool,
}

impl Facts {
    /// A value in the worse direction shown as the metric's change: "+12.00%".
    fn worse_shown(&self, v: f64) -> String {
        format!("{:+.2}{}", self.sign * v, self.unit)
    }

    /// Too noisy to judge a change of one limit.
    fn noisy(&self) -> bool {
        self.noise > self.limit * INCONCLUSIVE_SPREAD
    }

    /// With few runs, what a change must exceed to be judged: twice the limit, and the
    /// runs' spread when that is wider.
    fn gross(&self) -> f64 {
        (self.limit * INCONCLUSIVE_SPREAD).max(self.noise)
    }
}

/// A rule: the verdict and its reason when the rule applies.
type Rule = fn(&Facts) -> Option<(Verdict, String)>;

/// The verdict rules, tried in order; the first that applies decides (see the module doc).
/// With few runs gains and losses meet the same bar: one pair that improved by noise is no
/// more evidence than one that regressed.
const RULES: [(&str, Rule); 11] = [
    (
        "few runs: the totals worse by twice the limit and the spread",
        |f| {
            let runs = f.few.as_ref()?;
            (f.totals && f.worse > f.limit && f.near > f.gross()).then(|| {
                let reason = format!(
                    "{} is past the {} limit and, with only {runs}, the whole interval is past \
                 twice the limit and the runs' spread",
                    f.said, f.limit_shown
                );
                (Verdict::Regressed, reason)
            })
        },
    ),
    (
        "few runs: the totals better by twice the limit and the spread",
        |f| {
            let runs = f.few.as_ref()?;
            (f.totals && -f.worse > f.limit && -f.far > f.gross()).then(|| {
                let reason = format!(
                    "{}, and with only {runs} the whole interval is better than twice the limit \
                 and the runs' spread",
                    f.said
                );
                (Verdict::Improved, reason)
            })
        },
    ),
    (
        "few runs: any other change past the limit cannot be judged",
        |f| {
            let runs = f.few.as_ref()?;
            (f.worse.abs() > f.limit).then(|| {
                let which = if f.totals {
                    "a change under twice the limit"
                } else {
                    "one operation's change"
                };
                let past = if f.worse > 0.0 {
                    "past"
                } else {
                    "a gain beyond"
                };
                let reason = format!(
                    "{} is {past} the {} limit, but {runs} cannot tell {which} from noise; rerun \
                 with at least {MIN_RUNS} runs a side",
                    f.said, f.limit_shown
                );
                (Verdict::Inconclusive, reason)
            })
        },
    ),
    (
        "few runs: a gain past half the limit is not confirmed",
        |f| {
            let runs = f.few.as_ref()?;
            (-f.worse > f.warn_at && !f.noisy()).then(|| {
                let reason = format!(
                    "{} is better than half the limit, but {runs} cannot confirm a gain this size",
                    f.said
                );
                (Verdict::Unchanged, reason)
            })
        },
    ),
    (
        "noisy: worse than the limit with the interval beyond the spread",
        |f| {
            (f.noisy() && f.worse > f.limit && f.near > f.noise).then(|| {
                let reason = format!(
                    "{} is past the {} limit, and the interval stays beyond the {}' spread of \
                 {:.2}{}",
                    f.said, f.limit_shown, f.what, f.noise, f.unit
                );
                (Verdict::Regressed, reason)
            })
        },
    ),
    ("noisy: the whole interval better than the spread", |f| {
        (f.noisy() && -f.far > f.noise.max(f.warn_at)).then(|| {
            let reason = format!(
                "{} improves beyond the {}' spread of {:.2}{}",
                f.said, f.what, f.noise, f.unit
            );
            (Verdict::Improved, reason)
        })
    }),
    ("noisy: anything else cannot be judged", |f| {
        f.noisy().then(|| {
            let reason = format!(
                "{} spread {:.2}{}, more than {INCONCLUSIVE_SPREAD}× the {} limit; rerun with \
                 more runs or on a quieter machine",
                f.what, f.noise, f.unit, f.limit_shown
            );
            (Verdict::Inconclusive, reason)
        })
    }),
    (
        "worse than the limit, the interval's near end past the noise floor",
        |f| {
            (f.worse > f.limit && f.near > f.floor).then(|| {
                let reason = format!(
                    "{} is past the {} limit and the interval's near end {} is past the noise \
                 floor {}",
                    f.said,
                    f.limit_shown,
                    f.worse_shown(f.near),
                    f.worse_shown(f.floor)
                );
                (Verdict::Regressed, reason)
            })
        },
    ),
    ("worse than half the limit", |f| {
        (f.worse > f.warn_at).then(|| {
            let reason = if f.worse > f.limit {
                format!(
                    "{} is past the {} limit, but the interval reaches {}, within the noise \
                     floor {}",
                    f.said,
                    f.limit_shown,
                    f.worse_shown(f.near),
                    f.worse_shown(f.floor)
                )
            } else {
                format!("{} is past half the {} limit", f.said, f.limit_shown)
            };
            (Verdict::Warn, reason)
        })
    }),
    (
        "better than half the limit, the whole interval past the noise floor",
        |f| {
            (-f.far > f.floor && -f.worse > f.warn_at).then(|| {
                let reason = format!(
                    "{}, the whole interval better than {}",
                    f.said,
                    f.worse_shown(-f.floor)
                );
                (Verdict::Improved, reason)
            })
        },
    ),
    ("otherwise: within the limit", |f| {
        let reason = format!("{} is within the {} limit", f.said, f.limit_shown);
        Some((Verdict::Unchanged, reason))
    }),
];

/// "1 regression · 2 warnings · 14 unchanged": the verdicts that occur, worst first.
pub(super) fn headline(c: &Comparison) -> String {
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
