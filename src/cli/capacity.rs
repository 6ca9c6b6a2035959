//! `capacity`: the highest open-model rate at which an SLO holds (`gate::search` decides
//! each next step; this file runs them within the budget and records every one).

use super::args::CapacityArgs;
use super::load::{prepare, scenario_for};
use super::sweep::finish;
use crate::exit;
use crate::gate::judge;
use crate::gate::search::{self, Outcome, Plan};
use crate::load::bounds;
use crate::load::run::run_scenario;
use crate::load::scenario::Length;
use crate::results::names::TOTALS;
use crate::results::targets::Target;
use crate::results::{Capacity, CapacityStep, Results};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A step passes only if its throughput reached this share of the offered rate.
pub const KEPT_UP: f64 = 0.9;

/// The fraction of the highest passing rate to plan with.
pub const SUSTAINABLE_FRACTION: f64 = 0.8;

/// "p99<=10ms" as a totals target.
pub fn parse_slo(slo: &str) -> Result<Target, String> {
    let at = slo
        .find(['<', '>', '='])
        .ok_or_else(|| format!("--slo {slo:?}: write FIGURE<=LIMIT, e.g. \"p99<=10ms\""))?;
    let (figure, rest) = slo.split_at(at);
    Target::parse(&format!("totals.{}", figure.trim()), rest.trim())
        .map_err(|e| format!("--slo {slo:?}: {e}"))
}

pub fn capacity(args: &CapacityArgs) -> anyhow::Result<ExitCode> {
    let usage = |m: String| exit::usage(anyhow::anyhow!(m));
    let slo = parse_slo(&args.slo).map_err(usage)?;
    let max_errors = Target::parse("totals.error_rate", &format!("<= {}", args.max_error_rate))
        .map_err(|e| usage(format!("--max-error-rate {}: {e}", args.max_error_rate)))?;
    bounds::GATE_ERROR_RATE
        .check(max_errors.value.max(f64::MIN_POSITIVE))
        .map_err(|e| usage(format!("--max-error-rate {}: {e}", args.max_error_rate)))?;
    let step_length = args.search.duration.unwrap_or(Duration::from_secs(5));
    let base = {
        let mut s = scenario_for(&args.search.common(None, Some(1.0)), "capacity", "stress")?;
        s.length = Some(Length::Duration(step_length));
        // Each step is judged on the SLO and the error rate alone (the scenario's own
        // targets, e.g. a throughput objective, say nothing about this search).
        s.targets.clear();
        s
    };
    // The cap and the budget of connections are checked once, for any rate.
    let opts = prepare(
        std::slice::from_ref(&base),
        &args.search.common(None, Some(1.0)),
        false,
    )?;
    let local_target = is_local(args.search.target.as_deref());
    let started = Instant::now();
    let budget = args.budget;
    let mut longest = step_length + base.warmup + Duration::from_secs(3);
    let mut steps: Vec<CapacityStep> = Vec::new();
    let mut last: Option<Results> = None;
    let plan = Plan {
        start: args.start_rate.unwrap_or(100.0),
        min: bounds::RATE.min,
        max: bounds::RATE.max,
        ..Plan::default()
    };
    let found = search::search(&plan, |phase, rate| {
        if started.elapsed() + longest > budget {
            return Err(format!(
                "the budget ({budget:?}) would be spent before another step of about \
                 {longest:?}"
            ));
        }
        let mut s = base.clone();
        s.apply_flags(&args.search.common(None, Some(rate)).load_flags())
            .map_err(|e| e.to_string())?;
        let began = Instant::now();
        eprintln!("capacity: {} at {rate:.1}/s ...", phase.name());
        let mut results = run_scenario(&s, &opts).map_err(|e| format!("{e:#}"))?;
        longest = longest.max(began.elapsed());
        judge::judge(&[slo.clone(), max_errors.clone()], &mut results);
        if let Some(why) = &results.aborted {
            let why = format!("a step was aborted: {why}");
            last = Some(results);
            return Err(why);
        }
        let slo_passed = results.targets.first().is_some_and(|t| t.passed);
        let slo_measured = slo.figure.measure(&results.totals);
        // The SLO and the error rate held, and the target kept up with the offered rate
        // (a queue that grows for the whole step may not have reached the SLO yet).
        let kept_up = results.totals.throughput >= KEPT_UP * rate;
        let passed = results.targets.iter().all(|t| t.passed) && kept_up;
        let generator_limited = results.generator.as_ref().is_some_and(|g| {
            let from_send = results
                .service_time_us
                .get(TOTALS)
                .and_then(|service| slo.figure.of_latency(service));
            let step = Step {
                measured: slo_measured,
                from_send,
                slo_passed,
                passed,
                shares: cpu_shares(g, results.machine.as_ref(), local_target),
            };
            limits_the_step(g, &slo, &step)
        });
        let measured = results
            .targets
            .first()
            .map(|t| t.measured)
            .filter(|m| m.is_finite())
            .unwrap_or(0.0);
        let step = CapacityStep {
            phase: phase.name().into(),
            rate,
            throughput: results.totals.throughput,
            measured,
            error_rate_pct: results.totals.error_rate(),
            passed,
            generator_limited,
            generator: results.generator.clone(),
            machine: results.machine,
        };
        eprintln!(
            "  {} {} {}{}: {:.0} ok/s{}",
            slo.figure.name(),
            measured,
            results.targets.first().map_or("", |t| t.unit.as_str()),
            if generator_limited {
                " (limited by the generator)"
            } else if passed {
                " PASS"
            } else {
                " FAIL"
            },
            step.throughput,
            if kept_up {
                ""
            } else {
                " (did not keep up with the offered rate)"
            }
        );
        steps.push(step);
        last = Some(results);
        Ok(Outcome {
            passed,
            throughput: results_throughput(&steps),
            generator_limited,
        })
    });
    let Some(mut results) = last else {
        return Err(exit::aborted(anyhow::anyhow!(
            "the capacity search ran no step: {}",
            found.cut_short.unwrap_or_default()
        )));
    };
    let bracket = match found.failed_rate {
        Some(hi) if found.max_rate > 0.0 => format!(
            "between {:.1}/s (passed) and {hi:.1}/s (failed), {:.1} % apart",
            found.max_rate,
            (hi / found.max_rate - 1.0) * 100.0
        ),
        Some(hi) => format!("no rate passed; the lowest that failed was {hi:.1}/s"),
        None if found.max_rate > 0.0 => {
            format!("{:.1}/s passed and no higher rate failed", found.max_rate)
        }
        None => "no step passed".to_string(),
    };
    let mut confidence = format!(
        "{bracket}; {}",
        if found.confirmed {
            "confirmed by 2 runs agreeing within 5 %"
        } else {
            "not confirmed"
        }
    );
    if let Some(limit) = found.generator_limit_rate {
        let step = steps
            .iter()
            .find(|s| s.generator_limited && s.rate == limit);
        let cause = step
            .and_then(|s| s.generator.as_ref())
            .and_then(|g| g.cause.clone());
        // Late sends from a generator that used more CPU than the target are its own
        // ceiling; from one that used less, the cores it shared with the target.
        let larger_user = step
            .and_then(|s| cpu_shares(s.generator.as_ref()?, s.machine.as_ref(), local_target))
            .is_some_and(|(gen, target)| gen >= target);
        let what = match cause.as_deref() {
            Some("late_sends") if !larger_user => {
                "its sends went out late enough to decide the SLO (generator and target \
                 share this machine's cores: run the generator elsewhere to measure past it)"
            }
            Some("in_flight_cap") => "its in-flight cap was reached (raise --max-in-flight)",
            _ => "that is this generator's own ceiling on this machine",
        };
        confidence.push_str(&format!(
            "; at {limit:.1}/s the generator, not the target, was the limit: {what}; the \
             target can take at least {:.1}/s (see the steps' generator evidence)",
            found.max_rate
        ));
    }
    if let Some(why) = &found.cut_short {
        confidence.push_str(&format!("; cut short: {why}"));
    }
    let aborted = results.aborted.is_some();
    // An answer the generator bounded is this generator's ceiling, not the target's
    // capacity: inconclusive, as an unconfirmed one is.
    // An unconfirmed answer (cut short, or confirmations that kept failing) is inconclusive.
    results.exit_code = if aborted
        || (found.max_rate > 0.0 && !found.confirmed)
        || (found.cut_short.is_some() && !found.confirmed)
        || found.generator_limited
    {
        exit::ABORTED
    } else if found.max_rate <= 0.0 {
        exit::FAILED
    } else {
        exit::OK
    };
    results.capacity = Some(Capacity {
        max_rate: found.max_rate,
        sustainable_rate: found.max_rate * SUSTAINABLE_FRACTION,
        sustainable_fraction: SUSTAINABLE_FRACTION,
        slo: args.slo.clone(),
        max_error_rate_pct: max_errors.value,
        failed_rate: found.failed_rate,
        confidence,
        generator_limited: found.generator_limited,
        generator_limit_rate: found.generator_limit_rate,
        steps,
        elapsed_s: started.elapsed().as_secs_f64(),
        budget_s: budget.as_secs_f64(),
    });
    finish(&results, &args.search.out, args.search.format, "capacity")
}

/// What one capacity step measured that decides whether the generator limited it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The SLO's figure from the intended send (the step's verdict), and from the actual
    /// send (service time; open model), microseconds for a latency.
    pub measured: f64,
    pub from_send: Option<f64>,
    pub slo_passed: bool,
    /// The SLO, the error rate and the offered rate all held.
    pub passed: bool,
    /// (generator, target) CPU, percent of all cores, when known.
    pub shares: Option<(f64, f64)>,
}

/// The generator's CPU and the target's: the bundled monitor's, or else, for a target on
/// this machine (`local`), every other process's; None for a target elsewhere (its CPU is
/// not this machine's to measure).
pub fn cpu_shares(
    g: &crate::results::GeneratorCheck,
    machine: Option<&crate::results::MachineLoad>,
    local: bool,
) -> Option<(f64, f64)> {
    let m = machine?;
    match m.monitor_cpu_pct {
        Some(monitor) => Some((g.cpu_pct, monitor)),
        None if local => Some((g.cpu_pct, m.other_cpu_pct)),
        None => None,
    }
}

/// Whether `--target` names this machine (a loopback address or `localhost`); no target is
/// the bundled monitor, here too.
pub fn is_local(target: Option<&str>) -> bool {
    let Some(url) = target else { return true };
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the generator's limit could have decided a step's verdict. A step that passed
/// stands whatever the generator did: it offered the rate (the step kept up) and latency
/// counts from the intended send, so the generator's delays only made the figure worse. A
/// failed step failed on the generator when its in-flight cap, its CPU or a saturated
/// machine it was the larger user of was the limit; the cap, only when the requests it let
/// through met the SLO from their actual send (a target slow enough to fill any cap failed on
/// its own). Late sends decide a failed step only
/// when they are a sizeable part of a latency SLO (their p99 over a quarter of it) and
/// either the SLO held but the rate was not sent, or the generator used more CPU than the
/// target (the target answers faster than the generator can send and read), or the figure
/// measured from the actual sends met the SLO (without a service time: the figure less the
/// lateness did). A step that failed by far more than its lateness failed on the target.
pub fn limits_the_step(g: &crate::results::GeneratorCheck, slo: &Target, step: &Step) -> bool {
    if !g.limited || step.passed {
        return false;
    }
    let late_p99_us = g.send_lateness_us.as_ref().map_or(0.0, |l| l.p99);
    match g.cause.as_deref() {
        Some("late_sends") if slo.figure.is_latency() => {
            if late_p99_us <= 0.25 * slo.value {
                return false;
            }
            let larger_user = step.shares.is_some_and(|(gen, target)| gen >= target);
            let met_from_send = match step.from_send {
                Some(v) => slo.cmp.holds(v, slo.value),
                None => step.measured - late_p99_us <= slo.value,
            };
            step.slo_passed || larger_user || met_from_send
        }
        // The cap reached by a target too slow for the offered rate is the target's failure:
        // even the requests sent missed the SLO measured from their actual send.
        Some("in_flight_cap") if slo.figure.is_latency() => {
            step.from_send.is_none_or(|v| slo.cmp.holds(v, slo.value))
        }
        _ => true,
    }
}

fn results_throughput(steps: &[CapacityStep]) -> f64 {
    steps.last().map_or(0.0, |s| s.throughput)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::evidence::{judge, Observed};

    #[test]
    fn only_loopback_targets_are_this_machines() {
        for (target, local) in [
            (None, true),
            (Some("http://127.0.0.1:9000"), true),
            (Some("http://127.3.4.5"), true),
            (Some("http://localhost:80/base"), true),
            (Some("http://[::1]:9000"), true),
            (Some("http://10.0.0.7:9000"), false),
            (Some("https://example.com"), false),
            (Some("not a url"), false),
        ] {
            assert_eq!(is_local(target), local, "{target:?}");
        }
        // A target elsewhere has no CPU share here: its late sends are judged on the
        // figure from the actual send alone.
        let g = crate::results::GeneratorCheck {
            cpu_pct: 40.0,
            cpu_ceiling_pct: 100.0,
            send_lateness_us: None,
            littles_law: crate::results::LittlesLaw {
                in_flight: 1.0,
                expected: 1.0,
                allowed: 10.0,
            },
            limited: true,
            cause: Some("late_sends".into()),
            reasons: vec![],
        };
        let m = crate::results::MachineLoad {
            other_cpu_pct: 1.0,
            steal_pct: 0.0,
            load_avg_1m: 1.0,
            idle_pct: Some(50.0),
            monitor_cpu_pct: None,
        };
        assert_eq!(cpu_shares(&g, Some(&m), true), Some((40.0, 1.0)));
        assert_eq!(cpu_shares(&g, Some(&m), false), None);
        let bundled = crate::results::MachineLoad {
            monitor_cpu_pct: Some(60.0),
            ..m
        };
        assert_eq!(cpu_shares(&g, Some(&bundled), false), Some((40.0, 60.0)));
    }

    #[test]
    fn slos_parse_or_say_how_to_write_them() {
        let t = parse_slo("p99<=10ms").unwrap();
        assert_eq!(t.value, 10_000.0);
        assert_eq!(parse_slo(" p50 < 2ms ").unwrap().value, 2_000.0);
        assert!(parse_slo("p99").unwrap_err().contains("FIGURE<=LIMIT"));
        assert!(parse_slo("p42<=1ms").is_err());
        assert!(parse_slo("p99<=fast").is_err());
    }

    #[test]
    fn late_sends_limit_a_step_only_when_they_could_decide_the_slo() {
        let late = |p99_us: f64| {
            let mut g = judge(&Observed {
                open: true,
                cpu_pct: 5.0,
                threads: 2,
                cores: 2,
                lateness_p99_us: Some(p99_us),
                in_flight: 1.0,
                throughput: 100.0,
                mean_latency_s: 0.01,
                allowed: 10_000.0,
                cap_from_user: false,
                other_cpu_pct: Some(50.0),
                idle_pct: None,
                monitor_cpu_pct: None,
            });
            g.send_lateness_us = Some(crate::metrics::LatencySummary {
                p99: p99_us,
                ..Default::default()
            });
            g
        };
        let slo = parse_slo("p99<=100ms").unwrap();
        assert_eq!(late(17_000.0).cause.as_deref(), Some("late_sends"));
        let step = |measured: f64, from_send: Option<f64>, slo_passed: bool, passed: bool| Step {
            measured,
            from_send,
            slo_passed,
            passed,
            // The bundled monitor used more CPU than the generator.
            shares: Some((15.0, 60.0)),
        };
        // (case, lateness p99 µs, step, limited)
        let cases = [
            (
                "17 ms of a 100 ms SLO: small",
                17_000.0,
                step(110_000.0, None, false, false),
                false,
            ),
            (
                "40 ms: without it, 70 ms would pass",
                40_000.0,
                step(110_000.0, None, false, false),
                true,
            ),
            (
                "failed by far more: the target's",
                40_000.0,
                step(3_800_000.0, None, false, false),
                false,
            ),
            (
                "a pass stands: lateness is in it",
                40_000.0,
                step(90_000.0, None, false, true),
                false,
            ),
            (
                "the SLO held, the rate was not sent",
                40_000.0,
                step(90_000.0, None, true, false),
                true,
            ),
            (
                "from the actual send it met the SLO",
                40_000.0,
                step(150_000.0, Some(95_000.0), false, false),
                true,
            ),
            (
                "from the actual send it failed too",
                40_000.0,
                step(130_000.0, Some(101_000.0), false, false),
                false,
            ),
            (
                "not limited at all",
                100.0,
                step(110_000.0, None, false, false),
                false,
            ),
        ];
        for (case, lateness, s, limited) in cases {
            assert_eq!(
                limits_the_step(&late(lateness), &slo, &s),
                limited,
                "{case}"
            );
        }
        // A target that answers at once and a generator that cannot keep up (serve --null):
        // the generator was the larger user, so its late sends are its own limit.
        let null = Step {
            shares: Some((46.0, 10.0)),
            ..step(3_800_000.0, Some(3_000_000.0), false, false)
        };
        assert!(limits_the_step(&late(40_000.0), &slo, &null));
        // The in-flight cap filled by a target that missed the SLO even from the actual send
        // (a queue of 10,000 behind 17,000/s of 25,600/s offered) is the target's failure.
        let cap = crate::results::GeneratorCheck {
            cause: Some("in_flight_cap".into()),
            ..late(40_000.0)
        };
        assert!(!limits_the_step(
            &cap,
            &slo,
            &step(2_900_000.0, Some(600_000.0), false, false)
        ));
        assert!(limits_the_step(
            &cap,
            &slo,
            &step(2_900_000.0, Some(60_000.0), false, false)
        ));
        for cause in ["in_flight_cap", "cpu", "machine"] {
            let check = crate::results::GeneratorCheck {
                cause: Some(cause.into()),
                ..late(40_000.0)
            };
            assert!(
                limits_the_step(&check, &slo, &step(3_800_000.0, None, false, false)),
                "{cause}: a failed step, whatever it measured"
            );
            assert!(
                !limits_the_step(&check, &slo, &step(90_000.0, None, true, true)),
                "{cause}: a pass stands"
            );
        }
    }
}
