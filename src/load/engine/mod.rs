//! Workload executors: closed and open models over a weighted mix, per-endpoint runs, bursts
//! and the real-world flow. Each generator thread runs its own single-threaded runtime with
//! its own recorders (nothing shared is locked on the hot path); their histograms are merged
//! at the end.

mod burst;
mod control;
mod flow;
mod mix;
mod readback;
mod record;
mod send_clock;
mod transport;

pub use control::{Control, Live, LiveRec, LiveSecond, Phase};
pub use record::Measured;
pub use transport::RunTransport;

use self::send_clock::SendClock;
use self::{burst::*, flow::*, mix::*, readback::*, record::*};
use super::book::{Book, Check, Intent, Rng};
use super::id::ExecId;
use super::pacer::{ConstantPacer, Pace, Pacer, Shape, StagedPacer, Strided};
pub use super::scenario::Length;
use super::scenario::{FlowPlan, OpKind, Operation, OperationSpec};
use super::transport::{
    ArtifactRow, Call, CallError, Connector, ExecutionDetail, ExecutionRow, Page, Reply, Transport,
};
use crate::metrics::{Recorder, TimeSeries};
use crate::monitor::model::Status;
use crate::results::names::FLOW_OPS;
use crate::results::Integrity;
pub use crate::results::Load;
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// What an executor does.
#[derive(Debug, Clone)]
pub enum Workload {
    Mix(Vec<Operation>),
    PerEndpoint(Vec<Operation>),
    /// `count` create requests all in flight at once.
    Burst {
        count: u32,
    },
    Flow(FlowPlan),
}

#[derive(Clone)]
pub struct EngineConfig {
    pub workload: Workload,
    pub load: Load,
    pub length: Length,
    pub warmup: Duration,
    /// Executions each run creates before measuring, spread over threads.
    pub seed: u32,
    pub threads: usize,
    pub transport: Arc<dyn Connector>,
    /// Consecutive connection-level failures after which the run is aborted.
    pub max_consecutive_failures: u64,
    /// A load shape (mix only): open model, the rate over time; closed model, the workers.
    /// Its time starts with the load (warm-up included); `load` holds its peak.
    pub shape: Option<Arc<Shape>>,
}

/// Names of the recorded operations for a workload.
pub fn op_names(workload: &Workload) -> Vec<String> {
    match workload {
        Workload::Mix(ops) | Workload::PerEndpoint(ops) => {
            ops.iter().map(|o| o.name.clone()).collect()
        }
        Workload::Burst { .. } => vec![OpKind::CreateExecution.name().to_string()],
        Workload::Flow(_) => FLOW_OPS.iter().map(|s| s.to_string()).collect(),
    }
}

/// State shared by every thread of one run.
struct Shared {
    config: EngineConfig,
    control: Arc<Control>,
    barrier: Barrier,
    start: Mutex<Option<Instant>>,
    remaining: AtomicU64,
    next_flow: AtomicU64,
}

impl Shared {
    /// All threads wait here; returns one common instant, a little in the future.
    /// All threads wait here; returns one common instant, a little in the future, or None
    /// when the run has been stopped. One thread decides for all, so no thread can go on to
    /// a later barrier that the others will never reach.
    fn sync_start(&self) -> Option<Instant> {
        if self.barrier.wait().is_leader() {
            *self.start.lock().unwrap_or_else(|e| e.into_inner()) =
                (!self.control.stopped()).then(|| Instant::now() + Duration::from_millis(2));
        }
        self.barrier.wait();
        *self.start.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A transport to the target that stops with the run.
    fn transport(&self) -> RunTransport {
        RunTransport::new(&*self.config.transport, &self.control)
    }

    fn take_request(&self) -> bool {
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Splits `total` into `parts` shares that differ by at most one.
fn share(total: u64, parts: usize, i: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((i as u64) < total % parts)
}

/// Runs the workload to completion (or abort) on `config.threads` threads.
/// `load_done` is called once the load has ended and before the integrity read-back, so
/// that the server's own figures can be taken without the read-back in them.
pub fn run(config: EngineConfig, control: Arc<Control>, load_done: impl FnOnce()) -> Measured {
    let threads = config.threads.max(1);
    let names = op_names(&config.workload);
    let shared = Arc::new(Shared {
        remaining: AtomicU64::new(match config.length {
            Length::Requests(n) => n,
            Length::Duration(_) => u64::MAX,
        }),
        config,
        control,
        barrier: Barrier::new(threads),
        start: Mutex::new(None),
        next_flow: AtomicU64::new(0),
    });
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("gen-{i}"))
                .spawn(move || thread_main(i, threads, &shared))
                .expect("spawn generator thread")
        })
        .collect();
    let outs: Vec<ThreadOut> = handles
        .into_iter()
        .map(|h| h.join().expect("generator thread panicked"))
        .collect();

    let phase = shared
        .control
        .phase
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let cut_short = shared.control.abort_reason().is_some();
    let duration_s = measured_duration(&shared.config, &phase, cut_short);
    let op_duration_s = match &shared.config.workload {
        Workload::PerEndpoint(_) => phase.windows.iter().map(Duration::as_secs_f64).collect(),
        _ => Vec::new(),
    };
    let mut ops: Vec<(String, Recorder)> =
        names.into_iter().map(|n| (n, Recorder::new())).collect();
    let mut series = TimeSeries::new();
    let mut warnings = Vec::new();
    let max_lag = outs.iter().map(|o| o.max_lag).max().unwrap_or_default();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let stage_count = shared.config.shape.as_ref().map_or(0, |s| s.stages());
    let mut stages: Vec<Recorder> = (0..stage_count).map(|_| Recorder::new()).collect();
    let mut lateness = crate::metrics::new_latency_histogram();
    let mut sends: Vec<u64> = Vec::new();
    for out in &outs {
        for (slot, rec) in stages.iter_mut().zip(&out.stages) {
            slot.merge(rec);
        }
        let _ = lateness.add(&out.lateness);
        if sends.len() < out.sends.len() {
            sends.resize(out.sends.len(), 0);
        }
        for (slot, n) in sends.iter_mut().zip(&out.sends) {
            *slot += n;
        }
        for (msg, n) in &out.error_kinds {
            *errors.entry(msg.clone()).or_default() += n;
        }
        for (slot, rec) in ops.iter_mut().zip(&out.ops) {
            slot.1.merge(rec);
        }
        series.merge(&out.series);
    }
    if let (Load::Open { .. }, Length::Duration(d)) = (shared.config.load, shared.config.length) {
        let planned = match &shared.config.workload {
            Workload::PerEndpoint(ops) => {
                d.saturating_mul(u32::try_from(ops.len()).unwrap_or(u32::MAX))
            }
            _ => d,
        };
        // A little of answers after the window is requests in flight; more than a tenth of
        // the window is a server (or network) that did not keep up with the offered rate,
        // or requests that waited for their timeout.
        let lag_s = duration_s - planned.as_secs_f64();
        if !cut_short && lag_s > (0.1 * planned.as_secs_f64()).max(0.1) {
            warnings.push(format!(
                "the target did not keep up with the offered rate: answers to requests sent \
                 in the {:.1} s window kept coming for {lag_s:.1} s after it (a slow server, \
                 a generator too busy to read them, see its evidence, or requests waiting \
                 for their timeout); throughput is counted over \
                 {duration_s:.1} s",
                planned.as_secs_f64(),
            ));
        }
    }
    // How late the sends were, and why, is judged with the run's other evidence
    // (`load::evidence`), so that the advice matches the cause.
    load_done();
    let mut extra = serde_json::Map::new();
    // After an abort the target may be gone; reading back would only add noise and delay.
    let integrity = if shared.control.abort_reason().is_some() {
        warnings.push("integrity not checked: the run was aborted".into());
        None
    } else {
        finish(&shared, &outs, &mut extra, &mut warnings)
    };
    Measured {
        ops,
        series,
        duration_s,
        op_duration_s,
        integrity,
        warnings,
        errors,
        extra,
        started: phase.measure_start.is_some(),
        stages,
        lateness,
        sends,
        max_lag,
    }
}

/// The window a timed phase's counts are divided by, given how long it took until its last
/// answer came in. Closed model: the planned length (each worker's last request, in flight
/// at the end, is incidental). Open model: until the last answer, because every request
/// scheduled in the window is sent and waited for; when the server falls behind, its
/// answers keep coming after the window and the offered rate is not the achieved one.
/// A run cut short (Ctrl-C, an abort) lasted until it stopped, in either model.
fn measured_window(
    load: Load,
    planned: Duration,
    until_last_answer: Duration,
    cut_short: bool,
) -> Duration {
    match load {
        Load::Open { .. } if !cut_short => until_last_answer.max(planned),
        _ => until_last_answer.min(planned),
    }
}

fn measured_duration(config: &EngineConfig, phase: &Phase, cut_short: bool) -> f64 {
    let Some(start) = phase.measure_start else {
        return 0.0;
    };
    match (&config.workload, config.length) {
        // Per-endpoint phases each have their own window; their sum is kept in `planned`.
        (Workload::PerEndpoint(_), _) => phase.planned.map_or(0.0, |d| d.as_secs_f64()),
        (Workload::Mix(_), Length::Duration(d)) => {
            measured_window(config.load, d, start.elapsed(), cut_short).as_secs_f64()
        }
        _ => phase
            .planned
            .unwrap_or_else(|| start.elapsed())
            .as_secs_f64(),
    }
}

fn thread_main(i: usize, threads: usize, shared: &Arc<Shared>) -> ThreadOut {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // --direct with the legacy profile runs every DB operation here, as the served
        // monitor does on its own blocking pool of this size.
        .max_blocking_threads(16)
        .build()
        .expect("build generator runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        match &shared.config.workload {
            Workload::Mix(ops) => run_mix(i, threads, shared, ops).await,
            Workload::PerEndpoint(ops) => run_per_endpoint(i, threads, shared, ops).await,
            Workload::Burst { count } => run_burst(i, threads, shared, *count).await,
            Workload::Flow(plan) => run_flow(i, threads, shared, plan).await,
        }
    })
}

#[cfg(test)]
mod tests;
