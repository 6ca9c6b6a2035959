//! Run control: stop and abort flags, the run's phase and the live counters the progress
//! line reads.

use super::*;

/// Stop flags and live counters shared by the generator threads and the orchestrator.
pub struct Control {
    pub(super) stop: AtomicBool,
    /// Wakes everything waiting in `until_stopped` when the run stops.
    pub(super) wake: tokio::sync::Notify,
    pub(super) abort: Mutex<Option<String>>,
    pub(super) consecutive_failures: AtomicU64,
    pub(super) max_consecutive_failures: u64,
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

impl Phase {
    /// The run's phase at `now`: set-up, warm-up, measured or read-back.
    pub fn name_at(&self, now: Instant) -> &'static str {
        match (self.measure_start, self.warmup_until, self.verifying) {
            (_, _, Some(_)) => "read-back",
            (_, Some(w), _) if now < w => "warm-up",
            (Some(m), _, _) if now >= m => "measured",
            _ => "set-up",
        }
    }

    /// Seconds from the measured window's start to `now` (negative before it); None before
    /// the start is known.
    pub fn seconds_at(&self, now: Instant) -> Option<f64> {
        let m = self.measure_start?;
        Some(if now >= m {
            (now - m).as_secs_f64()
        } else {
            -(m - now).as_secs_f64()
        })
    }
}

/// Counters the progress line and the live stream read while the run goes on.
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    /// Requests sent and not yet answered (sampled for the Little's-law check).
    pub in_flight: AtomicU64,
    /// Closed model with a shape: workers running now (sampled for the planned-vs-achieved
    /// series).
    pub active_workers: AtomicU64,
    /// One per recorder, so a generator thread never waits for another's lock (the reader
    /// takes each once a second).
    pub(super) recs: Mutex<Vec<Arc<Mutex<LiveRec>>>>,
}

/// What one recorder has measured so far, microseconds, 2 significant digits.
pub struct LiveRec {
    /// Every measured latency so far.
    pub(super) all: Histogram<u64>,
    /// Since the stream last took them: each operation's successes and error count.
    pub(super) second: Vec<Histogram<u64>>,
    pub(super) second_errors: Vec<u64>,
}

fn live_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds")
}

impl LiveRec {
    pub(super) fn record(&mut self, op: usize, latency_us: u64, ok: bool) {
        self.all.saturating_record(latency_us);
        if ok {
            if let Some(h) = self.second.get_mut(op) {
                h.saturating_record(latency_us);
            }
        } else if let Some(n) = self.second_errors.get_mut(op) {
            *n += 1;
        }
    }
}

/// One operation's second: successes' latency (microseconds) and errors.
#[derive(Debug, Clone)]
pub struct LiveSecond {
    pub ok: Histogram<u64>,
    pub errors: u64,
}

impl Live {
    pub(super) fn register(&self, ops: usize) -> Arc<Mutex<LiveRec>> {
        let h = Arc::new(Mutex::new(LiveRec {
            all: live_histogram(),
            second: (0..ops).map(|_| live_histogram()).collect(),
            second_errors: vec![0; ops],
        }));
        self.recs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&h));
        h
    }

    /// 99th percentile latency of everything measured so far, microseconds.
    pub fn p99_us(&self) -> u64 {
        let recs = self.recs.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = live_histogram();
        for r in recs.iter() {
            let _ = all.add(&r.lock().unwrap_or_else(|e| e.into_inner()).all);
        }
        all.value_at_quantile(0.99)
    }

    /// Each of `ops` operations' figures since the last call, and the counters reset.
    pub fn take_second(&self, ops: usize) -> Vec<LiveSecond> {
        let mut out: Vec<LiveSecond> = (0..ops)
            .map(|_| LiveSecond {
                ok: live_histogram(),
                errors: 0,
            })
            .collect();
        let recs = self.recs.lock().unwrap_or_else(|e| e.into_inner());
        for r in recs.iter() {
            let mut r = r.lock().unwrap_or_else(|e| e.into_inner());
            let LiveRec {
                second,
                second_errors,
                ..
            } = &mut *r;
            for (i, slot) in out.iter_mut().enumerate() {
                if let Some(h) = second.get_mut(i) {
                    let _ = slot.ok.add(&*h);
                    h.reset();
                }
                if let Some(n) = second_errors.get_mut(i) {
                    slot.errors += *n;
                    *n = 0;
                }
            }
        }
        out
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
                recs: Mutex::new(Vec::new()),
                in_flight: AtomicU64::new(0),
                active_workers: AtomicU64::new(0),
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

    pub(super) fn note<T>(&self, result: &Result<T, CallError>) {
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
