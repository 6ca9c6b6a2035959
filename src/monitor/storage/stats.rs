//! The storage layer's own timings: per-operation DB latency, group-commit batch sizes, queue depth.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The kinds of database work the monitor times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbOp {
    Insert,
    PointSelect,
    List,
    Update,
    Commit,
    /// A WAL checkpoint on the background checkpointer.
    Checkpoint,
    /// `PRAGMA shrink_memory` on the writer.
    ShrinkMemory,
    /// The writer's own RESTART checkpoint when the WAL reached its limit.
    WalRestart,
}

impl DbOp {
    const ALL: [DbOp; 8] = [
        DbOp::Insert,
        DbOp::PointSelect,
        DbOp::List,
        DbOp::Update,
        DbOp::Commit,
        DbOp::Checkpoint,
        DbOp::ShrinkMemory,
        DbOp::WalRestart,
    ];

    fn name(self) -> &'static str {
        match self {
            DbOp::Insert => "insert",
            DbOp::PointSelect => "point_select",
            DbOp::List => "list",
            DbOp::Update => "update",
            DbOp::Commit => "commit",
            DbOp::Checkpoint => "checkpoint",
            DbOp::ShrinkMemory => "shrink_memory",
            DbOp::WalRestart => "wal_restart",
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Nanoseconds up to one minute, 3 significant digits; fixed size so memory stays bounded.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Shared by the writer thread, the readers and the stats endpoint.
pub struct DbStats {
    /// One lock per operation kind: the writer and the readers record different kinds.
    ops: Vec<Mutex<Histogram<u64>>>,
    batch_sizes: Mutex<Histogram<u64>>,
    queue_depth: AtomicI64,
    wal: WalCounters,
}

/// What the checkpointer has seen of the write-ahead log.
#[derive(Default)]
struct WalCounters {
    /// Pages in the WAL after the last checkpoint.
    pages_after_checkpoint: AtomicI64,
    /// Largest WAL, pages, the checkpointer has found.
    pages_peak: AtomicI64,
    /// RESTART checkpoints the writer ran because the WAL reached its hard limit.
    forced: AtomicI64,
}

impl Default for DbStats {
    fn default() -> Self {
        DbStats {
            ops: DbOp::ALL.iter().map(|_| Mutex::new(histogram())).collect(),
            batch_sizes: Mutex::new(
                Histogram::new_with_bounds(1, 1_000_000, 3).expect("valid histogram bounds"),
            ),
            queue_depth: AtomicI64::new(0),
            wal: WalCounters::default(),
        }
    }
}

/// Latency summary of one DB operation kind, microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct DbOpSummary {
    pub count: u64,
    /// Mean latency, microseconds.
    pub mean_us: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 90th percentile latency, microseconds.
    pub p90_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Largest latency seen, microseconds.
    pub max_us: f64,
}

/// Group-commit behaviour: how many queued writes each transaction carried.
#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    pub batches: u64,
    pub writes: u64,
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// A point-in-time copy of [`DbStats`].
#[derive(Debug, Clone, Serialize)]
pub struct DbStatsSnapshot {
    pub operations: BTreeMap<&'static str, DbOpSummary>,
    pub group_commit: BatchSummary,
    /// Writes queued for the writer thread and not yet taken into a batch.
    pub writer_queue_depth: i64,
    pub wal: WalSummary,
}

/// The write-ahead log as the background checkpointer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct WalSummary {
    /// WAL size, pages, at which the writer wakes the checkpointer.
    pub checkpoint_threshold_pages: i64,
    /// WAL size, pages, at which the writer stops and restarts the WAL from its beginning.
    pub hard_limit_pages: i64,
    /// Pages left in the WAL after the last checkpoint (0: fully copied back).
    pub pages_after_last_checkpoint: i64,
    /// Largest WAL the checkpointer found, pages.
    pub peak_pages: i64,
    /// RESTART checkpoints the writer ran at the hard limit (timed as `wal_restart`).
    pub forced_checkpoints: i64,
}

impl DbStats {
    pub fn record(&self, op: DbOp, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mut h = self.ops[op as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        h.saturating_record(ns.max(1));
    }

    pub fn record_batch(&self, size: usize) {
        let mut h = self.batch_sizes.lock().unwrap_or_else(|e| e.into_inner());
        h.saturating_record(size.max(1) as u64);
    }

    /// Records one checkpoint's outcome: the WAL's size and what was left of it, pages.
    pub fn record_checkpoint(&self, wal_pages: i64, left_pages: i64, forced: bool) {
        let wal = &self.wal;
        wal.pages_after_checkpoint
            .store(left_pages, Ordering::Relaxed);
        wal.pages_peak.fetch_max(wal_pages, Ordering::Relaxed);
        if forced {
            wal.forced.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn queued(&self, n: i64) {
        self.queue_depth.fetch_add(n, Ordering::Relaxed);
    }

    /// Each operation's counts at or below each of `bounds_ns` (not cumulative: the count
    /// between one bound and the next, the last entry for values above every bound), with the
    /// total count and the sum, nanoseconds: for Prometheus histograms. A value is placed by
    /// the top of its HDR bucket (3 significant digits), so never under a bound it exceeds.
    pub fn op_buckets(&self, bounds_ns: &[u64]) -> Vec<(&'static str, Vec<u64>, u64, f64)> {
        DbOp::ALL
            .iter()
            .map(|&op| {
                let h = self.ops[op as usize]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let (counts, sum) = bucketed(&h, bounds_ns);
                (op.name(), counts, h.len(), sum)
            })
            .collect()
    }

    /// Group-commit batch sizes the same way as [`DbStats::op_buckets`].
    pub fn batch_buckets(&self, bounds: &[u64]) -> (Vec<u64>, u64, f64) {
        let h = self.batch_sizes.lock().unwrap_or_else(|e| e.into_inner());
        let (counts, sum) = bucketed(&h, bounds);
        (counts, h.len(), sum)
    }

    pub fn snapshot(&self) -> DbStatsSnapshot {
        let operations = DbOp::ALL
            .iter()
            .map(|&op| {
                let h = self.ops[op as usize]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let us = |ns: u64| ns as f64 / 1000.0;
                let summary = DbOpSummary {
                    count: h.len(),
                    mean_us: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
                    p50_us: us(h.value_at_quantile(0.50)),
                    p90_us: us(h.value_at_quantile(0.90)),
                    p99_us: us(h.value_at_quantile(0.99)),
                    max_us: us(h.max()),
                };
                (op.name(), summary)
            })
            .collect();
        let b = self.batch_sizes.lock().unwrap_or_else(|e| e.into_inner());
        let writes = b
            .iter_recorded()
            .map(|v| v.value_iterated_to() * v.count_at_value())
            .sum();
        let group_commit = BatchSummary {
            batches: b.len(),
            writes,
            mean: if b.is_empty() { 0.0 } else { b.mean() },
            p50: b.value_at_quantile(0.50),
            p99: b.value_at_quantile(0.99),
            max: b.max(),
        };
        DbStatsSnapshot {
            operations,
            group_commit,
            writer_queue_depth: self.queue_depth.load(Ordering::Relaxed),
            // The bounds are the storage's settings; it fills them in.
            wal: WalSummary {
                checkpoint_threshold_pages: 0,
                hard_limit_pages: 0,
                pages_after_last_checkpoint: self
                    .wal
                    .pages_after_checkpoint
                    .load(Ordering::Relaxed),
                peak_pages: self.wal.pages_peak.load(Ordering::Relaxed),
                forced_checkpoints: self.wal.forced.load(Ordering::Relaxed),
            },
        }
    }
}

fn bucketed(h: &Histogram<u64>, bounds: &[u64]) -> (Vec<u64>, f64) {
    let mut counts = vec![0u64; bounds.len() + 1];
    let mut sum = 0.0;
    for v in h.iter_recorded() {
        let top = h.highest_equivalent(v.value_iterated_to());
        let i = bounds.partition_point(|b| *b < top);
        counts[i] += v.count_at_value();
        sum += h.median_equivalent(v.value_iterated_to()) as f64 * v.count_at_value() as f64;
    }
    (counts, sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_each_operation_separately() {
        let stats = DbStats::default();
        stats.record(DbOp::Insert, Duration::from_micros(100));
        stats.record(DbOp::Insert, Duration::from_micros(300));
        stats.record(DbOp::Commit, Duration::from_micros(50));
        stats.record_batch(3);
        stats.record_batch(1);
        let snap = stats.snapshot();
        assert_eq!(snap.operations["insert"].count, 2);
        assert_eq!(snap.operations["commit"].count, 1);
        assert_eq!(snap.operations["list"].count, 0);
        assert!((snap.operations["insert"].max_us - 300.0).abs() < 1.0);
        assert_eq!(snap.group_commit.batches, 2);
        assert_eq!(snap.group_commit.writes, 4);
        assert_eq!(snap.group_commit.max, 3);
    }
}
