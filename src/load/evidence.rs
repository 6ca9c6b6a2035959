//! Whether the generator, rather than the target, limited a run: its CPU use, how late its
//! sends went out, and a Little's-law check, judged together so that the advice names the
//! cause (a cap the user set, the generator's own CPU, other work on the machine).

use crate::results::{GeneratorCheck, LittlesLaw};

/// What a run measured about its own generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// Open model (rates) or closed (workers).
    pub open: bool,
    /// Generator CPU over the load, percent of all cores' time.
    pub cpu_pct: f64,
    pub threads: usize,
    pub cores: usize,
    /// Open model: p99 of intended → actual send, microseconds.
    pub lateness_p99_us: Option<f64>,
    /// Mean requests in flight, sampled.
    pub in_flight: f64,
    /// All requests (failed ones too) per second, and their mean latency, seconds.
    pub throughput: f64,
    pub mean_latency_s: f64,
    /// Workers running (mean, closed model) or the in-flight cap (open model).
    pub allowed: f64,
    /// Whether the open model's cap was set by the user (`--max-in-flight`, `load.concurrency`).
    pub cap_from_user: bool,
    /// Other work on the machine, percent of all cores' time, when known (a `--target` on
    /// this machine counts here).
    pub other_cpu_pct: Option<f64>,
    /// Time no core had anything to run, percent of all cores' time, when known.
    pub idle_pct: Option<f64>,
    /// The bundled monitor's CPU, percent of all cores' time (None with `--target`).
    pub monitor_cpu_pct: Option<f64>,
}

/// Send lateness past which the open model did not offer its schedule on time.
pub const LATE_P99_US: f64 = 2_000.0;
/// Generator CPU past this share of its ceiling is a saturated generator.
pub const CPU_SATURATED: f64 = 0.9;
/// Closed model: workers in requests less than this share of the time were held back.
pub const WORKERS_BUSY: f64 = 0.8;
/// Open model: in flight at this share of the cap means the cap limited the rate.
pub const CAP_REACHED: f64 = 0.9;
/// A machine with less idle time than this, percent of all cores' time, was saturated.
pub const MACHINE_IDLE_PCT: f64 = 10.0;

/// A saturated machine on which the generator was the larger user of CPU: generator and
/// target shared the cores, so the generator's share bounded the target's. The target's
/// share is the bundled monitor's CPU, or else all other processes' (a `--target` on this
/// machine is among them; one elsewhere is not, and then the generator is the larger user).
fn machine_saturated_by_generator(o: &Observed) -> Option<String> {
    let idle = o.idle_pct?;
    if idle >= MACHINE_IDLE_PCT {
        return None;
    }
    let (target, who) = match o.monitor_cpu_pct {
        Some(m) => (m, "the bundled monitor"),
        None => (
            o.other_cpu_pct.unwrap_or(0.0),
            "the target and other processes",
        ),
    };
    (o.cpu_pct >= target).then(|| {
        format!(
            "the machine was saturated (idle {idle:.0} %) and the generator used more of it \
             ({:.0} %) than {who} ({target:.0} %): on shared cores the generator's share \
             bounded the target's, so this is the machine's ceiling with this generator, not \
             the target's; run the target on another machine",
            o.cpu_pct
        )
    })
}

pub fn judge(o: &Observed) -> GeneratorCheck {
    let ceiling = (o.threads.min(o.cores) as f64 / o.cores.max(1) as f64) * 100.0;
    let expected = o.throughput * o.mean_latency_s;
    let mut reasons = Vec::new();
    let mut cause = None;
    let cpu_saturated = o.cpu_pct >= CPU_SATURATED * ceiling;
    let cpu_advice = || {
        if o.threads < o.cores {
            format!(
                "the generator used {:.0} % of the machine's CPU, all that its {} thread(s) \
                 can use on {} cores: raise --threads",
                o.cpu_pct, o.threads, o.cores
            )
        } else {
            format!(
                "the generator used {:.0} % of the machine's CPU ({} threads on {} cores): it \
                 was saturated itself; run it on another machine than the target, or lower \
                 the load",
                o.cpu_pct, o.threads, o.cores
            )
        }
    };
    if o.open {
        let cap_reached = o.allowed > 0.0 && o.in_flight >= CAP_REACHED * o.allowed;
        let late = o.lateness_p99_us.is_some_and(|l| l > LATE_P99_US);
        if cap_reached {
            let who = if o.cap_from_user {
                "--max-in-flight (or load.concurrency)"
            } else {
                "the default in-flight cap"
            };
            cause = Some("in_flight_cap");
            reasons.push(format!(
                "requests waited for one of the {:.0} in-flight slots ({who}): the cap, not \
                 the target, bounded the offered rate; raise it (throughput × latency asks \
                 for about {expected:.0} in flight)",
                o.allowed
            ));
        } else if late && cpu_saturated {
            cause = Some("cpu");
            reasons.push(format!(
                "sends went out late (p99 {:.1} ms after they were due): {}",
                o.lateness_p99_us.unwrap_or(0.0) / 1000.0,
                cpu_advice()
            ));
        } else if let Some(why) = machine_saturated_by_generator(o) {
            cause = Some("machine");
            reasons.push(why);
        } else if late {
            let why = match o.other_cpu_pct {
                Some(other) if other >= 10.0 => format!(
                    "other work took {other:.0} % of the machine's CPU meanwhile; run on a \
                     quieter machine"
                ),
                _ => format!(
                    "with its CPU at {:.0} %, the generator's threads were kept from running \
                     (the target on the same cores, or the scheduler); run the target \
                     elsewhere or lower --rate",
                    o.cpu_pct
                ),
            };
            cause = Some("late_sends");
            reasons.push(format!(
                "sends went out late (p99 {:.1} ms after they were due): {why}",
                o.lateness_p99_us.unwrap_or(0.0) / 1000.0
            ));
        } else if cpu_saturated {
            cause = Some("cpu");
            reasons.push(cpu_advice());
        }
    } else {
        let busy = if o.allowed > 0.0 {
            o.in_flight / o.allowed
        } else {
            1.0
        };
        if busy < WORKERS_BUSY && cpu_saturated {
            cause = Some("cpu");
            reasons.push(format!(
                "workers were in requests only {:.0} % of the time: {}",
                busy * 100.0,
                cpu_advice()
            ));
        } else if let Some(why) = machine_saturated_by_generator(o) {
            cause = Some("machine");
            reasons.push(why);
        } else if busy < WORKERS_BUSY {
            cause = Some("idle_workers");
            reasons.push(format!(
                "workers were in requests only {:.0} % of the time, with the generator's CPU \
                 at {:.0} %: the time between their requests was the generator's (its threads \
                 waiting to run); run the target elsewhere",
                busy * 100.0,
                o.cpu_pct
            ));
        } else if cpu_saturated {
            cause = Some("cpu");
            reasons.push(cpu_advice());
        }
    }
    GeneratorCheck {
        cpu_pct: o.cpu_pct,
        cpu_ceiling_pct: ceiling,
        send_lateness_us: None,
        littles_law: LittlesLaw {
            in_flight: o.in_flight,
            expected,
            allowed: o.allowed,
        },
        limited: !reasons.is_empty(),
        cause: cause.map(str::to_string),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open-model run that nothing limited: 1,000/s at 1 ms, 1 in flight of 1,000.
    fn healthy_open() -> Observed {
        Observed {
            open: true,
            cpu_pct: 10.0,
            threads: 2,
            cores: 2,
            lateness_p99_us: Some(150.0),
            in_flight: 1.0,
            throughput: 1000.0,
            mean_latency_s: 0.001,
            allowed: 1000.0,
            cap_from_user: false,
            other_cpu_pct: Some(1.0),
            idle_pct: Some(60.0),
            monitor_cpu_pct: None,
        }
    }

    fn healthy_closed() -> Observed {
        Observed {
            open: false,
            lateness_p99_us: None,
            in_flight: 31.5,
            allowed: 32.0,
            throughput: 10_000.0,
            mean_latency_s: 0.00315,
            ..healthy_open()
        }
    }

    #[test]
    fn each_cause_is_found_and_named() {
        // (name, observation, limited, what the advice must say, what it must not)
        let cases: Vec<(&str, Observed, bool, &str, &str)> = vec![
            ("healthy open run", healthy_open(), false, "", ""),
            ("healthy closed run", healthy_closed(), false, "", ""),
            (
                "the user's in-flight cap",
                Observed {
                    in_flight: 99.0,
                    allowed: 100.0,
                    cap_from_user: true,
                    lateness_p99_us: Some(50_000.0),
                    throughput: 2000.0,
                    mean_latency_s: 0.05,
                    ..healthy_open()
                },
                true,
                "--max-in-flight",
                "slow server",
            ),
            (
                "late sends with a saturated generator, fewer threads than cores",
                Observed {
                    cpu_pct: 49.0,
                    threads: 1,
                    lateness_p99_us: Some(8_000.0),
                    ..healthy_open()
                },
                true,
                "raise --threads",
                "another machine",
            ),
            (
                "late sends with a saturated generator on every core",
                Observed {
                    cpu_pct: 95.0,
                    lateness_p99_us: Some(8_000.0),
                    ..healthy_open()
                },
                true,
                "another machine",
                "raise --threads",
            ),
            (
                "late sends, other work on the machine",
                Observed {
                    lateness_p99_us: Some(8_000.0),
                    other_cpu_pct: Some(40.0),
                    ..healthy_open()
                },
                true,
                "other work took 40 %",
                "raise --threads",
            ),
            (
                "late sends, generator idle: descheduled, not more threads",
                Observed {
                    lateness_p99_us: Some(8_000.0),
                    ..healthy_open()
                },
                true,
                "kept from running",
                "raise --threads",
            ),
            (
                "a low rate on a 2-core machine is never told to raise --threads",
                Observed {
                    cpu_pct: 1.0,
                    throughput: 200.0,
                    lateness_p99_us: Some(100.0),
                    ..healthy_open()
                },
                false,
                "",
                "",
            ),
            (
                "closed workers held back by a saturated generator",
                Observed {
                    cpu_pct: 97.0,
                    in_flight: 10.0,
                    ..healthy_closed()
                },
                true,
                "in requests only 31 %",
                "raise --threads",
            ),
            (
                "a saturated machine, the generator its larger user (serve --null)",
                Observed {
                    cpu_pct: 52.0,
                    other_cpu_pct: Some(27.0),
                    idle_pct: Some(4.0),
                    lateness_p99_us: Some(1_500.0),
                    ..healthy_open()
                },
                true,
                "more of it (52 %) than the target and other processes (27 %)",
                "raise --threads",
            ),
            (
                "a saturated machine, the bundled monitor its larger user: the target's limit",
                Observed {
                    cpu_pct: 35.0,
                    monitor_cpu_pct: Some(50.0),
                    idle_pct: Some(3.0),
                    ..healthy_closed()
                },
                false,
                "",
                "",
            ),
            (
                "a saturated machine, the generator larger than the bundled monitor",
                Observed {
                    cpu_pct: 50.0,
                    monitor_cpu_pct: Some(35.0),
                    idle_pct: Some(3.0),
                    ..healthy_closed()
                },
                true,
                "than the bundled monitor (35 %)",
                "",
            ),
            (
                "a busy machine with idle left is not saturated",
                Observed {
                    cpu_pct: 50.0,
                    other_cpu_pct: Some(30.0),
                    idle_pct: Some(12.0),
                    ..healthy_open()
                },
                false,
                "",
                "",
            ),
            (
                "closed workers idle with an idle generator",
                Observed {
                    in_flight: 10.0,
                    ..healthy_closed()
                },
                true,
                "waiting to run",
                "raise --threads",
            ),
        ];
        for (name, o, limited, says, not) in cases {
            let check = judge(&o);
            assert_eq!(check.limited, limited, "{name}: {:?}", check.reasons);
            let text = check.reasons.join(" ");
            assert!(text.contains(says), "{name}: {text}");
            if !not.is_empty() {
                assert!(!text.contains(not), "{name}: {text}");
            }
        }
    }

    #[test]
    fn littles_law_is_reported() {
        let check = judge(&healthy_closed());
        assert!((check.littles_law.expected - 31.5).abs() < 1e-9);
        assert_eq!(check.littles_law.allowed, 32.0);
        assert_eq!(check.cpu_ceiling_pct, 100.0);
        let one_thread = judge(&Observed {
            threads: 1,
            ..healthy_open()
        });
        assert_eq!(one_thread.cpu_ceiling_pct, 50.0);
    }
}
