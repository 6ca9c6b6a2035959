//! Workload executors: closed and open models over a weighted mix, per-endpoint runs, bursts
//! and the real-world flow. Each generator thread runs its own single-threaded runtime with
//! its own recorders (nothing shared is locked on the hot path); their histograms are merged
//! at the end.

use super::book::{Book, Check, Intent, Rng};
use super::client::{Endpoint, Link, Timeouts, Wire};
use super::id::ExecId;
use super::ops::{
    ArtifactRow, Call, CallError, DirectTransport, ExecutionDetail, ExecutionRow, HttpTransport,
    Page, Reply, Transport,
};
use super::pacer::{ConstantPacer, Pace};
use super::scenario::{FlowPlan, OpKind, Operation, OperationSpec};
use crate::metrics::{Recorder, TimeSeries};
use crate::results::names::FLOW_OPS;
use crate::results::Integrity;
use crate::monitor::model::Status;
use crate::monitor::storage::Storage;
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Where calls go.
#[derive(Clone)]
pub enum TransportSpec {
    Http {
        endpoint: Arc<Endpoint>,
        timeouts: Timeouts,
        wire: Wire,
    },
    Direct(Storage),
}

impl TransportSpec {
    /// A transport whose every call ends as soon as `control` stops the run.
    pub fn make(&self, control: &Arc<Control>) -> AnyTransport {
        let inner = match self {
            TransportSpec::Http {
                endpoint,
                timeouts,
                wire,
            } => Inner::Http(HttpTransport {
                conn: Link::new(wire, endpoint, *timeouts),
            }),
            TransportSpec::Direct(storage) => Inner::Direct(DirectTransport {
                storage: storage.clone(),
            }),
        };
        AnyTransport {
            inner,
            control: Arc::clone(control),
        }
    }

    /// A request as a message names it: `POST http://host:port/api/executions`.
    pub fn describe(&self, method: &str, path: &str) -> String {
        match self {
            TransportSpec::Http { endpoint, .. } => format!("{method} {}{path}", endpoint.url),
            TransportSpec::Direct(_) => format!("{method} {path} (in-process storage)"),
        }
    }
}

/// Either transport, so executors need no generics; every call is cut short when the run
/// stops (Ctrl-C, an abort), in set-up, under load and in the read-back alike, so that a
/// target that stopped answering cannot hold the run for the length of a request timeout.
pub struct AnyTransport {
    inner: Inner,
    control: Arc<Control>,
}

enum Inner {
    Http(HttpTransport),
    Direct(DirectTransport),
}

/// `fut`'s outcome, or `CallError::Stopped` as soon as the run stops.
async fn unless_stopped<T>(
    control: &Control,
    fut: impl std::future::Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::select! {
        biased;
        r = fut => r,
        () = control.until_stopped() => Err(CallError::Stopped),
    }
}

impl AnyTransport {
    async fn connect(&mut self) -> Result<(), CallError> {
        let inner = &mut self.inner;
        unless_stopped(&self.control, async move {
            match inner {
                Inner::Http(h) => Ok(h.conn.connect().await?),
                Inner::Direct(_) => Ok(()),
            }
        })
        .await
    }
}

impl Transport for AnyTransport {
    async fn call(&mut self, call: &Call) -> Result<Reply, CallError> {
        let inner = &mut self.inner;
        unless_stopped(&self.control, async move {
            match inner {
                Inner::Http(t) => t.call(call).await,
                Inner::Direct(t) => t.call(call).await,
            }
        })
        .await
    }
    async fn page(&mut self, limit: u32, offset: u64) -> Result<Page, CallError> {
        let inner = &mut self.inner;
        unless_stopped(&self.control, async move {
            match inner {
                Inner::Http(t) => t.page(limit, offset).await,
                Inner::Direct(t) => t.page(limit, offset).await,
            }
        })
        .await
    }
    async fn execution(&mut self, id: &ExecId) -> Result<ExecutionDetail, CallError> {
        let inner = &mut self.inner;
        unless_stopped(&self.control, async move {
            match inner {
                Inner::Http(t) => t.execution(id).await,
                Inner::Direct(t) => t.execution(id).await,
            }
        })
        .await
    }
    async fn logs(&mut self, id: &ExecId, index: i64) -> Result<Vec<String>, CallError> {
        let inner = &mut self.inner;
        unless_stopped(&self.control, async move {
            match inner {
                Inner::Http(t) => t.logs(id, index).await,
                Inner::Direct(t) => t.logs(id, index).await,
            }
        })
        .await
    }
    async fn artifacts(&mut self, id: &ExecId) -> Result<Vec<ArtifactRow>, CallError> {
        let inner = &mut self.inner;
        unless_stopped(&self.control, async move {
            match inner {
                Inner::Http(t) => t.artifacts(id).await,
                Inner::Direct(t) => t.artifacts(id).await,
            }
        })
        .await
    }
}

/// How load is offered, resolved from the scenario and the flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    Closed { concurrency: u32 },
    Open { rate_per_s: f64, max_in_flight: u32 },
}

/// How long each measured phase lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Duration(Duration),
    /// Requests in total (mix) or per operation (per-endpoint).
    Requests(u64),
}

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
    pub transport: TransportSpec,
    /// Consecutive connection-level failures after which the run is aborted.
    pub max_consecutive_failures: u64,
}

/// Stop flags and live counters shared by the generator threads and the orchestrator.
pub struct Control {
    stop: AtomicBool,
    /// Wakes everything waiting in `until_stopped` when the run stops.
    wake: tokio::sync::Notify,
    abort: Mutex<Option<String>>,
    consecutive_failures: AtomicU64,
    max_consecutive_failures: u64,
    pub live: Live,
    /// Set when measuring starts (after set-up and warm-up), for progress.
    pub phase: Mutex<Phase>,
}

#[derive(Debug, Clone, Default)]
pub struct Phase {
    pub warmup_until: Option<Instant>,
    pub measure_start: Option<Instant>,
    pub planned: Option<Duration>,
    /// Per-endpoint runs: each operation's own measured window, in order.
    pub windows: Vec<Duration>,
    /// Set when the load is over and the integrity read-back starts: when, and how many
    /// executions it reads back (with every acknowledged write to them).
    pub verifying: Option<(Instant, u64)>,
}

/// Counters the progress line reads while the run goes on.
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    /// Latencies so far, microseconds, 2 significant digits: one histogram per recorder,
    /// so a generator thread never waits for another's lock.
    hists: Mutex<Vec<Arc<Mutex<Histogram<u64>>>>>,
}

impl Live {
    fn register(&self) -> Arc<Mutex<Histogram<u64>>> {
        let h = Arc::new(Mutex::new(
            Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds"),
        ));
        self.hists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&h));
        h
    }

    /// 99th percentile latency of everything measured so far, microseconds.
    pub fn p99_us(&self) -> u64 {
        let hists = self.hists.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds");
        for h in hists.iter() {
            let _ = all.add(&*h.lock().unwrap_or_else(|e| e.into_inner()));
        }
        all.value_at_quantile(0.99)
    }
}

impl Control {
    pub fn new(max_consecutive_failures: u64) -> Control {
        Control {
            stop: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            abort: Mutex::new(None),
            consecutive_failures: AtomicU64::new(0),
            max_consecutive_failures,
            live: Live {
                ops: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                hists: Mutex::new(Vec::new()),
            },
            phase: Mutex::new(Phase::default()),
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Returns once the run has stopped.
    pub async fn until_stopped(&self) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            // Registered before the flag is read, so a stop in between is not missed.
            woken.as_mut().enable();
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            woken.await;
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops the run and records why; the first reason wins.
    pub fn abort(&self, reason: String) {
        let mut a = self.abort.lock().unwrap_or_else(|e| e.into_inner());
        if a.is_none() {
            *a = Some(reason);
        }
        drop(a);
        self.stop();
    }

    pub fn abort_reason(&self) -> Option<String> {
        self.abort.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn note<T>(&self, result: &Result<T, CallError>) {
        match result {
            Err(CallError::Client(e)) => {
                let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= self.max_consecutive_failures {
                    self.abort(format!(
                        "{n} consecutive connection errors, the target stopped answering \
                         (last: {e})"
                    ));
                }
            }
            _ => self.consecutive_failures.store(0, Ordering::Relaxed),
        }
    }
}

/// Everything measured by one run of an executor.
pub struct Measured {
    /// Operation name and its recorder, in scenario order.
    pub ops: Vec<(String, Recorder)>,
    pub series: TimeSeries,
    /// Measured time (warm-up excluded), seconds.
    pub duration_s: f64,
    /// Each operation's own measured window, seconds, where it differs from `duration_s`
    /// (per-endpoint runs measure one operation at a time).
    pub op_duration_s: Vec<f64>,
    pub integrity: Option<Integrity>,
    pub warnings: Vec<String>,
    /// Distinct error messages and how often each occurred in the measured window.
    pub errors: BTreeMap<String, u64>,
    /// Extra figures of a kind, e.g. a burst's success count.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Whether the load got past set-up (warm-up, then measuring, began).
    pub started: bool,
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


/// Per-thread recording.
struct Rec {
    ops: Vec<Recorder>,
    series: TimeSeries,
    error_kinds: BTreeMap<String, u64>,
    measure_start: Instant,
    control: Arc<Control>,
    live_hist: Arc<Mutex<Histogram<u64>>>,
}

impl Rec {
    fn new(n: usize, measure_start: Instant, control: Arc<Control>) -> Rec {
        Rec {
            ops: (0..n).map(|_| Recorder::new()).collect(),
            series: TimeSeries::new(),
            error_kinds: BTreeMap::new(),
            measure_start,
            live_hist: control.live.register(),
            control,
        }
    }

    /// Latency runs from the intended send time; samples scheduled before the measured
    /// window (warm-up) are dropped.
    fn record<T>(
        &mut self,
        op: usize,
        intended: Instant,
        sent: Instant,
        done: Instant,
        result: &Result<T, CallError>,
    ) {
        // A request cut short by the run's stop has no outcome to record.
        if intended < self.measure_start || matches!(result, Err(CallError::Stopped)) {
            return;
        }
        let ok = result.is_ok();
        if let Err(e) = result {
            // Distinct messages with counts; numbers differ per request, so a few suffice.
            let msg = e.to_string();
            if let Some(n) = self.error_kinds.get_mut(&msg) {
                *n += 1;
            } else if self.error_kinds.len() < 20 {
                self.error_kinds.insert(msg, 1);
            }
        }
        let latency = nanos(done - intended);
        if ok {
            self.ops[op].record_ok(latency, nanos(done - sent));
        } else {
            self.ops[op].record_error(latency);
        }
        self.series.record(
            done.saturating_duration_since(self.measure_start),
            latency,
            ok,
        );
        let live = &self.control.live;
        live.ops.fetch_add(1, Ordering::Relaxed);
        if !ok {
            live.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut h) = self.live_hist.lock() {
            h.saturating_record((latency / 1000).max(1));
        }
    }
}

/// The value behind an `Rc` once every task that shared it has finished.
fn take_rc<T>(rc: Rc<RefCell<T>>) -> T {
    match Rc::try_unwrap(rc) {
        Ok(cell) => cell.into_inner(),
        Err(_) => unreachable!("every task holding a clone has finished"),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `t + d`, or a century after `t` where that is not representable. Scenario bounds keep
/// every configured duration far below that; this keeps a slip from being a panic.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(t)
}

/// What a thread hands back.
struct ThreadOut {
    ops: Vec<Recorder>,
    error_kinds: BTreeMap<String, u64>,
    series: TimeSeries,
    book: Book,
    created: Vec<ExecId>,
    flows: Vec<FlowRecord>,
    max_lag: Duration,
}

impl ThreadOut {
    /// A thread that measured nothing (the run stopped during set-up).
    fn nothing(ops: usize, book: Book) -> ThreadOut {
        ThreadOut {
            ops: (0..ops).map(|_| Recorder::new()).collect(),
            error_kinds: BTreeMap::new(),
            series: TimeSeries::new(),
            book,
            created: Vec::new(),
            flows: Vec::new(),
            max_lag: Duration::ZERO,
        }
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
    fn transport(&self) -> AnyTransport {
        self.config.transport.make(&self.control)
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
    for out in &outs {
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
                 or requests waiting for their timeout); throughput is counted over \
                 {duration_s:.1} s",
                planned.as_secs_f64(),
            ));
        }
    }
    if let Load::Open { .. } = shared.config.load {
        if max_lag > Duration::from_millis(10) {
            warnings.push(format!(
                "the generator fell behind its send schedule by up to {:.1} ms; latencies \
                 still count from the intended send times, but the offered rate was not met \
                 on time (raise --threads, lower --rate, or cap in-flight requests)",
                max_lag.as_secs_f64() * 1000.0
            ));
        }
    }
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

/// Cumulative weights for picking operations.
struct Picker {
    cumulative: Vec<u64>,
}

impl Picker {
    fn new(ops: &[Operation]) -> Picker {
        let mut total = 0;
        Picker {
            cumulative: ops
                .iter()
                .map(|o| {
                    total += u64::from(o.weight.max(1));
                    total
                })
                .collect(),
        }
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("at least one operation");
        let x = rng.next_u64() % total;
        self.cumulative.partition_point(|&c| c <= x)
    }
}

fn prepare(op: &Operation, book: &mut Book, rng: &mut Rng) -> (Call, Intent) {
    match &op.spec {
        OperationSpec::BuiltIn { kind, params } => book.prepare(*kind, params, rng),
        OperationSpec::Request(request) => (Call::Raw(Arc::clone(request)), Intent::None),
    }
}

fn needs_executions(ops: &[Operation]) -> bool {
    ops.iter().any(|o| {
        matches!(&o.spec, OperationSpec::BuiltIn { kind, .. }
            if !matches!(kind, OpKind::Health | OpKind::ListExecutions | OpKind::CreateExecution))
    })
}

/// Whether any operation uses the StepFlow executions API (so seeding has a purpose).
fn uses_executions(ops: &[Operation]) -> bool {
    ops.iter()
        .any(|o| matches!(&o.spec, OperationSpec::BuiltIn { kind, .. } if *kind != OpKind::Health))
}

/// Creates this thread's share of seed executions (each with one step) before measuring,
/// so reads and updates have targets from the first request. Scenarios of plain requests
/// (and health checks) seed nothing: the target need not be a StepFlow service.
async fn seed(i: usize, threads: usize, shared: &Shared, book: &mut Book, ops: &[Operation]) {
    if !uses_executions(ops) {
        return;
    }
    let wanted = share(u64::from(shared.config.seed), threads, i).max(if needs_executions(ops) {
        2
    } else {
        0
    });
    if wanted == 0 {
        return;
    }
    let mut t = shared.transport();
    for n in 0..wanted {
        if shared.control.stopped() {
            return;
        }
        let (call, intent) = book.create_call();
        let r = t.call(&call).await;
        shared.control.note(&r);
        if matches!(r, Err(CallError::Stopped)) {
            return;
        }
        if let Err(e) = &r {
            let request = shared.config.transport.describe("POST", "/api/executions");
            shared.control.abort(format!(
                "set-up could not create an execution: {request} answered {e}"
            ));
            return;
        }
        book.complete(intent, &r);
        // One step on the first executions is enough for step operations to start from.
        if n < 8 {
            let (call, intent) = book.step_call(book.executions() - 1);
            let r = t.call(&call).await;
            book.complete(intent, &r);
        }
    }
}

/// Which operation each request of a phase performs.
#[derive(Clone)]
enum Choice {
    /// Picked at random by weight (a mix).
    Weighted(Rc<Picker>),
    /// Always this one (a per-endpoint phase).
    Only(usize),
}

impl Choice {
    fn pick(&self, rng: &mut Rng) -> usize {
        match self {
            Choice::Weighted(p) => p.pick(rng),
            Choice::Only(op) => *op,
        }
    }
}

/// One phase on this thread: its timing and where its samples go.
struct PhaseCtx {
    ops: Rc<Vec<Operation>>,
    choice: Choice,
    book: Rc<RefCell<Book>>,
    rec: Rc<RefCell<Rec>>,
    /// When load starts (warm-up included).
    start: Instant,
    measure_start: Instant,
    /// None in count mode: the shared request budget ends the phase.
    end: Option<Instant>,
}

impl PhaseCtx {
    fn new(
        shared: &Shared,
        ops: &Rc<Vec<Operation>>,
        choice: Choice,
        book: &Rc<RefCell<Book>>,
        start: Instant,
    ) -> PhaseCtx {
        let measure_start = later(start, shared.config.warmup);
        PhaseCtx {
            ops: Rc::clone(ops),
            choice,
            book: Rc::clone(book),
            rec: Rc::new(RefCell::new(Rec::new(
                ops.len(),
                measure_start,
                Arc::clone(&shared.control),
            ))),
            start,
            measure_start,
            end: match shared.config.length {
                Length::Duration(d) => Some(later(measure_start, d)),
                Length::Requests(_) => None,
            },
        }
    }

    /// Carries out one request and records it; `intended` is when it was due.
    async fn request(
        &self,
        shared: &Shared,
        t: &mut AnyTransport,
        op: usize,
        call: Call,
        intent: Intent,
        intended: Option<Instant>,
    ) {
        let sent = Instant::now();
        let r = t.call(&call).await;
        let done = Instant::now();
        shared.control.note(&r);
        self.book.borrow_mut().complete(intent, &r);
        self.rec
            .borrow_mut()
            .record(op, intended.unwrap_or(sent), sent, done, &r);
    }
}

/// Runs one phase under the configured load model; returns how far the open model's
/// sends fell behind their schedule at worst.
async fn drive(i: usize, threads: usize, shared: &Arc<Shared>, ctx: &Rc<PhaseCtx>) -> Duration {
    tokio::time::sleep_until(ctx.start.into()).await;
    match shared.config.load {
        Load::Closed { concurrency } => {
            let workers = share(u64::from(concurrency), threads, i);
            let tasks: Vec<_> = (0..workers)
                .map(|w| {
                    let (shared, ctx) = (Arc::clone(shared), Rc::clone(ctx));
                    tokio::task::spawn_local(async move {
                        let mut t = shared.transport();
                        let mut rng = Rng::new((i as u64) << 32 | w);
                        loop {
                            let now = Instant::now();
                            if shared.control.stopped() || ctx.end.is_some_and(|e| now >= e) {
                                break;
                            }
                            // Count mode counts measured requests only.
                            if now >= ctx.measure_start && !shared.take_request() {
                                break;
                            }
                            let op = ctx.choice.pick(&mut rng);
                            let (call, intent) =
                                prepare(&ctx.ops[op], &mut ctx.book.borrow_mut(), &mut rng);
                            ctx.request(&shared, &mut t, op, call, intent, None).await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
            Duration::ZERO
        }
        Load::Open {
            rate_per_s,
            max_in_flight,
        } => {
            let pacer = ConstantPacer {
                rate_per_s: rate_per_s / threads as f64,
            };
            // Thread i's schedule is shifted by i requests, so that together the threads send
            // evenly spaced requests rather than `threads` at once.
            let shift = Duration::try_from_secs_f64(i as f64 / rate_per_s).unwrap_or_default();
            let t0 = later(ctx.start, shift);
            let cap = share(u64::from(max_in_flight), threads, i).max(1) as usize;
            let slots = Rc::new(tokio::sync::Semaphore::new(cap));
            // Requests due and waiting for a slot are tasks too. At most `cap` of them wait:
            // past that the dispatcher waits, and the pacer (on its bounded channel) with
            // it, so that a target that stops answering costs the generator what it has in
            // flight, not a task per request scheduled. The schedule does not move: a
            // request sent late counts its latency from when it was due.
            let queue = Arc::new(tokio::sync::Semaphore::new(cap.saturating_mul(2)));
            // Requests due before this instant were held back by a full queue: their
            // lateness is the target's, not the generator's.
            let mut backlog_until: Option<Instant> = None;
            let pool: Rc<RefCell<Vec<AnyTransport>>> = Rc::new(RefCell::new(Vec::new()));
            let mut rng = Rng::new(i as u64 ^ 0xA5A5);
            let mut max_lag = Duration::ZERO;
            let mut due = schedule(pacer, t0, ctx.end, Arc::clone(shared));
            // Spawned requests, joined before the recorders are taken back: the semaphore
            // alone cannot wait for a task spawned but not yet polled.
            let mut in_flight = tokio::task::JoinSet::new();
            while let Some(n) = due.recv().await {
                if shared.control.stopped() {
                    break;
                }
                // A schedule past what an Instant holds has no request due in this run.
                let Some(intended) = t0.checked_add(pacer.intended_send_time(n)) else {
                    break;
                };
                if intended >= ctx.measure_start && !shared.take_request() {
                    break;
                }
                let ticket = match Arc::clone(&queue).try_acquire_owned() {
                    Ok(ticket) => ticket,
                    Err(_) => {
                        let ticket = Arc::clone(&queue)
                            .acquire_owned()
                            .await
                            .expect("semaphore open");
                        backlog_until = Some(Instant::now());
                        ticket
                    }
                };
                if backlog_until.is_none_or(|b| intended >= b) {
                    max_lag = max_lag.max(Instant::now().saturating_duration_since(intended));
                }
                let op = ctx.choice.pick(&mut rng);
                let (call, intent) = prepare(&ctx.ops[op], &mut ctx.book.borrow_mut(), &mut rng);
                let (shared, ctx, slots, pool) = (
                    Arc::clone(shared),
                    Rc::clone(ctx),
                    Rc::clone(&slots),
                    Rc::clone(&pool),
                );
                while in_flight.try_join_next().is_some() {}
                in_flight.spawn_local(async move {
                    let _ticket = ticket;
                    // Waiting for a free slot is part of the latency: it is measured from
                    // the intended send time.
                    let _permit = slots.acquire().await.expect("semaphore open");
                    let popped = pool.borrow_mut().pop();
                    let mut t = popped.unwrap_or_else(|| shared.transport());
                    ctx.request(&shared, &mut t, op, call, intent, Some(intended))
                        .await;
                    pool.borrow_mut().push(t);
                });
            }
            drop(due);
            // Wait for everything in flight.
            while in_flight.join_next().await.is_some() {}
            max_lag
        }
    }
}

/// Announces each request of the open model when it is due. The runtime's timer ticks in
/// whole milliseconds, which would make every request up to 1 ms late (and that lateness
/// is latency, measured from the intended time); a plain thread sleeping with the OS's
/// high-resolution timer wakes within tens of microseconds. Stops at the end of the phase,
/// on a stop, or when the receiver is gone.
fn schedule(
    pacer: ConstantPacer,
    start: Instant,
    end: Option<Instant>,
    shared: Arc<Shared>,
) -> tokio::sync::mpsc::Receiver<u64> {
    // Bounded: while the dispatcher waits for room, the pacer waits too, instead of piling up
    // announcements (they are numbers: the schedule itself does not depend on them).
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    std::thread::Builder::new()
        .name("gen-pacer".into())
        .spawn(move || {
            // The default 50 µs timer slack would make every wake-up late by that much.
            // SAFETY: prctl on the calling thread with an integer argument.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
            let mut sent = 0u64;
            while !shared.control.stopped() {
                match pacer.pace(start.elapsed(), sent) {
                    Pace::Stop => break,
                    // Sleeps are short so that a stop is noticed promptly.
                    Pace::Wait(d) => std::thread::sleep(d.min(Duration::from_millis(50))),
                    Pace::SendNow => {
                        let due = start.checked_add(pacer.intended_send_time(sent));
                        if due.is_none_or(|due| end.is_some_and(|e| due >= e))
                            || tx.blocking_send(sent).is_err()
                        {
                            break;
                        }
                        sent += 1;
                    }
                }
            }
        })
        .expect("spawn pacer thread");
    rx
}

/// The phase's recorder once every task of it has finished.
fn take_rec(ctx: Rc<PhaseCtx>) -> Rec {
    match Rc::try_unwrap(ctx) {
        Ok(ctx) => take_rc(ctx.rec),
        Err(_) => unreachable!("every task holding the phase has finished"),
    }
}

fn set_phase(shared: &Shared, f: impl FnOnce(&mut Phase)) {
    f(&mut shared
        .control
        .phase
        .lock()
        .unwrap_or_else(|e| e.into_inner()));
}

async fn run_mix(i: usize, threads: usize, shared: &Arc<Shared>, ops: &[Operation]) -> ThreadOut {
    let mut seeded = Book::new(format!("run-t{i}"));
    seed(i, threads, shared, &mut seeded, ops).await;
    // Stopped during set-up (on any thread): no warm-up, nothing measured.
    let Some(start) = shared.sync_start() else {
        return ThreadOut::nothing(ops.len(), seeded);
    };
    let book = Rc::new(RefCell::new(seeded));
    let ops = Rc::new(ops.to_vec());
    let choice = Choice::Weighted(Rc::new(Picker::new(&ops)));
    let ctx = Rc::new(PhaseCtx::new(shared, &ops, choice, &book, start));
    if i == 0 {
        set_phase(shared, |p| {
            p.warmup_until = Some(ctx.measure_start);
            p.measure_start = Some(ctx.measure_start);
            if let Length::Duration(d) = shared.config.length {
                p.planned = Some(d);
            }
        });
    }
    let max_lag = drive(i, threads, shared, &ctx).await;
    let rec = take_rec(ctx);
    ThreadOut {
        ops: rec.ops,
        error_kinds: rec.error_kinds,
        series: rec.series,
        book: take_rc(book),
        created: Vec::new(),
        flows: Vec::new(),
        max_lag,
    }
}

/// Each operation on its own: warm-up, then its measured window; phases are synchronised
/// across threads so only one endpoint is loaded at a time.
async fn run_per_endpoint(
    i: usize,
    threads: usize,
    shared: &Arc<Shared>,
    ops: &[Operation],
) -> ThreadOut {
    let cfg = &shared.config;
    let mut seeded = Book::new(format!("api-t{i}"));
    seed(i, threads, shared, &mut seeded, ops).await;
    let book = Rc::new(RefCell::new(seeded));
    let ops = Rc::new(ops.to_vec());
    let mut all = Rec::new(ops.len(), Instant::now(), Arc::clone(&shared.control));
    let mut max_lag = Duration::ZERO;
    for op in 0..ops.len() {
        let Some(start) = shared.sync_start() else {
            break;
        };
        // Every thread has finished the earlier phases (sync_start waits for all), so their
        // windows are final: this phase's seconds in the time series follow them, whole
        // seconds each so that no two phases share one.
        let offset_s: u64 = shared
            .control
            .phase
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .windows
            .iter()
            .map(|w| w.as_secs_f64().ceil() as u64)
            .sum();
        if i == 0 {
            if let Length::Requests(n) = cfg.length {
                shared.remaining.store(n, Ordering::Relaxed);
            }
        }
        // Nobody takes from the budget before it is refilled.
        shared.barrier.wait();
        let ctx = Rc::new(PhaseCtx::new(shared, &ops, Choice::Only(op), &book, start));
        if i == 0 {
            set_phase(shared, |p| {
                p.warmup_until = Some(ctx.measure_start);
                p.measure_start.get_or_insert(ctx.measure_start);
            });
        }
        max_lag = max_lag.max(drive(i, threads, shared, &ctx).await);
        let cut_short = shared.control.abort_reason().is_some();
        let window = match cfg.length {
            Length::Duration(d) => {
                measured_window(cfg.load, d, ctx.measure_start.elapsed(), cut_short)
            }
            Length::Requests(_) => ctx.measure_start.elapsed(),
        };
        let rec = take_rec(ctx);
        all.ops[op].merge(&rec.ops[op]);
        for (msg, n) in rec.error_kinds {
            *all.error_kinds.entry(msg).or_default() += n;
        }
        // Phases are laid end to end in the time series.
        all.series.merge(&rec.series.shifted(offset_s));
        // The phase lasted until its last thread was done.
        set_phase(shared, |p| {
            if p.windows.len() <= op {
                p.windows.resize(op + 1, Duration::ZERO);
            }
            p.windows[op] = p.windows[op].max(window);
            p.planned = Some(p.windows.iter().sum());
        });
    }
    ThreadOut {
        ops: all.ops,
        error_kinds: all.error_kinds,
        series: all.series,
        book: take_rc(book),
        created: Vec::new(),
        flows: Vec::new(),
        max_lag,
    }
}

/// All `count` create requests in flight together: connections are opened first, then every
/// request is released at one instant; latency counts from that instant.
async fn run_burst(i: usize, threads: usize, shared: &Arc<Shared>, count: u32) -> ThreadOut {
    let mine = share(u64::from(count), threads, i) as usize;
    // Connections are opened a few hundred at a time: the burst is about requests in flight
    // together, and a flood of SYNs would only measure the server's listen queue.
    let slots = Rc::new(tokio::sync::Semaphore::new(256));
    let connects: Vec<_> = (0..mine)
        .map(|_| {
            let mut t = shared.transport();
            let slots = Rc::clone(&slots);
            tokio::task::spawn_local(async move {
                let _slot = slots.acquire().await.expect("semaphore open");
                let r = t.connect().await;
                (t, r)
            })
        })
        .collect();
    let mut transports = Vec::with_capacity(mine);
    for c in connects {
        let (t, r) = c.await.expect("connect task");
        shared.control.note(&r);
        transports.push(t);
    }
    let Some(start) = shared.sync_start() else {
        return ThreadOut::nothing(1, Book::default());
    };
    if i == 0 {
        set_phase(shared, |p| p.measure_start = Some(start));
    }
    let rec = Rc::new(RefCell::new(Rec::new(
        1,
        start,
        Arc::clone(&shared.control),
    )));
    let created = Rc::new(RefCell::new(Vec::with_capacity(mine)));
    tokio::time::sleep_until(start.into()).await;
    let tasks: Vec<_> = transports
        .into_iter()
        .enumerate()
        .map(|(n, mut t)| {
            let (rec, created, shared) = (Rc::clone(&rec), Rc::clone(&created), Arc::clone(shared));
            tokio::task::spawn_local(async move {
                let call = Call::Create {
                    name: format!("burst-t{i}-{n}"),
                };
                let sent = Instant::now();
                let r = t.call(&call).await;
                let done = Instant::now();
                shared.control.note(&r);
                if let Ok(Reply::Created { id }) = &r {
                    created.borrow_mut().push(id.clone());
                }
                rec.borrow_mut().record(0, start, sent, done, &r);
                done
            })
        })
        .collect();
    let mut last = start;
    for t in tasks {
        if let Ok(done) = t.await {
            last = last.max(done);
        }
    }
    let mine = last - start;
    set_phase(shared, |p| {
        p.planned = Some(p.planned.map_or(mine, |d| d.max(mine)))
    });
    let rec = take_rc(rec);
    ThreadOut {
        ops: rec.ops,
        error_kinds: rec.error_kinds,
        series: rec.series,
        book: Book::default(),
        created: take_rc(created),
        flows: Vec::new(),
        max_lag: Duration::ZERO,
    }
}

/// What one simulated execution wrote, to read back afterwards. Names, log lines and
/// artifact contents follow from the id and the numbers (`flow_step_name`, ...), so they are
/// made again for the read-back instead of being kept: a record is a few words however many
/// lines and artifacts the plan asks for.
#[derive(Debug, Clone)]
struct FlowRecord {
    id: ExecId,
    /// Steps acknowledged: step-0, step-1, ... in order.
    steps: u32,
    /// Of those, the steps whose log append was not acknowledged (it may or may not be
    /// stored); the others hold `plan.log_lines` lines each.
    logs_unacknowledged: Vec<u32>,
    /// Artifacts sent: artifact-0.txt, ...
    artifacts: u32,
    /// Of those, the ones not acknowledged.
    artifacts_unacknowledged: Vec<u32>,
    completed: bool,
}

fn flow_step_name(s: u32) -> String {
    format!("step-{s}")
}

fn flow_log_lines(id: &ExecId, s: u32, lines: u32) -> Vec<String> {
    (0..lines)
        .map(|l| format!("execution {id} step {s} line {l}"))
        .collect()
}

fn flow_artifact(id: &ExecId, a: u32) -> (String, String) {
    (
        format!("artifact-{a}.txt"),
        format!("output {a} of execution {id}\n").repeat(4),
    )
}

/// The real-world flow: executions created, stepped through with status updates and logs,
/// given artifacts and completed, with `concurrency` executions in flight.
async fn run_flow(i: usize, threads: usize, shared: &Arc<Shared>, plan: &FlowPlan) -> ThreadOut {
    let concurrency = match shared.config.load {
        Load::Closed { concurrency } => concurrency,
        Load::Open { max_in_flight, .. } => max_in_flight,
    };
    let workers = share(u64::from(concurrency), threads, i);
    let Some(start) = shared.sync_start() else {
        return ThreadOut::nothing(FLOW_OPS.len(), Book::default());
    };
    if i == 0 {
        set_phase(shared, |p| p.measure_start = Some(start));
    }
    let rec = Rc::new(RefCell::new(Rec::new(
        FLOW_OPS.len(),
        start,
        Arc::clone(&shared.control),
    )));
    let flows = Rc::new(RefCell::new(Vec::new()));
    tokio::time::sleep_until(start.into()).await;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (shared, rec, flows, plan) = (
            Arc::clone(shared),
            Rc::clone(&rec),
            Rc::clone(&flows),
            *plan,
        );
        tasks.push(tokio::task::spawn_local(async move {
            let mut t = shared.transport();
            loop {
                let n = shared.next_flow.fetch_add(1, Ordering::Relaxed);
                if n >= u64::from(plan.executions) || shared.control.stopped() {
                    break;
                }
                let began = Instant::now();
                let record = one_flow(n, &plan, &mut t, &shared, &rec).await;
                // An execution cut short by the stop is neither a success nor a failure.
                if shared.control.stopped() {
                    break;
                }
                let outcome = match &record {
                    Some(r) if r.completed => Ok(()),
                    _ => Err(CallError::Decode("the execution did not complete".into())),
                };
                rec.borrow_mut()
                    .record(0, began, began, Instant::now(), &outcome);
                if let Some(r) = record {
                    flows.borrow_mut().push(r);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mine = start.elapsed();
    set_phase(shared, |p| {
        p.planned = Some(p.planned.map_or(mine, |d| d.max(mine)))
    });
    let rec = take_rc(rec);
    ThreadOut {
        ops: rec.ops,
        error_kinds: rec.error_kinds,
        series: rec.series,
        book: Book::default(),
        created: Vec::new(),
        flows: take_rc(flows),
        max_lag: Duration::ZERO,
    }
}

async fn timed_call(
    op: usize,
    t: &mut AnyTransport,
    shared: &Shared,
    rec: &RefCell<Rec>,
    call: Call,
) -> Result<Reply, CallError> {
    let sent = Instant::now();
    let r = t.call(&call).await;
    shared.control.note(&r);
    rec.borrow_mut().record(op, sent, sent, Instant::now(), &r);
    r
}

/// One execution's life; returns what was acknowledged (None if it was never created).
async fn one_flow(
    n: u64,
    plan: &FlowPlan,
    t: &mut AnyTransport,
    shared: &Shared,
    rec: &RefCell<Rec>,
) -> Option<FlowRecord> {
    let id = match timed_call(
        1,
        t,
        shared,
        rec,
        Call::Create {
            name: format!("flow-{n}"),
        },
    )
    .await
    {
        Ok(Reply::Created { id }) => id,
        _ => return None,
    };
    let mut record = FlowRecord {
        id: id.clone(),
        steps: 0,
        logs_unacknowledged: Vec::new(),
        artifacts: 0,
        artifacts_unacknowledged: Vec::new(),
        completed: false,
    };
    let mut all_ok = true;
    for s in 0..plan.steps {
        let name = flow_step_name(s);
        let index = match timed_call(
            2,
            t,
            shared,
            rec,
            Call::AddStep {
                id: id.clone(),
                name: name.clone(),
            },
        )
        .await
        {
            Ok(Reply::StepAdded { index }) => index,
            _ => return Some(record),
        };
        record.steps += 1;
        all_ok &= timed_call(
            3,
            t,
            shared,
            rec,
            Call::UpdateStep {
                id: id.clone(),
                index,
                status: Status::Running,
            },
        )
        .await
        .is_ok();
        if plan.log_lines > 0 {
            let lines = flow_log_lines(&id, s, plan.log_lines);
            let appended = timed_call(
                4,
                t,
                shared,
                rec,
                Call::AppendLogs {
                    id: id.clone(),
                    index,
                    lines,
                },
            )
            .await
            .is_ok();
            if !appended {
                record.logs_unacknowledged.push(s);
                all_ok = false;
            }
        }
        all_ok &= timed_call(
            3,
            t,
            shared,
            rec,
            Call::UpdateStep {
                id: id.clone(),
                index,
                status: Status::Completed,
            },
        )
        .await
        .is_ok();
    }
    for a in 0..plan.artifacts {
        let (name, content) = flow_artifact(&id, a);
        record.artifacts += 1;
        let added = timed_call(
            5,
            t,
            shared,
            rec,
            Call::AddArtifact {
                id: id.clone(),
                name,
                content,
            },
        )
        .await
        .is_ok();
        if !added {
            record.artifacts_unacknowledged.push(a);
            all_ok = false;
        }
    }
    if timed_call(
        6,
        t,
        shared,
        rec,
        Call::UpdateStatus {
            id: id.clone(),
            status: Status::Completed,
        },
    )
    .await
    .is_ok()
    {
        record.completed = all_ok;
    }
    Some(record)
}

/// After the load: integrity checks and kind-specific figures.
fn finish(
    shared: &Shared,
    outs: &[ThreadOut],
    extra: &mut serde_json::Map<String, serde_json::Value>,
    warnings: &mut Vec<String>,
) -> Option<Integrity> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build runtime");
    let local = tokio::task::LocalSet::new();
    match &shared.config.workload {
        Workload::Mix(ops) => {
            let writes = ops.iter().any(|o| {
                matches!(&o.spec, OperationSpec::BuiltIn { kind, .. } if matches!(kind,
                    OpKind::CreateExecution | OpKind::UpdateStatus | OpKind::AddStep
                    | OpKind::UpdateStep | OpKind::AppendLogs | OpKind::AddArtifact))
            });
            if !writes {
                return None;
            }
            let books: Vec<&Book> = outs.iter().map(|o| &o.book).collect();
            let acknowledged = books.iter().map(|b| b.acknowledged()).sum();
            let checks: Vec<Check> = books.iter().flat_map(|b| b.checks()).collect();
            read_back(shared, acknowledged, warnings, |warnings| {
                local.block_on(&rt, async {
                    let (mut integrity, step_counts) =
                        verify_books(shared, &books, warnings).await?;
                    let mut all = checks;
                    all.extend(step_counts);
                    let more = run_checks(shared, all).await?;
                    integrity.checked += more.checked;
                    integrity.lost_writes += more.lost_writes;
                    integrity.details.extend(more.details);
                    integrity.details.truncate(10);
                    Ok(integrity)
                })
            })
        }
        Workload::Burst { count } => {
            let created: Vec<ExecId> = outs
                .iter()
                .flat_map(|o| o.created.iter().cloned())
                .collect();
            extra.insert("requested".into(), (*count).into());
            extra.insert("created".into(), created.len().into());
            read_back(shared, created.len() as u64, warnings, |warnings| {
                local.block_on(&rt, verify_listed(shared, &created, warnings))
            })
        }
        Workload::Flow(plan) => {
            let flows: Vec<&FlowRecord> = outs.iter().flat_map(|o| o.flows.iter()).collect();
            extra.insert("executions_planned".into(), plan.executions.into());
            extra.insert(
                "executions_completed".into(),
                flows.iter().filter(|f| f.completed).count().into(),
            );
            let mut t = shared.transport();
            read_back(shared, flows.len() as u64, warnings, |warnings| {
                rt.block_on(verify_flows(&mut t, plan, &flows, warnings))
            })
        }
        Workload::PerEndpoint(_) => None,
    }
}

/// Reads back what `executions` executions were acknowledged to hold, with `check`; the
/// progress line shows it meanwhile. A read-back that could not reach the target proves
/// nothing either way: the writes are reported as unverified (a warning, and the run is
/// aborted so it cannot pass), never as lost — the monitor keeps every acknowledged write
/// across a crash.
fn read_back(
    shared: &Shared,
    executions: u64,
    warnings: &mut Vec<String>,
    check: impl FnOnce(&mut Vec<String>) -> Result<Integrity, CallError>,
) -> Option<Integrity> {
    set_phase(shared, |p| p.verifying = Some((Instant::now(), executions)));
    match check(warnings) {
        Ok(integrity) => Some(integrity),
        Err(e) => {
            let why = format!(
                "integrity not checked: the acknowledged writes to {executions} executions could \
                 not be read back ({e})"
            );
            warnings.push(why.clone());
            shared.control.abort(why);
            None
        }
    }
}

/// Page size asked of the execution list during read-back (the contract's largest), and the
/// one tried when a service refuses that.
const PAGE_LIMIT: u32 = 1000;
const SMALL_PAGE_LIMIT: u32 = 100;

/// What the service stores of the executions wanted.
#[derive(Debug, Default)]
struct Stored {
    rows: HashMap<ExecId, ExecutionRow>,
    /// Found by id but not in the list.
    unlisted: u64,
}

/// Reads what the service stores of `wanted`: the execution list page by page until every
/// wanted id has been seen or the list ends, then each id the list did not show on its own.
/// Neither ids nor the list's order are assumed to mean anything (a list sorted by a
/// coarse `created_at` can even shift between pages), so only an answer for the id itself
/// can say an execution is missing.
async fn stored_rows(shared: &Shared, wanted: &HashSet<ExecId>) -> Result<Stored, CallError> {
    let mut t = shared.transport();
    let mut stored = Stored::default();
    let mut limit = PAGE_LIMIT;
    let mut offset = 0u64;
    // Every id listed so far: a page with none new means the service ignores `offset`,
    // and paging on would never end.
    let mut listed: HashSet<ExecId> = HashSet::new();
    while stored.rows.len() < wanted.len() {
        let page = match answered(t.page(limit, offset).await)? {
            Ok(page) => page,
            // A service with a smaller cap on `limit` may refuse the contract's largest.
            Err(CallError::Status {
                status: 400 | 422, ..
            }) if limit == PAGE_LIMIT && offset == 0 => {
                limit = SMALL_PAGE_LIMIT;
                continue;
            }
            // A list that cannot be read leaves every id to be looked up on its own.
            Err(_) => break,
        };
        let n = page.executions.len() as u64;
        offset += n;
        let mut new = false;
        for row in page.executions {
            new |= listed.insert(row.id.clone());
            if wanted.contains(&row.id) {
                stored.rows.insert(row.id.clone(), row);
            }
        }
        if !new {
            break;
        }
        let ended = match page.total {
            Some(total) => offset >= total,
            // Without a total, a short page is the last (or the service caps page sizes,
            // and the lookups below make up for it).
            None => n < u64::from(limit),
        };
        if n == 0 || ended {
            break;
        }
    }
    let unseen: Vec<ExecId> = wanted
        .iter()
        .filter(|id| !stored.rows.contains_key(*id))
        .cloned()
        .collect();
    let found = look_up(shared, unseen).await?;
    stored.unlisted = found.len() as u64;
    stored
        .rows
        .extend(found.into_iter().map(|r| (r.id.clone(), r)));
    Ok(stored)
}

/// Reads each execution on its own, a few connections at once; returns those that exist.
async fn look_up(shared: &Shared, ids: Vec<ExecId>) -> Result<Vec<ExecutionRow>, CallError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let queue = Rc::new(RefCell::new(ids));
    let tasks: Vec<_> = (0..CHECK_CONNECTIONS)
        .map(|_| {
            let (queue, mut t) = (Rc::clone(&queue), shared.transport());
            tokio::task::spawn_local(async move {
                let mut found = Vec::new();
                loop {
                    let next = queue.borrow_mut().pop();
                    let Some(id) = next else { break };
                    // A 404, or an answer that is no execution, leaves it missing.
                    if let Ok(detail) = answered(t.execution(&id).await)? {
                        found.push(detail.row(id));
                    }
                }
                Ok::<_, CallError>(found)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("read-back task")?);
    }
    Ok(all)
}

fn note_unlisted(stored: &Stored, warnings: &mut Vec<String>) {
    if stored.unlisted > 0 {
        warnings.push(format!(
            "{} acknowledged executions were not in GET /api/executions but were found by id \
             (an unstable list order or a capped page size); they count as stored",
            stored.unlisted
        ));
    }
}

/// The executions' rows against every book; step counts the rows do not show come back as
/// checks to read from the executions.
async fn verify_books(
    shared: &Shared,
    books: &[&Book],
    warnings: &mut Vec<String>,
) -> Result<(Integrity, Vec<Check>), CallError> {
    let wanted: HashSet<ExecId> = books.iter().flat_map(|b| b.ids()).cloned().collect();
    if wanted.is_empty() {
        return Ok((Integrity::default(), Vec::new()));
    }
    let stored = stored_rows(shared, &wanted).await?;
    note_unlisted(&stored, warnings);
    let mut integrity = Integrity::default();
    let mut step_counts = Vec::new();
    for b in books {
        let v = b.verify(&stored.rows);
        integrity.checked += v.checked;
        integrity.lost_writes += v.lost;
        integrity.details.extend(v.notes);
        step_counts.extend(v.step_counts);
    }
    integrity.details.truncate(10);
    Ok((integrity, step_counts))
}

/// Connections the read-back of log lines, artifacts and step statuses uses at once.
const CHECK_CONNECTIONS: usize = 8;

/// Carries out the per-step and per-execution read-backs over a few connections at once.
async fn run_checks(shared: &Shared, checks: Vec<Check>) -> Result<Integrity, CallError> {
    let queue = Rc::new(RefCell::new(checks));
    let tasks: Vec<_> = (0..CHECK_CONNECTIONS)
        .map(|_| {
            let (queue, mut t) = (Rc::clone(&queue), shared.transport());
            tokio::task::spawn_local(async move {
                let mut integrity = Integrity::default();
                loop {
                    let next = queue.borrow_mut().pop();
                    let Some(check) = next else { break };
                    integrity.checked += check.writes();
                    if let Some(problem) = run_check(&mut t, &check).await? {
                        integrity.lost_writes += 1;
                        if integrity.details.len() < 10 {
                            integrity.details.push(problem);
                        }
                    }
                }
                Ok::<_, CallError>(integrity)
            })
        })
        .collect();
    let mut all = Integrity::default();
    for task in tasks {
        let part = task.await.expect("read-back task")?;
        all.checked += part.checked;
        all.lost_writes += part.lost_writes;
        all.details.extend(part.details);
    }
    Ok(all)
}

/// An answer that arrived (404, wrong content) is evidence; no answer is not.
fn answered<T>(r: Result<T, CallError>) -> Result<Result<T, CallError>, CallError> {
    match r {
        Err(e @ (CallError::Client(_) | CallError::Stopped)) => Err(e),
        other => Ok(other),
    }
}

/// One read-back; `Some(description)` when the stored data falls short of what was
/// acknowledged. Connection failures are errors (unverified), never losses.
async fn run_check(t: &mut AnyTransport, check: &Check) -> Result<Option<String>, CallError> {
    let short = |stored: u64, wanted: u64, at_least: bool| {
        if at_least {
            stored < wanted
        } else {
            stored != wanted
        }
    };
    Ok(match check {
        Check::Logs {
            id,
            index,
            lines,
            at_least,
        } => match answered(t.logs(id, *index).await)? {
            Ok(read) if !short(read.len() as u64, *lines, *at_least) => None,
            Ok(read) => Some(format!(
                "execution {id} step {index}: {lines} log lines acknowledged, {} stored",
                read.len()
            )),
            Err(e) => Some(format!("execution {id} step {index} logs: {e}")),
        },
        Check::Artifacts {
            id,
            count,
            at_least,
        } => match answered(t.artifacts(id).await)? {
            Ok(read) if !short(read.len() as u64, *count, *at_least) => None,
            Ok(read) => Some(format!(
                "execution {id}: {count} artifacts acknowledged, {} stored",
                read.len()
            )),
            Err(e) => Some(format!("execution {id} artifacts: {e}")),
        },
        Check::StepStatuses { id, steps } => match answered(t.execution(id).await)? {
            Ok(detail) => steps.iter().find_map(|(index, track)| {
                let stored = detail.steps.iter().find(|s| s.index == *index);
                match stored {
                    Some(s) if track.accepts(&s.status) => None,
                    Some(s) => Some(format!(
                        "execution {id} step {index}: status {:?} acknowledged, {:?} stored",
                        track.expected().as_str(),
                        s.status
                    )),
                    None => Some(format!("execution {id} step {index} missing")),
                }
            }),
            Err(e) => Some(format!("execution {id}: {e}")),
        },
        Check::StepCount { id, count } => match answered(t.execution(id).await)? {
            Ok(detail) if detail.steps.len() as u64 >= *count => None,
            Ok(detail) => Some(format!(
                "execution {id}: {count} steps acknowledged, {} stored",
                detail.steps.len()
            )),
            Err(e) => Some(format!("execution {id}: {e}")),
        },
    })
}

async fn verify_listed(
    shared: &Shared,
    created: &[ExecId],
    warnings: &mut Vec<String>,
) -> Result<Integrity, CallError> {
    let wanted: HashSet<ExecId> = created.iter().cloned().collect();
    if wanted.is_empty() {
        return Ok(Integrity::default());
    }
    let stored = stored_rows(shared, &wanted).await?;
    note_unlisted(&stored, warnings);
    let missing: Vec<&ExecId> = created
        .iter()
        .filter(|id| !stored.rows.contains_key(*id))
        .collect();
    Ok(Integrity {
        checked: created.len() as u64,
        lost_writes: missing.len() as u64,
        details: missing
            .iter()
            .take(10)
            .map(|id| format!("execution {id} acknowledged but not stored"))
            .collect(),
    })
}

async fn verify_flows(
    t: &mut AnyTransport,
    plan: &FlowPlan,
    flows: &[&FlowRecord],
    warnings: &mut Vec<String>,
) -> Result<Integrity, CallError> {
    let mut integrity = Integrity::default();
    let lost = |what: String, integrity: &mut Integrity| {
        integrity.lost_writes += 1;
        if integrity.details.len() < 10 {
            integrity.details.push(what);
        }
    };
    for f in flows {
        integrity.checked += 1;
        let detail = match answered(t.execution(&f.id).await)? {
            Ok(d) => d,
            Err(e) => {
                lost(format!("execution {}: {e}", f.id), &mut integrity);
                continue;
            }
        };
        if f.completed && detail.status != "completed" {
            lost(
                format!(
                    "execution {}: status {} instead of completed",
                    f.id, detail.status
                ),
                &mut integrity,
            );
        }
        for step in 0..f.steps {
            let index = step as usize;
            let acknowledged = !f.logs_unacknowledged.contains(&step);
            let lines = flow_log_lines(&f.id, step, plan.log_lines);
            integrity.checked += 1 + if acknowledged { lines.len() as u64 } else { 0 };
            match detail.steps.get(index) {
                Some(s) if s.name == flow_step_name(step) => {}
                _ => {
                    lost(
                        format!("execution {}: step {index} missing", f.id),
                        &mut integrity,
                    );
                    continue;
                }
            }
            match answered(t.logs(&f.id, i64::from(step)).await)? {
                Ok(read) if read == lines => {}
                // An append that failed may or may not have been applied.
                Ok(read) if !acknowledged && read.is_empty() => {}
                Ok(read) => lost(
                    format!(
                        "execution {} step {index}: {} log lines stored, {} acknowledged",
                        f.id,
                        read.len(),
                        lines.len()
                    ),
                    &mut integrity,
                ),
                Err(e) => lost(
                    format!("execution {} step {index} logs: {e}", f.id),
                    &mut integrity,
                ),
            }
        }
        let artifacts: Vec<u32> = (0..f.artifacts)
            .filter(|a| !f.artifacts_unacknowledged.contains(a))
            .collect();
        integrity.checked += artifacts.len() as u64;
        match answered(t.artifacts(&f.id).await)? {
            Ok(read) => {
                for a in artifacts {
                    let (name, content) = flow_artifact(&f.id, a);
                    // A list that leaves contents out is matched by name.
                    let stored = read.iter().any(|a| {
                        a.name == name && a.content.as_ref().is_none_or(|c| *c == content)
                    });
                    if !stored {
                        lost(
                            format!("execution {}: artifact {name} missing", f.id),
                            &mut integrity,
                        );
                    }
                }
            }
            Err(e) => lost(format!("execution {} artifacts: {e}", f.id), &mut integrity),
        }
    }
    if integrity.lost_writes > 0 {
        warnings.push(format!(
            "{} acknowledged writes were not read back",
            integrity.lost_writes
        ));
    }
    Ok(integrity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::scenario::OpParams;

    #[test]
    fn measured_windows_by_model() {
        let open = Load::Open {
            rate_per_s: 100.0,
            max_in_flight: 10,
        };
        let closed = Load::Closed { concurrency: 4 };
        let s = Duration::from_secs_f64;
        // (load, planned, until the last answer, cut short, window)
        for (load, planned, last, cut, want) in [
            (open, 10.0, 14.0, false, 14.0), // answers lagging: counted until the last
            (open, 10.0, 10.01, false, 10.01),
            (open, 10.0, 4.0, true, 4.0), // Ctrl-C after 4 s: not the planned 10
            (closed, 10.0, 10.2, false, 10.0), // each worker's last request is incidental
            (closed, 10.0, 4.0, true, 4.0),
        ] {
            assert_eq!(measured_window(load, s(planned), s(last), cut), s(want));
        }
    }

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for (total, parts) in [(10, 3), (1, 4), (0, 2), (10_000, 2), (7, 7)] {
            let s: Vec<u64> = (0..parts).map(|i| share(total, parts, i)).collect();
            assert_eq!(s.iter().sum::<u64>(), total, "{s:?}");
            assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn picker_follows_weights() {
        let op = |name: &str, weight| Operation {
            name: name.into(),
            weight,
            spec: OperationSpec::BuiltIn {
                kind: OpKind::Health,
                params: OpParams::default(),
            },
        };
        let picker = Picker::new(&[op("a", 1), op("b", 3)]);
        let mut rng = Rng::new(42);
        let mut counts = [0u32; 2];
        for _ in 0..40_000 {
            counts[picker.pick(&mut rng)] += 1;
        }
        let share_b = f64::from(counts[1]) / 40_000.0;
        assert!((0.72..0.78).contains(&share_b), "{counts:?}");
    }
}
