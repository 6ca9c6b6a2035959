//! The monitor's own performance tools: per-route request figures, a once-a-second sampler
//! (the time series behind the alerts and the dashboard), alert rules, recommendations,
//! online optimisation, a slow-query log, Prometheus `/metrics` and the live dashboard.
//!
//! The hot path only adds to atomics ([`instrument`]); everything else runs once a second on
//! the sampler or when its endpoint is asked.

pub mod alerts;
pub mod dashboard;
pub mod handlers;
pub mod instrument;
pub mod metrics;
pub mod optimize;
pub mod recommend;
pub mod slowlog;

use crate::monitor::process;
use crate::monitor::storage::{ConnHook, Storage};
use alerts::{Alert, AlertConfig, AlertState, Measured};
use instrument::{RequestStats, RouteSnapshot, ROUTES};
use serde::Serialize;
use slowlog::SlowLog;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How the performance tools run; from `serve`'s flags.
#[derive(Debug, Clone)]
pub struct PerfConfig {
    /// Record per-route request figures and run the sampler (`serve --no-instrumentation`
    /// turns both off, to measure what they cost).
    pub instrument: bool,
    pub alerts: AlertConfig,
    /// `serve --slow-query-ms`: statements at least this long go to the slow-query log.
    pub slow_query: Option<Duration>,
}

impl Default for PerfConfig {
    fn default() -> Self {
        PerfConfig {
            instrument: true,
            alerts: AlertConfig::default(),
            slow_query: None,
        }
    }
}

/// Parses `--slow-query-ms`: a number of milliseconds from 0 (every statement) to 60,000.
pub fn parse_slow_query_ms(text: &str) -> Result<Duration, String> {
    let ms: f64 = text.trim().parse().map_err(|_| {
        format!(
            "{text:?} is not a number; it must be from 0 to {} milliseconds",
            slowlog::MAX_THRESHOLD_MS
        )
    })?;
    if ms.is_finite() && (0.0..=slowlog::MAX_THRESHOLD_MS).contains(&ms) {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(format!(
            "must be from 0 to {} milliseconds, got {ms}",
            slowlog::MAX_THRESHOLD_MS
        ))
    }
}

/// Samples kept for the dashboard's charts (one a second).
const HISTORY: usize = 300;

/// One route's second.
#[derive(Debug, Clone, Serialize)]
pub struct RouteSecond {
    pub route: &'static str,
    pub requests: u64,
    pub errors_5xx: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// One DB operation's second.
#[derive(Debug, Clone, Serialize)]
pub struct DbSecond {
    pub count: u64,
    /// Mean latency of the operations of this second, microseconds.
    pub mean_us: f64,
    /// p99 since start (the storage keeps one histogram per operation), microseconds.
    pub p99_us: f64,
}

/// What the sampler saw in one second.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Unix time, milliseconds.
    pub t_ms: u64,
    pub uptime_s: f64,
    pub requests_per_s: f64,
    pub errors_5xx_per_s: f64,
    /// All routes together over this second.
    pub p50_us: u64,
    pub p99_us: u64,
    pub routes: Vec<RouteSecond>,
    pub db: BTreeMap<&'static str, DbSecond>,
    /// Mean writes per group commit in this second.
    pub batch_mean: f64,
    pub batches_per_s: f64,
    pub writer_queue_depth: i64,
    pub wal_bytes: u64,
    pub rss_bytes: u64,
    /// CPU time used in this second, percent of one core.
    pub cpu_pct: f64,
    pub alerts: usize,
}

struct Previous {
    at: Instant,
    routes: Vec<RouteSnapshot>,
    db: BTreeMap<&'static str, (u64, f64)>,
    batches: (u64, u64),
    cpu_s: f64,
}

#[derive(Default)]
struct SamplerState {
    samples: VecDeque<Arc<Sample>>,
    /// Cumulative route figures, one a second, the oldest `window_s` seconds ago.
    windows: VecDeque<Vec<RouteSnapshot>>,
    previous: Option<Previous>,
    alerts: AlertState,
    evaluated_at: Option<String>,
}

/// Shared by the middleware, the sampler and the endpoints.
pub struct Perf {
    pub config: PerfConfig,
    pub requests: Option<Arc<RequestStats>>,
    pub slowlog: Option<Arc<SlowLog>>,
    state: Mutex<SamplerState>,
    /// The newest sample, for the dashboard's event stream.
    pub latest: watch::Sender<Option<Arc<Sample>>>,
    sampler: AtomicBool,
    started: Instant,
}

impl Default for Perf {
    fn default() -> Self {
        Perf::new(PerfConfig::default())
    }
}

impl Perf {
    pub fn new(config: PerfConfig) -> Perf {
        Perf {
            requests: config.instrument.then(|| Arc::new(RequestStats::default())),
            slowlog: config.slow_query.map(|t| Arc::new(SlowLog::new(t))),
            config,
            state: Mutex::new(SamplerState::default()),
            latest: watch::channel(None).0,
            sampler: AtomicBool::new(false),
            started: Instant::now(),
        }
    }

    /// The hook the storage runs on each connection it opens (the slow-query log's timer).
    pub fn connection_hook(&self) -> Option<ConnHook> {
        let log = self.slowlog.clone()?;
        Some(ConnHook(Arc::new(move |conn, role| {
            if let Err(e) = log.install(conn, role) {
                eprintln!("stepflow-monitor: cannot time statements on the {role} connection: {e}");
            }
        })))
    }

    pub fn sampler_running(&self) -> bool {
        self.sampler.load(Ordering::Relaxed)
    }

    /// Starts the once-a-second sampler on the current tokio runtime (with instrumentation).
    pub fn start_sampler(self: &Arc<Self>, storage: Storage) {
        if self.requests.is_none() || self.sampler.swap(true, Ordering::Relaxed) {
            return;
        }
        let perf = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                perf.sample(&storage);
            }
        });
    }

    /// Takes one sample: the second since the previous one, the alert rules over the window.
    pub fn sample(&self, storage: &Storage) {
        let Some(requests) = &self.requests else {
            return;
        };
        let now = Instant::now();
        let routes_now = requests.snapshot();
        let db = storage.stats();
        let usage = process::usage();
        let cpu_s = usage.cpu_user_s + usage.cpu_system_s;
        let wal_bytes = storage.wal_bytes();
        let db_now: BTreeMap<&'static str, (u64, f64)> = db
            .operations
            .iter()
            .map(|(name, s)| (*name, (s.count, s.mean_us * s.count as f64)))
            .collect();
        let batches_now = (db.group_commit.batches, db.group_commit.writes);

        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let empty: Vec<RouteSnapshot>;
        let (prev_routes, prev_db, prev_batches, prev_cpu, dt) = match &state.previous {
            Some(p) => (
                &p.routes,
                Some(&p.db),
                p.batches,
                p.cpu_s,
                now.duration_since(p.at).as_secs_f64().max(1e-3),
            ),
            None => {
                empty = vec![RouteSnapshot::empty(); ROUTES.len()];
                (&empty, None, (0, 0), cpu_s, 1.0)
            }
        };
        let mut all = instrument::HistSnapshot::empty();
        let mut route_seconds = Vec::new();
        let mut errors = 0;
        for (i, (a, b)) in routes_now.iter().zip(prev_routes).enumerate() {
            let d = a.since(b);
            let n = d.requests();
            if n == 0 {
                continue;
            }
            for (x, y) in all.buckets.iter_mut().zip(&d.latency.buckets) {
                *x += y;
            }
            errors += d.status[4];
            route_seconds.push(RouteSecond {
                route: ROUTES[i],
                requests: n,
                errors_5xx: d.status[4],
                p50_us: d.latency.quantile_us(0.5),
                p99_us: d.latency.quantile_us(0.99),
            });
        }
        let db_seconds = db
            .operations
            .iter()
            .map(|(name, s)| {
                let (c0, sum0) = prev_db
                    .and_then(|p| p.get(name))
                    .copied()
                    .unwrap_or((0, 0.0));
                let (c1, sum1) = db_now[name];
                let count = c1.saturating_sub(c0);
                let mean_us = if count == 0 {
                    0.0
                } else {
                    ((sum1 - sum0) / count as f64).max(0.0)
                };
                (
                    *name,
                    DbSecond {
                        count,
                        mean_us,
                        p99_us: s.p99_us,
                    },
                )
            })
            .collect();
        let batches = batches_now.0.saturating_sub(prev_batches.0);
        let writes = batches_now.1.saturating_sub(prev_batches.1);

        // The sliding window: from the oldest kept snapshot to now.
        state.windows.push_back(routes_now.clone());
        while state.windows.len() > self.config.alerts.window_s as usize + 1 {
            state.windows.pop_front();
        }
        let oldest = state.windows.front().expect("just pushed").clone();
        let mut measured = Vec::new();
        for (i, (a, b)) in routes_now.iter().zip(&oldest).enumerate() {
            let d = a.since(b);
            let n = d.requests();
            if n < self.config.alerts.min_requests {
                continue;
            }
            measured.push(Measured {
                rule: "route_p99_ms",
                subject: Some(ROUTES[i]),
                value: d.latency.quantile_us(0.99) as f64 / 1000.0,
            });
            measured.push(Measured {
                rule: "error_rate_pct",
                subject: Some(ROUTES[i]),
                value: d.status[4] as f64 * 100.0 / n as f64,
            });
        }
        let window_samples = self.config.alerts.window_s as usize;
        let queue_max = state
            .samples
            .iter()
            .rev()
            .take(window_samples.saturating_sub(1))
            .map(|s| s.writer_queue_depth)
            .chain([db.writer_queue_depth])
            .max()
            .unwrap_or(0);
        measured.extend(gauges(
            wal_bytes,
            usage.rss_bytes,
            queue_max,
            db.wal.pages_after_last_checkpoint,
        ));
        let stamp = crate::monitor::model::now_rfc3339();
        let config = &self.config.alerts;
        state.alerts.update(config, &measured, &stamp);
        state.evaluated_at = Some(stamp);
        let alert_count = state.alerts.alerts().len();

        let total = all.count();
        let sample = Arc::new(Sample {
            t_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            uptime_s: self.started.elapsed().as_secs_f64(),
            requests_per_s: total as f64 / dt,
            errors_5xx_per_s: errors as f64 / dt,
            p50_us: all.quantile_us(0.5),
            p99_us: all.quantile_us(0.99),
            routes: route_seconds,
            db: db_seconds,
            batch_mean: if batches == 0 {
                0.0
            } else {
                writes as f64 / batches as f64
            },
            batches_per_s: batches as f64 / dt,
            writer_queue_depth: db.writer_queue_depth,
            wal_bytes,
            rss_bytes: usage.rss_bytes,
            cpu_pct: ((cpu_s - prev_cpu) / dt * 100.0).max(0.0),
            alerts: alert_count,
        });
        state.previous = Some(Previous {
            at: now,
            routes: routes_now,
            db: db_now,
            batches: batches_now,
            cpu_s,
        });
        state.samples.push_back(Arc::clone(&sample));
        while state.samples.len() > HISTORY {
            state.samples.pop_front();
        }
        drop(state);
        self.latest.send_replace(Some(sample));
    }

    /// The samples kept, oldest first.
    pub fn history(&self) -> Vec<Arc<Sample>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.samples.iter().cloned().collect()
    }

    /// The alerts firing and when they were evaluated. Without the sampler (instrumentation
    /// off, or not started) the gauge rules are evaluated now, and nothing has a history.
    pub fn alerts(&self, storage: &Storage) -> (Vec<Alert>, String) {
        if self.sampler_running() {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = &state.evaluated_at {
                return (state.alerts.alerts(), at.clone());
            }
        }
        let db = storage.stats();
        let usage = process::usage();
        let measured = gauges(
            storage.wal_bytes(),
            usage.rss_bytes,
            db.writer_queue_depth,
            db.wal.pages_after_last_checkpoint,
        );
        let stamp = crate::monitor::model::now_rfc3339();
        let mut state = AlertState::default();
        state.update(&self.config.alerts, &measured, &stamp);
        (state.alerts(), stamp)
    }
}

fn gauges(wal_bytes: u64, rss_bytes: u64, queue: i64, checkpoint_lag: i64) -> Vec<Measured> {
    let mb = |b: u64| b as f64 / 1_000_000.0;
    vec![
        Measured {
            rule: "wal_mb",
            subject: None,
            value: mb(wal_bytes),
        },
        Measured {
            rule: "rss_mb",
            subject: None,
            value: mb(rss_bytes),
        },
        Measured {
            rule: "writer_queue_depth",
            subject: None,
            value: queue as f64,
        },
        Measured {
            rule: "checkpoint_lag_pages",
            subject: None,
            value: checkpoint_lag as f64,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_query_ms_has_a_range() {
        assert_eq!(parse_slow_query_ms("5").unwrap(), Duration::from_millis(5));
        assert_eq!(parse_slow_query_ms("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_slow_query_ms("0.5").unwrap(),
            Duration::from_micros(500)
        );
        for bad in ["-1", "60001", "NaN", "inf", "five", ""] {
            let e = parse_slow_query_ms(bad).unwrap_err();
            assert!(e.contains("from 0 to 60000 milliseconds"), "{bad}: {e}");
        }
    }
}
