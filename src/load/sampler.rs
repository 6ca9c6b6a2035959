//! The server's side over the run: `GET /performance/stats` once a second on a thread of its
//! own (off the generator's hot path), kept as a time series tagged with the run's phase, and
//! the storage's footprint on disk at the end.

use super::bundled::stats_of;
use super::engine::Control;
use crate::results::{ServerSample, StorageFootprint};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most samples kept: a day of seconds; a longer run keeps its first day's.
const MAX_SAMPLES: usize = 86_400;

/// Samples the server's stats until finished.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<ServerSample>>,
}

impl Sampler {
    /// Starts sampling `url` (http://HOST:PORT) each second; `control` tells the phase.
    pub fn start(url: String, control: Arc<Control>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("gen-sampler".into())
            .spawn(move || sample(&url, &control, &flag))
            .expect("spawn sampler thread");
        Sampler { stop, handle }
    }

    /// Stops sampling; the samples so far.
    pub fn finish(self) -> Vec<ServerSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn sample(url: &str, control: &Control, stop: &AtomicBool) -> Vec<ServerSample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut previous: Option<(Instant, f64, u64, u64)> = None;
    let mut next = started;
    while !stop.load(Ordering::Relaxed) && samples.len() < MAX_SAMPLES {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        next += Duration::from_secs(1);
        let Some(stats) = stats_of(url) else { continue };
        let now = Instant::now();
        let phase = control
            .phase
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (t_s, name) = match (phase.measure_start, phase.warmup_until, phase.verifying) {
            (_, _, Some(_)) => (None, "read-back"),
            (_, Some(w), _) if now < w => (None, "warm-up"),
            (Some(m), _, _) if now >= m => (Some(now - m), "measured"),
            _ => (None, "set-up"),
        };
        // Before the measured window: seconds before it, negative.
        let t_s = match (t_s, phase.measure_start) {
            (Some(d), _) => d.as_secs_f64(),
            (None, Some(m)) if now < m => -(m - now).as_secs_f64(),
            (None, Some(m)) => (now - m).as_secs_f64(),
            (None, None) => -(now - started).as_secs_f64().max(0.0),
        };
        let cpu_s = stats["cpu_s"].as_f64().unwrap_or(0.0);
        let batches = stats
            .pointer("/group_commit/batches")
            .and_then(|v| v.as_u64());
        let writes = stats
            .pointer("/group_commit/writes")
            .and_then(|v| v.as_u64());
        let (batches, writes) = (batches.unwrap_or(0), writes.unwrap_or(0));
        let (cpu_pct, batch_size) = match previous {
            Some((at, cpu, b, w)) => {
                let dt = (now - at).as_secs_f64().max(1e-3);
                let db = batches.saturating_sub(b);
                (
                    ((cpu_s - cpu) / dt * 100.0).max(0.0),
                    if db == 0 {
                        0.0
                    } else {
                        writes.saturating_sub(w) as f64 / db as f64
                    },
                )
            }
            None => (0.0, 0.0),
        };
        previous = Some((now, cpu_s, batches, writes));
        samples.push(ServerSample {
            t_s: (t_s * 1000.0).round() / 1000.0,
            phase: name.to_string(),
            rss_bytes: stats["rss_bytes"].as_u64().unwrap_or(0),
            cpu_pct,
            writer_queue_depth: stats["writer_queue_depth"].as_i64().unwrap_or(0),
            batch_size,
            wal_bytes: stats["wal_bytes"].as_u64().unwrap_or(0),
            commit_p99_us: stats
                .pointer("/db/commit/p99_us")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0),
        });
    }
    samples
}

/// The database, WAL and shared-memory files in `data_dir`, and the bytes they take per
/// stored execution.
pub fn footprint(data_dir: &Path, executions: Option<u64>) -> Option<StorageFootprint> {
    let size = |name: &str| {
        std::fs::metadata(data_dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let db_bytes = std::fs::metadata(data_dir.join("stepflow.db")).ok()?.len();
    let (wal_bytes, shm_bytes) = (size("stepflow.db-wal"), size("stepflow.db-shm"));
    Some(StorageFootprint {
        db_bytes,
        wal_bytes,
        shm_bytes,
        executions,
        bytes_per_execution: executions
            .filter(|n| *n > 0)
            .map(|n| ((db_bytes + wal_bytes) as f64 / n as f64).round()),
    })
}
