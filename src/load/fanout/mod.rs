//! `stepflow-bench fanout`: N WebSocket subscribers on `GET /api/ws`, writers creating
//! executions at a fixed rate (open model), and, per subscriber, the delivery latency of every
//! event and a check that it got every committed event exactly once, in order.
//!
//! Event `k` of a run is the execution named `fanout-<run>-<k>`; its write is due `k / rate`
//! seconds after the writers start. A subscriber records each event's latency from that
//! intended send time (`delivery`) and from the write's acknowledgement (`delivery_from_ack`;
//! zero when the event arrived before the 201 did), and checks sequence numbers and event
//! numbers (`checker`).

pub mod checker;
mod clients;
pub mod scenario;

use clients::*;

use crate::exit;
use crate::load::bundled::{stats_of, Bundled};
use crate::load::client::{Conn, Endpoint, Timeouts};
use crate::load::machine::{self, CpuSnapshot};
use crate::load::pacer::{ConstantPacer, Pacer};
use crate::load::sys::{install_signal_handlers, interrupted, INTERRUPTED_WHY};
use crate::metrics::{Recorder, TimeSeries};
use crate::monitor::events::CLOSE_TOO_SLOW;
use crate::monitor::storage::Profile;
use crate::results::{new_run_id, Environment, Load, Results, ServerInfo, SCHEMA_VERSION};
use anyhow::Context;
use checker::{Checker, Delivery};
use futures_util::{SinkExt, StreamExt};
use scenario::FanoutScenario;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Everything a fan-out run needs besides its scenario.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// External monitor; None starts the bundled one.
    pub target: Option<String>,
    pub profile: Profile,
    pub keep_data: bool,
    /// Generator threads (one runtime with this many workers).
    pub threads: usize,
    pub progress: bool,
    pub program: PathBuf,
    /// Per-request (and per-connect) timeout.
    pub timeout: Duration,
}

/// Subscriber connections opened at once while connecting.
const CONNECTING_AT_ONCE: usize = 256;
/// After the last write, how long deliveries may make no progress before the run stops
/// waiting for the missing ones (and counts them missed).
const DRAIN_IDLE: Duration = Duration::from_secs(3);
/// Recorders shared by subscribers, to keep lock contention low without a 250 KiB histogram
/// per subscriber.
const SHARDS: usize = 16;

#[derive(Default)]
struct Recorders {
    connect: Recorder,
    delivery: Recorder,
    from_ack: Recorder,
}

/// What the writers and subscribers share.
struct Shared {
    /// Nanoseconds after `t0` (plus one) at which write `k` was acknowledged; 0: not (yet).
    acks: Vec<AtomicU64>,
    pacer: ConstantPacer,
    /// When the writers started; set before any subscriber can see an event of this run.
    t0: Mutex<Option<Instant>>,
    prefix: String,
    shards: Vec<Mutex<Recorders>>,
    /// Deliveries of this run's events, all subscribers together.
    delivered: AtomicU64,
    /// Deliveries that arrived before their write's acknowledgement.
    before_ack: AtomicU64,
    stop: tokio::sync::watch::Sender<bool>,
    events: u64,
}

/// How one subscriber ended.
struct Outcome {
    /// Judged once every write has been answered (a subscriber may end before that).
    checker: Checker,
    dropped_slow: bool,
    disconnected: bool,
    close: Option<String>,
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    seq: Option<u64>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    name: Option<&'a str>,
}

/// Runs the scenario; results whatever happens after the target was reached.
pub fn run(scenario: &FanoutScenario, opts: &FanoutOptions) -> anyhow::Result<Results> {
    install_signal_handlers();
    let started_at = chrono::Utc::now().to_rfc3339();
    let run_id = new_run_id();
    let mut bundled = None;
    let url = match &opts.target {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let b = Bundled::start(&opts.program, opts.profile.as_str(), opts.keep_data)
                .map_err(exit::aborted)?;
            let url = b.url.clone();
            bundled = Some(b);
            url
        }
    };
    let endpoint = Arc::new(Endpoint::parse(&url).map_err(exit::usage)?);
    if endpoint.https {
        return Err(exit::usage(anyhow::anyhow!(
            "fanout loads http:// targets only (its subscribers speak ws://), got {url}"
        )));
    }
    let ws_url = format!("ws://{}/api/ws", url.trim_start_matches("http://"));
    let monitor_pid = bundled.as_ref().map(Bundled::pid);
    let cpu_at_start = CpuSnapshot::take(monitor_pid);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the generator's runtime")?;
    let events = scenario.events();
    let (stop, _) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        acks: (0..events).map(|_| AtomicU64::new(0)).collect(),
        pacer: ConstantPacer {
            rate_per_s: scenario.rate,
        },
        t0: Mutex::new(None),
        prefix: format!("fanout-{}-", &run_id[..12]),
        shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        delivered: AtomicU64::new(0),
        before_ack: AtomicU64::new(0),
        stop,
        events,
    });
    let progress = opts.progress && std::io::stderr().is_terminal();
    let mut warnings = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let rss_before = stats_of(&url).and_then(|s| s["rss_bytes"].as_u64());

    // 1. Connect every subscriber.
    let connect_started = Instant::now();
    let connected = AtomicU64::new(0);
    let connected = Arc::new(connected);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING_AT_ONCE));
    let mut handles = Vec::with_capacity(scenario.subscribers as usize);
    let _enter = runtime.enter();
    for i in 0..scenario.subscribers as usize {
        let shared = Arc::clone(&shared);
        let gate = Arc::clone(&gate);
        let ready = ready_tx.clone();
        let ws_url = ws_url.clone();
        let timeout = opts.timeout;
        let connected = Arc::clone(&connected);
        handles.push(runtime.spawn(async move {
            subscriber(i, &ws_url, shared, gate, ready, timeout, connected).await
        }));
    }
    drop(ready_tx);
    let mut open = 0u64;
    let mut connect_failures = 0u64;
    let mut last_progress = Instant::now();
    let mut aborted = None;
    runtime.block_on(async {
        loop {
            tokio::select! {
                r = ready_rx.recv() => match r {
                    Some(Ok(())) => open += 1,
                    Some(Err(e)) => {
                        connect_failures += 1;
                        *errors.entry(format!("connect: {e}")).or_default() += 1;
                    }
                    None => break,
                },
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            if open + connect_failures == scenario.subscribers {
                break;
            }
            if interrupted() {
                aborted = Some(INTERRUPTED_WHY.to_string());
                break;
            }
            if progress && last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                eprint!(
                    "\r\x1b[2Kconnecting: {open}/{} subscribers",
                    scenario.subscribers
                );
            }
        }
    });
    let connect_s = connect_started.elapsed().as_secs_f64();
    if open == 0 && aborted.is_none() {
        aborted = Some(format!(
            "no subscriber could connect to {ws_url} ({})",
            errors.keys().next().cloned().unwrap_or_default()
        ));
    }
    let rss_connected = stats_of(&url).and_then(|s| s["rss_bytes"].as_u64());

    // 2. Write at the rate; subscribers record deliveries meanwhile.
    let writes = Arc::new(Mutex::new((Recorder::new(), TimeSeries::new())));
    let mut write_window_s = 0.0;
    let mut late_sends = 0u64;
    if aborted.is_none() {
        let t0 = Instant::now();
        *shared.t0.lock().unwrap_or_else(|e| e.into_inner()) = Some(t0);
        let outcome = runtime.block_on(write_all(
            &endpoint,
            scenario,
            Arc::clone(&shared),
            Arc::clone(&writes),
            opts.timeout,
            progress,
        ));
        write_window_s = t0.elapsed().as_secs_f64();
        late_sends = outcome.late;
        for (e, n) in outcome.errors {
            *errors.entry(e).or_default() += n;
        }
        if outcome.interrupted {
            aborted = Some(INTERRUPTED_WHY.to_string());
        }
        // 3. Wait for the deliveries owed (or for them to stop coming).
        let acked = shared
            .acks
            .iter()
            .filter(|a| a.load(Ordering::Relaxed) != 0)
            .count() as u64;
        let owed = acked * open;
        let mut last = shared.delivered.load(Ordering::Relaxed);
        let mut idle_since = Instant::now();
        while aborted.is_none() {
            let now = shared.delivered.load(Ordering::Relaxed);
            if now >= owed || connected.load(Ordering::Relaxed) == 0 {
                break;
            }
            if now != last {
                last = now;
                idle_since = Instant::now();
            } else if idle_since.elapsed() >= DRAIN_IDLE {
                break;
            }
            if interrupted() {
                aborted = Some(INTERRUPTED_WHY.to_string());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if progress {
        eprint!("\r\x1b[2K");
    }
    let server_stats = stats_of(&url);
    shared.stop.send_replace(true);
    let outcomes: Vec<Option<Outcome>> = runtime.block_on(async {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.ok().flatten());
        }
        out
    });
    drop(_enter);
    drop(runtime);
    let machine = cpu_at_start.and_then(|start| {
        let end = CpuSnapshot::take(monitor_pid)?;
        machine::between(&start, &end, machine::load_avg_1m()?)
    });

    let mut delivery = Delivery {
        events,
        ..Delivery::default()
    };
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    let acked = |k: u64| shared.acks[k as usize].load(Ordering::Relaxed) != 0;
    for o in outcomes.iter().flatten() {
        let report = o.checker.finish(acked, events);
        delivery.add(&report, o.dropped_slow, o.disconnected);
        if let Some(c) = &o.close {
            *closes.entry(c.clone()).or_default() += 1;
        }
    }
    if delivery.dropped_slow > 0 {
        warnings.push(format!(
            "{} subscriber(s) were closed by the server as too slow (4001); their {} missed \
             deliveries are reported apart (missed_by_dropped)",
            delivery.dropped_slow, delivery.missed_by_dropped
        ));
    }
    if delivery.disconnected > 0 {
        warnings.push(format!(
            "{} subscriber(s) lost their connection before the end: {closes:?}",
            delivery.disconnected
        ));
    }
    if late_sends > 0 {
        warnings.push(format!(
            "{late_sends} write(s) went out more than 10 ms after their intended time (the \
             writers were all busy or the generator fell behind); their latency counts from \
             the intended time"
        ));
    }
    let before_ack = shared.before_ack.load(Ordering::Relaxed);

    // 4. Figures.
    let mut merged = Recorders::default();
    for shard in &shared.shards {
        let s = shard.lock().unwrap_or_else(|e| e.into_inner());
        merged.connect.merge(&s.connect);
        merged.delivery.merge(&s.delivery);
        merged.from_ack.merge(&s.from_ack);
    }
    let (write_rec, series) = {
        let w = writes.lock().unwrap_or_else(|e| e.into_inner());
        (w.0.clone(), w.1.clone())
    };
    let window = if write_window_s > 0.0 {
        write_window_s
    } else {
        1e-9
    };
    let mut operations = BTreeMap::new();
    operations.insert(
        "connect".to_string(),
        merged.connect.summarize(connect_s.max(1e-9)),
    );
    operations.insert("write".to_string(), write_rec.summarize(window));
    operations.insert("delivery".to_string(), merged.delivery.summarize(window));
    operations.insert(
        "delivery_from_ack".to_string(),
        merged.from_ack.summarize(window),
    );
    let totals = write_rec.summarize(window);
    let mut service_time_us = BTreeMap::new();
    service_time_us.insert(
        "write".to_string(),
        crate::metrics::LatencySummary::from_histogram(write_rec.service_time()),
    );
    let mut extra = serde_json::Map::new();
    extra.insert("connect_all_s".into(), connect_s.into());
    extra.insert("deliveries_before_ack".into(), before_ack.into());
    extra.insert("connect_failures".into(), connect_failures.into());
    if let (Some(before), Some(after)) = (rss_before, rss_connected) {
        extra.insert("server_rss_before_connect_bytes".into(), before.into());
        extra.insert("server_rss_connected_bytes".into(), after.into());
        if let Some(per) = after.saturating_sub(before).checked_div(open) {
            extra.insert("server_rss_per_subscriber_bytes".into(), per.into());
        }
    }
    let server = match (&bundled, server_stats) {
        (Some(_), Some(stats)) => Some(ServerInfo {
            rss_peak_bytes: stats["rss_peak_bytes"].as_u64().unwrap_or(0),
            cpu_s: stats["cpu_s"].as_f64().unwrap_or(0.0),
            stats,
            timeseries: Vec::new(),
            storage: None,
        }),
        _ => None,
    };
    if let Some(b) = bundled.take() {
        if let Err(e) = b.stop() {
            warnings.push(format!("{e:#}"));
        }
    }
    let aborted_run = aborted.is_some();
    Ok(Results {
        schema_version: SCHEMA_VERSION,
        run_id: Some(run_id),
        run_ids: Vec::new(),
        scenario: scenario.name.clone(),
        kind: crate::results::names::FANOUT_KIND.into(),
        target: url,
        profile: opts
            .target
            .is_none()
            .then(|| opts.profile.as_str().to_string()),
        started_at,
        duration_s: write_window_s,
        warmup_s: 0.0,
        load: Load::Open {
            rate_per_s: scenario.rate,
            max_in_flight: scenario.writers,
        },
        operations,
        totals,
        service_time_us,
        // Judged by the caller (`gate::judge`), like every run.
        targets: Vec::new(),
        integrity: None,
        delivery: Some(delivery),
        server,
        environment: Environment::detect(opts.threads),
        machine,
        timeseries: series.points(),
        operations_timeseries: BTreeMap::new(),
        shape: None,
        generator: None,
        levels: Vec::new(),
        knee: None,
        capacity: None,
        extra,
        warnings,
        errors,
        aborted,
        exit_code: if aborted_run { exit::ABORTED } else { exit::OK },
    })
}
