//! What a run works out from its 50 ms samples after the load: each stage's figures and the
//! planned beside the achieved load (a shaped run), and the evidence that the generator was
//! or was not the limit.

use super::*;

/// What the orchestrator samples every 50 ms over the measured window.
#[derive(Debug, Default)]
pub(super) struct Samples {
    /// Requests in flight: sum and count of samples.
    pub(super) in_flight_sum: f64,
    pub(super) n: u64,
    /// Closed model: (seconds since the measured start, workers running).
    pub(super) workers: Vec<(f64, u64)>,
}

impl Samples {
    pub(super) fn take(&mut self, control: &Control, load_ended: &std::sync::atomic::AtomicBool) {
        use std::sync::atomic::Ordering;
        let Some(start) = control
            .phase
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .measure_start
        else {
            return;
        };
        let now = Instant::now();
        if now < start || load_ended.load(Ordering::SeqCst) {
            return;
        }
        let live = &control.live;
        self.in_flight_sum += live.in_flight.load(Ordering::Relaxed) as f64;
        self.n += 1;
        self.workers.push((
            (now - start).as_secs_f64(),
            live.active_workers.load(Ordering::Relaxed),
        ));
    }

    pub(super) fn in_flight(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.in_flight_sum / self.n as f64
        }
    }

    /// Mean workers running over [a, b) seconds of the measured window; None without samples.
    pub(super) fn workers_between(&self, a: f64, b: f64) -> Option<f64> {
        let inside: Vec<f64> = self
            .workers
            .iter()
            .filter(|(t, _)| *t >= a && *t < b)
            .map(|(_, w)| *w as f64)
            .collect();
        (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / inside.len() as f64)
    }
}

/// Each stage's figures and the planned load beside the achieved one, second by second.
pub(super) fn shape_results(
    shape: &Shape,
    warmup: Duration,
    load: Load,
    measured: &engine::Measured,
    samples: &Samples,
) -> ShapeResults {
    let open = matches!(load, Load::Open { .. });
    let w = warmup.as_secs_f64();
    let total = shape.duration().as_secs_f64();
    let stages = (0..shape.stages())
        .map(|i| {
            let (start, len) = shape.stage_window(i);
            let (a, b) = (
                start.as_secs_f64().max(w),
                (start + len).as_secs_f64().max(w),
            );
            let measured_s = b - a;
            let rec = measured.stages.get(i).cloned().unwrap_or_default();
            let stats = rec.summarize(measured_s);
            let (from, to) = shape.stage_levels(i);
            let planned = if measured_s > 0.0 {
                shape.mean_between(Duration::from_secs_f64(a), Duration::from_secs_f64(b))
            } else {
                to
            };
            let achieved = if measured_s <= 0.0 {
                0.0
            } else if open {
                stats.count as f64 / measured_s
            } else {
                samples.workers_between(a - w, b - w).unwrap_or(0.0)
            };
            StageResults {
                stage: i as u32 + 1,
                duration_s: len.as_secs_f64(),
                measured_s,
                from,
                to,
                planned,
                achieved,
                stats,
            }
        })
        .collect();
    let seconds = (total - w).max(0.0).ceil() as u64;
    let per_second = (1..=seconds)
        .map(|t_s| {
            let a = w + (t_s - 1) as f64;
            let b = (w + t_s as f64).min(total);
            let planned = shape
                .mean_between(Duration::from_secs_f64(a), Duration::from_secs_f64(b))
                * if open { b - a } else { 1.0 };
            let achieved = if open {
                measured.sends.get(t_s as usize - 1).copied().unwrap_or(0) as f64
            } else {
                samples
                    .workers_between((t_s - 1) as f64, t_s as f64)
                    .unwrap_or(0.0)
            };
            PlannedPoint {
                t_s,
                planned,
                achieved,
            }
        })
        .collect();
    ShapeResults { stages, per_second }
}

pub(super) struct GeneratorInputs {
    pub(super) load: Load,
    pub(super) threads: usize,
    pub(super) cpu_pct: f64,
    pub(super) cap_from_user: bool,
    pub(super) machine: Option<crate::results::MachineLoad>,
    pub(super) duration_s: f64,
    pub(super) shaped: bool,
}

/// The evidence that the generator was not the limit (`load::evidence`).
pub(super) fn generator_check(
    g: &GeneratorInputs,
    measured: &engine::Measured,
    samples: &Samples,
    totals: &crate::metrics::OpStats,
) -> GeneratorCheck {
    let open = matches!(g.load, Load::Open { .. });
    let allowed = match g.load {
        Load::Open { max_in_flight, .. } => f64::from(max_in_flight),
        // A shaped closed run: the workers it actually ran, on average.
        Load::Closed { .. } if g.shaped => samples.workers_between(0.0, f64::MAX).unwrap_or(0.0),
        Load::Closed { concurrency } => f64::from(concurrency),
    };
    let lateness = crate::metrics::LatencySummary::from_histogram(&measured.lateness);
    let mut check = evidence::judge(&evidence::Observed {
        open,
        cpu_pct: g.cpu_pct,
        threads: g.threads,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        lateness_p99_us: open.then_some(lateness.p99),
        in_flight: samples.in_flight(),
        throughput: if g.duration_s > 0.0 {
            totals.count as f64 / g.duration_s
        } else {
            0.0
        },
        mean_latency_s: totals.latency_us.mean / 1e6,
        allowed,
        cap_from_user: g.cap_from_user,
        other_cpu_pct: g.machine.map(|m| m.other_cpu_pct),
        idle_pct: g.machine.and_then(|m| m.idle_pct),
        monitor_cpu_pct: g.machine.and_then(|m| m.monitor_cpu_pct),
    });
    if open {
        check.send_lateness_us = Some(lateness);
    }
    check
}
