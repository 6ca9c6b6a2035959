//! Recording: each generator thread's recorders, what a thread hands back, and what a whole
//! run measured.

use super::*;

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
    /// A shaped run: all operations together, one recorder per stage (by when each request
    /// was due, or sent in the closed model).
    pub stages: Vec<Recorder>,
    /// How late requests were sent after they were due, nanoseconds (open model; 0 in the
    /// closed model, where a request is due when it is sent).
    pub lateness: Histogram<u64>,
    /// Requests sent in each second of the measured window (index 0: [0 s, 1 s)).
    pub sends: Vec<u64>,
    /// How far the open model's sends fell behind their schedule at worst (requests held
    /// back by a full queue excepted).
    pub max_lag: Duration,
}

/// Per-thread recording.
pub(super) struct Rec {
    pub(super) ops: Vec<Recorder>,
    pub(super) series: TimeSeries,
    pub(super) error_kinds: BTreeMap<String, u64>,
    pub(super) measure_start: Instant,
    pub(super) control: Arc<Control>,
    pub(super) live: Arc<Mutex<LiveRec>>,
    /// A shaped run: the shape and when its time starts (the load's start, warm-up
    /// included), and a recorder per stage.
    pub(super) shape: Option<(Arc<Shape>, Instant)>,
    pub(super) stages: Vec<Recorder>,
    pub(super) lateness: Histogram<u64>,
    pub(super) sends: Vec<u64>,
}

impl Rec {
    pub(super) fn new(n: usize, measure_start: Instant, control: Arc<Control>) -> Rec {
        Rec {
            ops: (0..n).map(|_| Recorder::new()).collect(),
            series: TimeSeries::new(),
            error_kinds: BTreeMap::new(),
            measure_start,
            live: control.live.register(n),
            control,
            shape: None,
            stages: Vec::new(),
            lateness: crate::metrics::new_latency_histogram(),
            sends: Vec::new(),
        }
    }

    /// Also records each request under the stage of `shape` it was due in.
    pub(super) fn with_shape(mut self, shape: Option<&Arc<Shape>>, start: Instant) -> Rec {
        if let Some(shape) = shape {
            self.stages = (0..shape.stages()).map(|_| Recorder::new()).collect();
            self.shape = Some((Arc::clone(shape), start));
        }
        self
    }

    /// Latency runs from the intended send time; samples scheduled before the measured
    /// window (warm-up) are dropped.
    pub(super) fn record<T>(
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
        self.lateness
            .saturating_record(nanos(sent.saturating_duration_since(intended)));
        let second = sent.saturating_duration_since(self.measure_start).as_secs() as usize;
        if second < 7 * 86_400 {
            if self.sends.len() <= second {
                self.sends.resize(second + 1, 0);
            }
            self.sends[second] += 1;
        }
        if let Some((shape, start)) = &self.shape {
            if let Some(stage) = shape.stage_at(intended.saturating_duration_since(*start)) {
                let r = &mut self.stages[stage];
                if ok {
                    r.record_ok(latency, nanos(done - sent));
                } else {
                    r.record_error(latency);
                }
            }
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
        if let Ok(mut h) = self.live.lock() {
            h.record(op, (latency / 1000).max(1), ok);
        }
    }
}

/// The value behind an `Rc` once every task that shared it has finished.
pub(super) fn take_rc<T>(rc: Rc<RefCell<T>>) -> T {
    match Rc::try_unwrap(rc) {
        Ok(cell) => cell.into_inner(),
        Err(_) => unreachable!("every task holding a clone has finished"),
    }
}

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `t + d`, or a century after `t` where that is not representable. Scenario bounds keep
/// every configured duration far below that; this keeps a slip from being a panic.
pub(super) fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(t)
}

/// What a thread hands back.
pub(super) struct ThreadOut {
    pub(super) ops: Vec<Recorder>,
    pub(super) error_kinds: BTreeMap<String, u64>,
    pub(super) series: TimeSeries,
    pub(super) book: Book,
    pub(super) created: Vec<ExecId>,
    pub(super) flows: Vec<FlowRecord>,
    pub(super) max_lag: Duration,
    pub(super) stages: Vec<Recorder>,
    pub(super) lateness: Histogram<u64>,
    pub(super) sends: Vec<u64>,
}

impl ThreadOut {
    /// What a thread that ran a whole-run phase (a burst, a flow) hands back, once the
    /// phase lasted `mine` on it: the phase's planned length is the longest thread's.
    pub(super) fn finished(
        shared: &Shared,
        mine: Duration,
        rec: Rc<RefCell<Rec>>,
        created: Vec<ExecId>,
        flows: Vec<FlowRecord>,
    ) -> ThreadOut {
        set_phase(shared, |p| {
            p.planned = Some(p.planned.map_or(mine, |d| d.max(mine)))
        });
        let rec = take_rc(rec);
        ThreadOut {
            ops: rec.ops,
            error_kinds: rec.error_kinds,
            series: rec.series,
            book: Book::default(),
            created,
            flows,
            max_lag: Duration::ZERO,
            stages: rec.stages,
            lateness: rec.lateness,
            sends: rec.sends,
        }
    }

    /// A thread that measured nothing (the run stopped during set-up).
    pub(super) fn nothing(ops: usize, book: Book) -> ThreadOut {
        ThreadOut {
            ops: (0..ops).map(|_| Recorder::new()).collect(),
            error_kinds: BTreeMap::new(),
            series: TimeSeries::new(),
            book,
            created: Vec::new(),
            flows: Vec::new(),
            max_lag: Duration::ZERO,
            stages: Vec::new(),
            lateness: crate::metrics::new_latency_histogram(),
            sends: Vec::new(),
        }
    }
}
