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
/// baseline's `spread` and the run counts; see the module doc for the rules.
pub(super) fn judge_change(
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
