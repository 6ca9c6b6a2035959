//! One run of a scenario from start to results: pick or start the target, run the executor
//! with a live progress line, collect the server's figures. What it returns is only what was
//! measured: `gate::judge` checks the targets and sets the exit code.

use super::bundled::{Monitor, SharedMonitor};
use super::client::{Endpoint, Timeouts, Wire};
use super::engine::{self, Control, EngineConfig, Length, Load, Workload};
use super::evidence;
use super::machine::{self, CpuSnapshot};
use super::pacer::Shape;
use super::probe::{self, Needs};
use super::progress::print_progress;
use super::sampler::{self, Sampler};
use super::scenario::{LoadModel, Scenario, ScenarioKind};
use super::stream::{OpSeries, Streamer};
pub use super::sys::ConnectionBudget;
use super::sys::{
    install_signal_handlers, interrupted, raise_open_files_limit, unless_interrupted,
    INTERRUPTED_WHY,
};
use super::transport::direct::DirectTransport;
use super::transport::http::HttpConnector;
use super::transport::Connector;
use crate::exit;
use crate::metrics::Recorder;
use crate::monitor::storage::{Profile, Storage, StorageConfig};
use crate::results::names::FLOW_EXECUTION;
use crate::results::targets;
use crate::results::{
    Environment, GeneratorCheck, PlannedPoint, Results, ServerInfo, ShapeResults, StageResults,
    SCHEMA_VERSION,
};
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod figures;

use figures::*;

/// Everything a run needs besides the scenario.
#[derive(Clone)]
pub struct RunOptions {
    /// External service to load; None starts the bundled monitor.
    pub target: Option<String>,
    pub profile: Profile,
    /// Run against the storage layer in-process, without HTTP.
    pub direct: bool,
    pub keep_data: bool,
    /// Generator threads, each with its own runtime.
    pub threads: usize,
    pub progress: bool,
    /// `--stream`: a JSON line per second of the run goes here.
    pub stream: Option<super::stream::StreamSink>,
    /// The executable started as the bundled monitor (`<program> serve ...`).
    pub program: PathBuf,
    pub timeouts: Timeouts,
    /// How to reach `target`: the lean client, or reqwest for https:// and --http2 (the
    /// bundled monitor is always reached with the lean client).
    pub wire: Wire,
    /// Default concurrency and length when the scenario leaves them to the command.
    pub default_concurrency: u32,
    pub default_length: Length,
    /// The open model's in-flight cap when the scenario sets none.
    pub default_max_in_flight: u32,
    /// Runs that share one bundled monitor (a sweep's levels): the first run starts it and
    /// leaves it here, the next ones take it and put it back; whoever made the slot stops
    /// it (`SharedMonitor::stop`). None: each run starts and stops its own.
    pub shared_monitor: Option<SharedMonitor>,
}

enum Sut {
    Bundled(Monitor),
    External(String),
    Direct {
        storage: Storage,
        path: PathBuf,
        /// Deleted after the run, unless --keep-data.
        _dir: Option<tempfile::TempDir>,
    },
}

fn resolve_load(scenario: &Scenario, opts: &RunOptions) -> Load {
    match scenario.load {
        LoadModel::Closed { concurrency } => Load::Closed {
            concurrency: concurrency.unwrap_or(opts.default_concurrency).max(1),
        },
        LoadModel::Open {
            rate_per_s,
            max_in_flight,
        } => Load::Open {
            rate_per_s,
            max_in_flight: max_in_flight.unwrap_or(opts.default_max_in_flight).max(1),
        },
    }
}

fn resolve_length(scenario: &Scenario, opts: &RunOptions) -> Length {
    // A shape is the run's length, warm-up included.
    if let Some(shape) = scenario.shape() {
        let measured = shape.duration().saturating_sub(scenario.warmup);
        return Length::Duration(measured.max(Duration::from_millis(1)));
    }
    scenario.length.unwrap_or(opts.default_length)
}

/// Checks that something accepts connections at the target before any load is sent; the
/// error says what to do.
async fn check_reachable(endpoint: &Endpoint, timeout: Duration) -> Result<(), String> {
    let connect = tokio::net::TcpStream::connect(endpoint.addr);
    let connected = match tokio::time::timeout(timeout, connect).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection within {timeout:?}"),
        )),
    };
    connected.map(drop).map_err(|e| {
        format!(
            "could not reach {} ({e}): is the service running? pass --target with its URL, \
                 or omit --target to start the bundled monitor",
            endpoint.url
        )
    })
}

/// The parts of a run's results known before it starts; the rest is empty.
struct Preamble<'a> {
    scenario: &'a Scenario,
    opts: &'a RunOptions,
    load: Load,
    /// Bursts and flows have no warm-up phase.
    warmup_s: f64,
    /// Made when the run starts.
    run_id: String,
}

impl Preamble<'_> {
    /// Results of a run that could not start (no target to load): aborted, nothing measured.
    fn not_started(&self, target: String, why: String) -> Results {
        Results {
            schema_version: SCHEMA_VERSION,
            run_id: Some(self.run_id.clone()),
            run_ids: Vec::new(),
            scenario: self.scenario.name.clone(),
            kind: self.scenario.kind.name().to_string(),
            target,
            profile: self.profile(),
            started_at: now_rfc3339(),
            duration_s: 0.0,
            warmup_s: 0.0,
            load: self.load,
            operations: BTreeMap::new(),
            totals: Recorder::new().summarize(0.0),
            service_time_us: BTreeMap::new(),
            targets: Vec::new(),
            integrity: None,
            delivery: None,
            server: None,
            environment: Environment::detect(self.opts.threads.max(1)),
            machine: None,
            timeseries: Vec::new(),
            operations_timeseries: BTreeMap::new(),
            extra: serde_json::Map::new(),
            errors: BTreeMap::new(),
            warnings: Vec::new(),
            aborted: Some(why),
            exit_code: exit::ABORTED,
            shape: None,
            generator: None,
            levels: Vec::new(),
            knee: None,
            capacity: None,
        }
    }

    fn profile(&self) -> Option<String> {
        self.opts
            .target
            .is_none()
            .then(|| self.opts.profile.as_str().to_string())
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs a validated scenario; returns results for every run, aborted ones included (a target
/// that cannot be reached or a bundled monitor that does not start gives aborted results
/// with nothing measured), and an error only for bad input or a broken generator.
pub fn run_scenario(scenario: &Scenario, opts: &RunOptions) -> anyhow::Result<Results> {
    install_signal_handlers();
    raise_open_files_limit();
    let load = resolve_load(scenario, opts);
    let length = resolve_length(scenario, opts);
    let workload = match scenario.kind {
        ScenarioKind::Mix => Workload::Mix(scenario.operations.clone()),
        ScenarioKind::PerEndpoint => Workload::PerEndpoint(scenario.operations.clone()),
        ScenarioKind::Burst => Workload::Burst {
            count: match load {
                Load::Closed { concurrency } => concurrency,
                Load::Open { max_in_flight, .. } => max_in_flight,
            },
        },
        ScenarioKind::Flow => Workload::Flow(scenario.flow.expect("validated flow has [flow]")),
    };
    let mut early_warnings = Vec::new();
    if let Load::Open { rate_per_s, .. } = load {
        let total_weight: f64 = scenario
            .operations
            .iter()
            .map(|o| f64::from(o.weight))
            .sum();
        let share = |name: &str| match scenario.kind {
            ScenarioKind::Mix => scenario
                .operations
                .iter()
                .find(|o| o.name == name)
                .map(|o| f64::from(o.weight) / total_weight.max(1.0)),
            _ => None,
        };
        early_warnings = targets::unreachable_throughput(&scenario.targets, rate_per_s, share);
        for w in &early_warnings {
            eprintln!("warning: {w}");
        }
    }
    let preamble = Preamble {
        scenario,
        opts,
        load,
        warmup_s: match workload {
            Workload::Burst { .. } | Workload::Flow(_) => 0.0,
            _ => scenario.warmup.as_secs_f64(),
        },
        run_id: crate::results::new_run_id(),
    };

    let mut sut = if opts.direct {
        let dir = tempfile::Builder::new()
            .prefix("stepflow-direct-")
            .tempdir()
            .context("cannot create a temporary data dir")?;
        let storage = Storage::open(&StorageConfig::new(dir.path(), opts.profile))
            .context("cannot open in-process storage for --direct")?;
        if opts.keep_data {
            eprintln!("--direct data kept in {}", dir.path().display());
        }
        Sut::Direct {
            storage,
            path: dir.path().to_path_buf(),
            _dir: if opts.keep_data {
                let _ = dir.keep();
                None
            } else {
                Some(dir)
            },
        }
    } else if let Some(url) = &opts.target {
        Sut::External(url.clone())
    } else {
        match Monitor::for_run(
            &opts.program,
            opts.profile.as_str(),
            opts.keep_data,
            opts.shared_monitor.as_ref(),
        ) {
            Ok(monitor) => Sut::Bundled(monitor),
            Err(e) => return Ok(preamble.not_started("bundled monitor".into(), format!("{e:#}"))),
        }
    };
    let (transport, target_name) = match &sut {
        Sut::Direct { storage, .. } => (
            Arc::new(DirectTransport {
                storage: storage.clone(),
            }) as Arc<dyn Connector>,
            "direct".to_string(),
        ),
        Sut::External(_) | Sut::Bundled(_) => {
            let url = match &sut {
                Sut::Bundled(b) => &b.url,
                Sut::External(url) => url,
                Sut::Direct { .. } => unreachable!("matched above"),
            };
            let endpoint = match Endpoint::parse(url) {
                Ok(endpoint) => endpoint,
                Err(e @ super::client::EndpointError::Resolve { .. }) => {
                    let why = format!("{e}: is the host name in --target right?");
                    return Ok(preamble.not_started(url.clone(), why));
                }
                Err(e) => return Err(exit::usage(e)),
            };
            // The checks before the load stop at Ctrl-C like the load does.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the set-up runtime")?;
            let interrupted_in = |step: &str| format!("{INTERRUPTED_WHY} while {step}");
            match rt.block_on(unless_interrupted(check_reachable(
                &endpoint,
                opts.timeouts.connect,
            ))) {
                Some(Ok(())) => {}
                Some(Err(why)) => return Ok(preamble.not_started(endpoint.url.clone(), why)),
                None => {
                    let why = interrupted_in("connecting to the target");
                    return Ok(preamble.not_started(endpoint.url.clone(), why));
                }
            }
            let endpoint = Arc::new(endpoint);
            // Another service is checked for the StepFlow API before any load (the bundled
            // monitor is one by construction).
            let wire = match sut {
                Sut::External(_) => opts.wire.clone(),
                _ => Wire::Lean,
            };
            let needs = Needs::of(&workload);
            if matches!(sut, Sut::External(_)) && needs.any() {
                let probe = probe::check(&endpoint, &wire, opts.timeouts, needs);
                match rt.block_on(unless_interrupted(probe)) {
                    Some(Ok(())) => {}
                    Some(Err(why)) => return Ok(preamble.not_started(endpoint.url.clone(), why)),
                    None => {
                        let why = interrupted_in("checking that the target is a StepFlow service");
                        return Ok(preamble.not_started(endpoint.url.clone(), why));
                    }
                }
            }
            let name = endpoint.url.clone();
            (
                Arc::new(HttpConnector {
                    endpoint,
                    timeouts: opts.timeouts,
                    wire,
                }) as Arc<dyn Connector>,
                name,
            )
        }
    };

    let threads = match workload {
        // One worker at a time gains nothing from a second thread.
        Workload::PerEndpoint(_) | Workload::Mix(_)
            if matches!(load, Load::Closed { concurrency: 1 }) =>
        {
            1
        }
        _ => opts.threads.max(1),
    };
    let max_failures = match load {
        Load::Closed { concurrency } => u64::from(concurrency).max(50) * 4,
        Load::Open { .. } => 1000,
    };
    let shape = scenario.shape().map(Arc::new);
    let config = EngineConfig {
        workload: workload.clone(),
        load,
        length,
        warmup: scenario.warmup,
        seed: scenario.seed,
        threads,
        transport,
        max_consecutive_failures: max_failures,
        shape: shape.clone(),
    };
    let started_at = now_rfc3339();
    // The generator's own CPU from here to the end of the load (set-up included).
    let own_at_start = (machine::own_cpu_s(), Instant::now());
    let own_at_end = Arc::new(std::sync::Mutex::new(None::<(Option<f64>, Instant)>));
    let load_ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Other work on the machine over the run, the bundled monitor's CPU counted as ours.
    let monitor_pid = match &sut {
        Sut::Bundled(b) => Some(b.pid()),
        _ => None,
    };
    let cpu_at_start = CpuSnapshot::take(monitor_pid);
    // The machine is judged over the same window as the generator's own CPU: to the end of
    // the load (the read-back after it is neither's load).
    let cpu_at_end = Arc::new(std::sync::Mutex::new(None::<CpuSnapshot>));
    let control = Arc::new(Control::new(max_failures));
    // The server's own view, taken when the load ends: set-up and warm-up are in it, the
    // integrity read-back is not.
    let server_stats = Arc::new(std::sync::Mutex::new(None::<serde_json::Value>));
    let engine = {
        let control = Arc::clone(&control);
        let take_stats = {
            let slot = Arc::clone(&server_stats);
            let url = match &sut {
                Sut::Bundled(b) => Some(b.url.clone()),
                _ => None,
            };
            let own_at_end = Arc::clone(&own_at_end);
            let cpu_at_end = Arc::clone(&cpu_at_end);
            let load_ended = Arc::clone(&load_ended);
            move || {
                *own_at_end.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((machine::own_cpu_s(), Instant::now()));
                *cpu_at_end.lock().unwrap_or_else(|e| e.into_inner()) =
                    CpuSnapshot::take(monitor_pid);
                load_ended.store(true, std::sync::atomic::Ordering::SeqCst);
                if let Some(url) = url {
                    let stats = super::bundled::stats_of(&url);
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = stats;
                }
            }
        };
        std::thread::spawn(move || engine::run(config, control, take_stats))
    };
    // The server's side once a second, for the bundled monitor and for any plain-HTTP target
    // that answers /performance/stats.
    let sampled_url = match &sut {
        Sut::Bundled(b) => Some(b.url.clone()),
        // Only over the HTTP/1.1 the run itself speaks: with --http2 a side request in
        // HTTP/1.1 would be one the user did not ask for.
        Sut::External(url) if url.starts_with("http://") && matches!(opts.wire, Wire::Lean) => {
            super::bundled::stats_of(url).map(|_| url.clone())
        }
        _ => None,
    };
    let sampler = sampled_url
        .clone()
        .map(|url| Sampler::start(url, Arc::clone(&control)));
    let progress = opts.progress && std::io::stderr().is_terminal();
    let names = engine::op_names(&workload);
    let mut streamer = opts
        .stream
        .clone()
        .map(|sink| Streamer::new(sink, names.clone()));
    let mut op_series = OpSeries::new(names.clone());
    let mut last = (Instant::now(), 0u64);
    let mut tick = Instant::now();
    let mut stream_tick = Instant::now();
    let mut samples = Samples::default();
    while !engine.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        samples.take(&control, &load_ended);
        if interrupted() {
            control.abort(INTERRUPTED_WHY.into());
        }
        if let Sut::Bundled(b) = &mut sut {
            if let Some(status) = b.exited() {
                control.abort(format!(
                    "the bundled monitor exited during the run ({status})"
                ));
            }
        }
        if stream_tick.elapsed() >= Duration::from_secs(1) {
            stream_tick += Duration::from_secs(1);
            let seconds = control.live.take_second(names.len());
            let t = control
                .phase
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .seconds_at(Instant::now());
            op_series.add(t, &seconds);
            let server = sampler.as_ref().and_then(Sampler::latest);
            if let Some(s) = &streamer {
                if !s.tick(&control, &seconds, server) {
                    // A reader that went away (a closed pipe) stops the stream, not the run.
                    streamer = None;
                }
            }
        }
        if progress && tick.elapsed() >= Duration::from_secs(1) {
            tick = Instant::now();
            last = print_progress(&control, last, &length);
        }
    }
    // The last, partial second: every measured request is on some line.
    let seconds = control.live.take_second(names.len());
    let t = control
        .phase
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .seconds_at(Instant::now());
    op_series.add(t, &seconds);
    if let Some(s) = &streamer {
        s.tick(
            &control,
            &seconds,
            sampler.as_ref().and_then(Sampler::latest),
        );
    }
    if progress {
        eprint!("\r\x1b[2K");
    }
    // A panic is a bug; the run still leaves results saying so (the bundled monitor is
    // stopped when `sut` drops).
    let Ok(measured) = engine.join() else {
        return Ok(preamble.not_started(
            target_name,
            "the generator panicked (a bug in stepflow-bench; its message is above)".into(),
        ));
    };
    let server_samples = sampler.map(Sampler::finish).unwrap_or_default();
    let machine = cpu_at_start.and_then(|start| {
        let at_load_end = *cpu_at_end.lock().unwrap_or_else(|e| e.into_inner());
        let end = at_load_end.or_else(|| CpuSnapshot::take(monitor_pid))?;
        machine::between(&start, &end, machine::load_avg_1m()?)
    });

    let server = match &mut sut {
        Sut::Bundled(_) => {
            let at_load_end = server_stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            // Peak memory and CPU time up to the end of the load: the read-back after it is
            // the harness's work, not the load's (it alone takes the server's RSS from about
            // 50 to 100 MiB after a 10 s stress, reading every execution back).
            at_load_end.map(|stats| ServerInfo {
                rss_peak_bytes: stats["rss_peak_bytes"].as_u64().unwrap_or(0),
                cpu_s: stats["cpu_s"].as_f64().unwrap_or(0.0),
                stats,
                timeseries: server_samples,
                storage: None,
            })
        }
        Sut::Direct { storage, path, .. } => Some(ServerInfo {
            rss_peak_bytes: crate::monitor::process::usage().rss_peak_bytes,
            cpu_s: 0.0,
            stats: serde_json::to_value(storage.stats()).unwrap_or_default(),
            timeseries: Vec::new(),
            storage: sampler::footprint(path, None),
        }),
        // Another service's own view, when it has one (its peak memory is its to say).
        Sut::External(_) => sampled_url.and_then(|url| {
            let stats = super::bundled::stats_of(&url)?;
            Some(ServerInfo {
                rss_peak_bytes: stats["rss_peak_bytes"].as_u64().unwrap_or(0),
                cpu_s: stats["cpu_s"].as_f64().unwrap_or(0.0),
                stats,
                timeseries: server_samples,
                storage: None,
            })
        }),
    };
    // The bundled monitor's files at the end, before it stops (and checkpoints the WAL).
    let mut server = server;
    if let (Sut::Bundled(b), Some(info)) = (&sut, server.as_mut()) {
        info.storage = sampler::footprint(&b.data_dir, super::bundled::executions_of(&b.url));
    }
    let mut warnings = early_warnings;
    warnings.extend(measured.warnings.iter().cloned());
    match sut {
        Sut::Bundled(b) => {
            if let Err(e) = b.finish() {
                warnings.push(format!("{e:#}"));
            }
        }
        Sut::Direct { storage, .. } => storage.close(),
        Sut::External(_) => {}
    }

    let duration_s = measured.duration_s;
    let mut operations = BTreeMap::new();
    let mut total = Recorder::new();
    let mut service_time_us = BTreeMap::new();
    for (i, (name, rec)) in measured.ops.iter().enumerate() {
        if name != FLOW_EXECUTION {
            total.merge(rec);
        }
        if matches!(load, Load::Open { .. }) {
            service_time_us.insert(
                name.clone(),
                crate::metrics::LatencySummary::from_histogram(rec.service_time()),
            );
        }
        let window = measured.op_duration_s.get(i).copied().unwrap_or(duration_s);
        operations.insert(name.clone(), rec.summarize(window));
    }
    if matches!(load, Load::Open { .. }) && !measured.ops.is_empty() {
        service_time_us.insert(
            crate::results::names::TOTALS.to_string(),
            crate::metrics::LatencySummary::from_histogram(total.service_time()),
        );
    }
    let totals = total.summarize(duration_s);
    let aborted = control.abort_reason();
    let shape_results = shape
        .as_ref()
        .map(|shape| shape_results(shape, scenario.warmup, load, &measured, &samples));
    let own_cpu_pct = {
        let end = *own_at_end.lock().unwrap_or_else(|e| e.into_inner());
        match (own_at_start, end) {
            ((Some(a), t0), Some((Some(b), t1))) => {
                let wall = t1.saturating_duration_since(t0).as_secs_f64();
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                (wall > 0.0).then(|| (b - a).max(0.0) / (wall * cores as f64) * 100.0)
            }
            _ => None,
        }
    };
    let generator = (measured.started && totals.count > 0).then(|| {
        generator_check(
            &GeneratorInputs {
                load,
                threads,
                cpu_pct: own_cpu_pct.unwrap_or(0.0),
                cap_from_user: matches!(
                    scenario.load,
                    LoadModel::Open {
                        max_in_flight: Some(_),
                        ..
                    }
                ),
                machine,
                duration_s,
                shaped: shape.is_some(),
            },
            &measured,
            &samples,
            &totals,
        )
    });
    if let Some(g) = &generator {
        for r in &g.reasons {
            warnings.push(format!("the generator was the limit, not the target: {r}"));
        }
        if let Some(lag) =
            (measured.max_lag > Duration::from_millis(10)).then_some(measured.max_lag)
        {
            if !g.limited {
                warnings.push(format!(
                    "the generator fell behind its send schedule by up to {:.1} ms at worst \
                     (p99 {:.2} ms); latencies count from the intended send times",
                    lag.as_secs_f64() * 1000.0,
                    g.send_lateness_us.as_ref().map_or(0.0, |l| l.p99) / 1000.0
                ));
            }
        }
    }
    Ok(Results {
        schema_version: SCHEMA_VERSION,
        run_id: Some(preamble.run_id.clone()),
        run_ids: Vec::new(),
        scenario: scenario.name.clone(),
        kind: scenario.kind.name().to_string(),
        target: target_name,
        profile: preamble.profile(),
        started_at,
        duration_s,
        // A run stopped in set-up never warmed up.
        warmup_s: if measured.started {
            preamble.warmup_s
        } else {
            0.0
        },
        load,
        operations,
        totals,
        service_time_us,
        // Judged afterwards (`gate::judge`): measuring reports only what it measured.
        targets: Vec::new(),
        integrity: measured.integrity,
        delivery: None,
        server,
        environment: Environment::detect(threads),
        machine,
        timeseries: measured.series.points(),
        operations_timeseries: op_series.into_map(),
        extra: measured.extra,
        errors: measured.errors,
        warnings,
        exit_code: if aborted.is_some() {
            exit::ABORTED
        } else {
            exit::OK
        },
        aborted,
        shape: shape_results,
        generator,
        levels: Vec::new(),
        knee: None,
        capacity: None,
    })
}
