//! `GET /metrics`: the server's figures in the Prometheus text format (0.0.4), written by the
//! prometheus-client crate from the monitor's own atomics and histograms at each scrape (a
//! custom collector: nothing is copied into a second set of metrics on the hot path).

use super::instrument::{self, CLASSES, ROUTES};
use super::Perf;
use crate::monitor::process;
use crate::monitor::storage::Storage;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Latency bucket bounds, microseconds: powers of two from 32 µs to about 16.8 s. Each is an
/// edge of the request histograms' own buckets, so the exported counts are exact.
fn latency_bounds_us() -> Vec<u64> {
    (5..=24).map(|p| 1u64 << p).collect()
}

const BATCH_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

struct Scrape {
    perf: Arc<Perf>,
    storage: Storage,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

/// Renders the metrics text.
pub fn render(perf: &Arc<Perf>, storage: &Storage) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        perf: Arc::clone(perf),
        storage: storage.clone(),
    }));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("writing to a String does not fail");
    out
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(requests) = &self.perf.requests {
            let routes = requests.snapshot();
            {
                let mut m = encoder.encode_descriptor(
                    "stepflow_http_requests",
                    "HTTP requests answered, by route pattern and status class.",
                    None,
                    MetricType::Counter,
                )?;
                for (i, r) in routes.iter().enumerate() {
                    for (c, class) in CLASSES.iter().enumerate() {
                        if r.status[c] == 0 {
                            continue;
                        }
                        let labels = [("route", ROUTES[i]), ("status", *class)];
                        m.encode_family(&labels)?
                            .encode_counter::<NoLabelSet, _, u64>(&r.status[c], None)?;
                    }
                }
            }
            let bounds = latency_bounds_us();
            let mut m = encoder.encode_descriptor(
                "stepflow_http_request_duration_seconds",
                "Time from the request reaching the router to its answer head, by route.",
                None,
                MetricType::Histogram,
            )?;
            for (i, r) in routes.iter().enumerate() {
                let count = r.latency.count();
                if count == 0 {
                    continue;
                }
                let mut buckets: Vec<(f64, u64)> =
                    bounds.iter().map(|b| (*b as f64 / 1e6, 0)).collect();
                for (b, n) in r.latency.buckets.iter().enumerate() {
                    if *n == 0 {
                        continue;
                    }
                    // Every value in bucket b is below its upper edge, so at most edge - 1 µs.
                    let top = instrument::bucket_upper_us(b).saturating_sub(1);
                    // Above every bound: counted in +Inf through `count`.
                    if let Some(k) = bounds.iter().position(|x| *x >= top) {
                        buckets[k].1 += n;
                    }
                }
                let labels = [("route", ROUTES[i])];
                m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                    r.latency.sum_ns as f64 / 1e9,
                    count,
                    &buckets,
                    None,
                )?;
            }
        }

        let stats = self.storage.raw_stats();
        let bounds_us = latency_bounds_us();
        let bounds_ns: Vec<u64> = bounds_us.iter().map(|b| b * 1000).collect();
        {
            let mut m = encoder.encode_descriptor(
                "stepflow_db_operation_duration_seconds",
                "Database operation latency, by operation (insert, point_select, list, update, \
                 commit, checkpoint, shrink_memory, wal_restart).",
                None,
                MetricType::Histogram,
            )?;
            for (op, counts, count, sum_ns) in stats.op_buckets(&bounds_ns) {
                if count == 0 {
                    continue;
                }
                let buckets: Vec<(f64, u64)> = bounds_us
                    .iter()
                    .zip(&counts)
                    .map(|(b, n)| (*b as f64 / 1e6, *n))
                    .collect();
                let labels = [("operation", op)];
                m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                    sum_ns / 1e9,
                    count,
                    &buckets,
                    None,
                )?;
            }
        }
        {
            let (counts, count, sum) = stats.batch_buckets(&BATCH_BOUNDS);
            let buckets: Vec<(f64, u64)> = BATCH_BOUNDS
                .iter()
                .zip(&counts)
                .map(|(b, n)| (*b as f64, *n))
                .collect();
            encoder
                .encode_descriptor(
                    "stepflow_group_commit_batch_size",
                    "Writes per group-commit transaction.",
                    None,
                    MetricType::Histogram,
                )?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        let snap = self.storage.stats();
        let usage = process::usage();
        let gauges: [(&str, &str, f64); 6] = [
            (
                "stepflow_writer_queue_depth",
                "Writes queued for the writer thread, not yet in a batch.",
                snap.writer_queue_depth as f64,
            ),
            (
                "stepflow_wal_bytes",
                "Size of the write-ahead log file.",
                self.storage.wal_bytes() as f64,
            ),
            (
                "stepflow_wal_pages_after_checkpoint",
                "WAL pages the last checkpoint left uncopied.",
                snap.wal.pages_after_last_checkpoint as f64,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size.",
                usage.rss_bytes as f64,
            ),
            (
                "process_resident_memory_peak_bytes",
                "Largest resident memory size since start.",
                usage.rss_peak_bytes as f64,
            ),
            (
                "stepflow_alerts_firing",
                "Alerts firing now, all levels.",
                self.perf.alerts(&self.storage).0.len() as f64,
            ),
        ];
        for (name, help, value) in gauges {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        let counters: [(&str, &str, f64); 3] = [
            (
                "process_cpu_seconds",
                "CPU time used, user and system.",
                usage.cpu_user_s + usage.cpu_system_s,
            ),
            (
                "stepflow_wal_forced_checkpoints",
                "RESTART checkpoints the writer ran at the WAL's hard limit.",
                snap.wal.forced_checkpoints as f64,
            ),
            (
                "stepflow_slow_queries",
                "Statements over the slow-query threshold (0 without --slow-query-ms).",
                self.perf.slowlog.as_ref().map_or(0, |l| l.total()) as f64,
            ),
        ];
        for (name, help, value) in counters {
            encoder
                .encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }
}
