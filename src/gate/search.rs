//! Judging many runs together: a sweep's knee, and the capacity search's next step, as pure
//! functions of what the runs measured (the runs themselves are the caller's).

/// Where throughput stops growing while latency keeps growing: the last level before a
/// step up in load whose throughput grew by less than 10 % while its p99 grew by more than
/// 10 %. Levels the generator limited are skipped (never a knee,
/// and never the level after one). Input per level: (level, throughput, p99 µs, limited).
pub fn knee(levels: &[(f64, f64, f64, bool)]) -> Option<(usize, String)> {
    for i in 0..levels.len().saturating_sub(1) {
        let (l0, t0, p0, g0) = levels[i];
        let (l1, t1, p1, g1) = levels[i + 1];
        if g0 || g1 || l1 <= l0 || l0 <= 0.0 || t0 <= 0.0 || p0 <= 0.0 {
            continue;
        }
        let throughput_growth = t1 / t0 - 1.0;
        let latency_growth = p1 / p0 - 1.0;
        if throughput_growth < 0.10 && latency_growth > 0.10 {
            return Some((
                i,
                format!(
                    "from {l0} to {l1}: throughput {:+.0} % ({t0:.0}/s → {t1:.0}/s) while p99 \
                     {:+.0} % ({:.2} ms → {:.2} ms)",
                    throughput_growth * 100.0,
                    latency_growth * 100.0,
                    p0 / 1000.0,
                    p1 / 1000.0
                ),
            ));
        }
    }
    None
}

/// What one run of the search found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The SLO and the error rate held.
    pub passed: bool,
    /// Successes per second.
    pub throughput: f64,
    /// The generator, not the target, was the limit.
    pub generator_limited: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Probe,
    Bisect,
    Confirm,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Probe => "probe",
            Phase::Bisect => "bisect",
            Phase::Confirm => "confirm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// First rate probed, requests per second.
    pub start: f64,
    /// Lowest and highest rates the generator may be asked for.
    pub min: f64,
    pub max: f64,
    /// Bisection stops when the bracket is this narrow, relative to its low end.
    pub resolution: f64,
    /// Confirmation runs at the answer, and how close their throughputs must be.
    pub confirmations: usize,
    pub agree: f64,
    /// Times the answer may be lowered after a failed confirmation.
    pub retries: usize,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            start: 100.0,
            min: 0.001,
            max: 10_000_000.0,
            resolution: 0.05,
            confirmations: 2,
            agree: 0.05,
            retries: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Highest rate that passed, confirmations included (0 when none did).
    pub max_rate: f64,
    /// Lowest rate that failed.
    pub failed_rate: Option<f64>,
    /// Whether the confirmations passed and agreed.
    pub confirmed: bool,
    /// A step where the generator was the limit: the search bracketed the generator's
    /// ceiling instead of the target's capacity.
    pub generator_limited: bool,
    /// Lowest rate at which the generator was the limit.
    pub generator_limit_rate: Option<f64>,
    /// Why the search ended before it was done (the budget, an interrupted run).
    pub cut_short: Option<String>,
    pub steps: Vec<(Phase, f64, Outcome)>,
}

/// The search: an exponential probe (doubling from `plan.start`, halving when that fails),
/// bisection to within `plan.resolution`, then `plan.confirmations` runs at the answer that
/// must pass and agree; a failed confirmation lowers the answer by the resolution and
/// confirms again. `run` performs one step, or returns Err(why) when no step may run (the
/// budget is spent, the run was interrupted).
pub fn search(plan: &Plan, mut run: impl FnMut(Phase, f64) -> Result<Outcome, String>) -> Found {
    let mut found = Found {
        max_rate: 0.0,
        failed_rate: None,
        confirmed: false,
        generator_limited: false,
        generator_limit_rate: None,
        cut_short: None,
        steps: Vec::new(),
    };
    let mut lo = 0.0f64;
    // The lowest rate the target failed, and the lowest the generator could not offer.
    let mut hi: Option<f64> = None;
    let mut glim: Option<f64> = None;
    let upper = |hi: Option<f64>, glim: Option<f64>| match (hi, glim) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    macro_rules! step {
        ($phase:expr, $rate:expr) => {{
            let rate = $rate;
            match run($phase, rate) {
                Ok(o) => {
                    found.steps.push(($phase, rate, o));
                    if o.generator_limited {
                        found.generator_limited = true;
                        glim = Some(glim.map_or(rate, |g: f64| g.min(rate)));
                    }
                    o
                }
                Err(why) => {
                    found.cut_short = Some(why);
                    found.max_rate = lo;
                    found.failed_rate = hi;
                    found.generator_limit_rate = glim;
                    return found;
                }
            }
        }};
    }
    // Probe. A rate the generator could not offer bounds the search from above as a failure
    // does, but is not the target's: what passes below it is the answer.
    let mut rate = plan.start.clamp(plan.min, plan.max);
    loop {
        let o = step!(Phase::Probe, rate);
        if o.passed && !o.generator_limited {
            lo = rate;
            if rate >= plan.max || upper(hi, glim).is_some() {
                break;
            }
            rate = (rate * 2.0).min(plan.max);
        } else {
            if !o.generator_limited {
                hi = Some(rate);
            }
            if lo > 0.0 {
                break;
            }
            if rate / 2.0 < plan.min {
                found.failed_rate = hi;
                found.generator_limit_rate = glim;
                return found;
            }
            rate /= 2.0;
        }
    }
    // Bisect, between what passed and the lower of the target's failure and the generator's
    // limit.
    while let Some(h) = upper(hi, glim) {
        if h - lo <= plan.resolution * lo {
            break;
        }
        let mid = (lo + h) / 2.0;
        let o = step!(Phase::Bisect, mid);
        if o.generator_limited {
            continue;
        }
        if o.passed {
            lo = mid;
        } else {
            hi = Some(mid);
        }
    }
    // Confirm.
    for round in 0..=plan.retries {
        // Nothing passed: nothing to confirm.
        if lo <= 0.0 {
            break;
        }
        let mut throughputs = Vec::new();
        let mut all_passed = true;
        let mut limited = false;
        for _ in 0..plan.confirmations {
            let o = step!(Phase::Confirm, lo);
            if o.generator_limited || !o.passed {
                all_passed = false;
                limited = o.generator_limited;
                break;
            }
            throughputs.push(o.throughput);
        }
        if limited {
            break;
        }
        if all_passed {
            let (min, max) = throughputs
                .iter()
                .fold((f64::MAX, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
            found.confirmed = throughputs.is_empty() || max - min <= plan.agree * max;
            break;
        }
        hi = Some(lo);
        if round == plan.retries {
            // Out of confirmations: the answer is the highest rate a step passed below the
            // one that just failed (unconfirmed), never a rate no step ran.
            lo = found
                .steps
                .iter()
                .filter(|(_, r, o)| o.passed && !o.generator_limited && *r < lo)
                .map(|(_, r, _)| *r)
                .fold(0.0, f64::max);
            break;
        }
        lo *= 1.0 - plan.resolution;
        if lo < plan.min {
            lo = 0.0;
            break;
        }
    }
    found.max_rate = lo;
    found.failed_rate = hi;
    found.generator_limit_rate = glim;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target that meets the SLO up to `capacity` requests per second.
    fn server(capacity: f64) -> impl FnMut(Phase, f64) -> Result<Outcome, String> {
        move |_, rate| {
            Ok(Outcome {
                passed: rate <= capacity,
                throughput: rate.min(capacity),
                generator_limited: false,
            })
        }
    }

    #[test]
    fn finds_a_known_capacity_within_the_resolution() {
        for capacity in [400.0, 37.0, 1234.5, 100.0, 99_999.0] {
            let found = search(&Plan::default(), server(capacity));
            assert!(
                found.max_rate <= capacity && found.max_rate >= capacity * 0.95,
                "{capacity}: {found:?}"
            );
            assert!(found.confirmed, "{capacity}");
            let confirms = found
                .steps
                .iter()
                .filter(|(p, ..)| *p == Phase::Confirm)
                .count();
            assert_eq!(confirms, 2, "{capacity}");
            assert!(
                found.failed_rate.unwrap() <= found.max_rate * 1.05 + 1e-9,
                "{found:?}"
            );
        }
    }

    #[test]
    fn probes_double_then_bisect_then_confirm() {
        let found = search(&Plan::default(), server(400.0));
        let phases: Vec<&str> = found.steps.iter().map(|(p, ..)| p.name()).collect();
        assert_eq!(&phases[..4], ["probe", "probe", "probe", "probe"]);
        let rates: Vec<f64> = found.steps.iter().map(|(_, r, _)| *r).collect();
        assert_eq!(&rates[..4], [100.0, 200.0, 400.0, 800.0]);
        assert_eq!(phases[4], "bisect");
        assert_eq!(&phases[phases.len() - 2..], ["confirm", "confirm"]);
    }

    #[test]
    fn a_failing_start_probes_downwards() {
        let found = search(&Plan::default(), server(30.0));
        assert!((28.5..=30.0).contains(&found.max_rate), "{found:?}");
        assert_eq!(found.steps[1].1, 50.0);
    }

    #[test]
    fn nothing_passes() {
        let found = search(&Plan::default(), server(0.0));
        assert_eq!(found.max_rate, 0.0);
        assert!(!found.confirmed);
        assert!(found.steps.len() < 40, "halving stops at the lowest rate");
    }

    #[test]
    fn the_generators_limit_is_never_the_targets_capacity() {
        // The target could take 5,000/s, the generator only 800/s.
        let found = search(&Plan::default(), |_, rate| {
            Ok(Outcome {
                passed: true,
                throughput: rate.min(800.0),
                generator_limited: rate > 800.0,
            })
        });
        assert!(found.generator_limited);
        assert_eq!(
            found.max_rate, 800.0,
            "what passed below the generator's limit"
        );
        assert!(found.failed_rate.is_none(), "no step failed the target");
        let limit = found.generator_limit_rate.expect("the generator's limit");
        assert!(
            limit > 800.0 && limit <= 800.0 * 1.05,
            "the generator's ceiling bracketed to 5 %: {found:?}"
        );
        assert!(found.confirmed, "confirmed at 800/s: {found:?}");
        assert!(
            found
                .steps
                .iter()
                .all(|(_, rate, o)| o.generator_limited == (*rate > 800.0)),
            "{found:?}"
        );
    }

    #[test]
    fn confirmations_that_keep_failing_leave_a_rate_that_passed_unconfirmed() {
        // Below 400 the target passes single runs, but never two confirmations in a row.
        let mut confirms = 0;
        let found = search(&Plan::default(), |phase, rate| {
            let passed = if phase == Phase::Confirm {
                confirms += 1;
                false
            } else {
                rate <= 400.0
            };
            Ok(Outcome {
                passed,
                throughput: rate.min(400.0),
                generator_limited: false,
            })
        });
        assert!(!found.confirmed, "{found:?}");
        assert_eq!(confirms, Plan::default().retries + 1);
        let ran_and_passed = found
            .steps
            .iter()
            .any(|(_, r, o)| *r == found.max_rate && o.passed);
        assert!(ran_and_passed, "an answer no step passed: {found:?}");
        assert!(found.max_rate < found.failed_rate.unwrap(), "{found:?}");
    }

    #[test]
    fn a_generator_limit_below_the_start_probes_downwards() {
        let found = search(&Plan::default(), |_, rate| {
            Ok(Outcome {
                passed: rate <= 30.0,
                throughput: rate.min(30.0),
                generator_limited: rate > 30.0,
            })
        });
        assert!(
            found.max_rate <= 30.0 && found.max_rate >= 30.0 * 0.95,
            "{found:?}"
        );
        assert!(found.generator_limit_rate.is_some_and(|g| g > 30.0));
        assert!(found.failed_rate.is_none(), "{found:?}");
    }

    #[test]
    fn a_failed_confirmation_lowers_the_answer() {
        // Noisy around 400: the first confirmation at the bisected answer fails once.
        let mut confirms = 0;
        let found = search(&Plan::default(), |phase, rate| {
            let mut passed = rate <= 400.0;
            if phase == Phase::Confirm {
                confirms += 1;
                if confirms == 1 {
                    passed = false;
                }
            }
            Ok(Outcome {
                passed,
                throughput: rate,
                generator_limited: false,
            })
        });
        assert!(found.confirmed, "{found:?}");
        assert!(found.max_rate < 400.0 * 0.95 + 1e-9, "{found:?}");
    }

    #[test]
    fn disagreeing_confirmations_are_not_confirmed() {
        let mut n = 0;
        let found = search(&Plan::default(), |phase, rate| {
            n += 1;
            let throughput = if phase == Phase::Confirm && n % 2 == 0 {
                rate * 0.8
            } else {
                rate
            };
            Ok(Outcome {
                passed: rate <= 400.0,
                throughput,
                generator_limited: false,
            })
        });
        assert!(!found.confirmed, "{found:?}");
    }

    #[test]
    fn a_spent_budget_ends_the_search_with_what_it_knows() {
        let mut left = 5;
        let found = search(&Plan::default(), |_, rate| {
            if left == 0 {
                return Err("the budget is spent".into());
            }
            left -= 1;
            Ok(Outcome {
                passed: rate <= 400.0,
                throughput: rate,
                generator_limited: false,
            })
        });
        assert_eq!(found.cut_short.as_deref(), Some("the budget is spent"));
        assert_eq!(found.steps.len(), 5);
        assert!(
            found.max_rate >= 200.0 && found.max_rate <= 400.0,
            "{found:?}"
        );
        assert!(!found.confirmed);
    }

    /// (level, throughput, p99 µs, generator limited) per level.
    type Levels = Vec<(f64, f64, f64, bool)>;

    #[test]
    fn knee_table() {
        // (name, levels (level, throughput, p99 µs, generator limited), knee index)
        let cases: Vec<(&str, Levels, Option<usize>)> = vec![
            (
                "flattens at 50",
                vec![
                    (1.0, 100.0, 1000.0, false),
                    (10.0, 900.0, 1100.0, false),
                    (50.0, 4000.0, 1500.0, false),
                    (100.0, 4100.0, 3000.0, false),
                    (500.0, 4000.0, 15000.0, false),
                ],
                Some(2),
            ),
            (
                "a tenfold load for twice the throughput is still growing",
                vec![
                    (1.0, 1492.0, 1490.0, false),
                    (10.0, 3185.0, 7400.0, false),
                    (50.0, 3192.0, 32340.0, false),
                ],
                Some(1),
            ),
            (
                "keeps growing",
                vec![(1.0, 100.0, 1000.0, false), (10.0, 950.0, 1000.0, false)],
                None,
            ),
            (
                "flat throughput but flat latency is no knee",
                vec![(10.0, 1000.0, 1000.0, false), (20.0, 1010.0, 1020.0, false)],
                None,
            ),
            (
                "a level the generator limited is skipped",
                vec![
                    (10.0, 1000.0, 1000.0, false),
                    (20.0, 1010.0, 5000.0, true),
                    (40.0, 1020.0, 9000.0, false),
                ],
                None,
            ),
            ("one level", vec![(10.0, 1000.0, 1000.0, false)], None),
            ("none", vec![], None),
            (
                "nothing measured",
                vec![(10.0, 0.0, 0.0, false), (20.0, 0.0, 0.0, false)],
                None,
            ),
        ];
        for (name, levels, expected) in cases {
            assert_eq!(knee(&levels).map(|k| k.0), expected, "{name}");
        }
    }
}
