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

/// Counters the progress line reads while the run goes on.
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    /// Requests sent and not yet answered (sampled for the Little's-law check).
    pub in_flight: AtomicU64,
    /// Closed model with a shape: workers running now (sampled for the planned-vs-achieved
    /// series).
    pub active_workers: AtomicU64,
    /// Latencies so far, microseconds, 2 significant digits: one histogram per recorder,
    /// so a generator thread never waits for another's lock.
    pub(super) hists: Mutex<Vec<Arc<Mutex<Histogram<u64>>>>>,
}

impl Live {
    pub(super) fn register(&self) -> Arc<Mutex<Histogram<u64>>> {
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
                in_flight: AtomicU64::new(0),
                active_workers: AtomicU64::new(0),
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
