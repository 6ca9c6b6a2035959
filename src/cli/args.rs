//! The command line's clap definitions, and nothing else: what each subcommand and flag is,
//! with its checked range (`load::bounds`).

use crate::load::bounds;
use crate::load::scenario::LoadFlags;
use crate::monitor::{self, storage::Profile, ServeConfig};
use crate::report::Format;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Load-testing harness with a bundled StepFlow monitor (REST on SQLite).
#[derive(Debug, Parser)]
#[command(name = "stepflow-bench", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bundled StepFlow monitor until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Per-endpoint latency: health, list newest 10, get one execution (scenario api-latency).
    Api {
        #[command(flatten)]
        common: Common,
        /// Measured requests per endpoint (instead of the scenario's length).
        #[arg(long, conflicts_with = "duration", value_parser = |s: &str| bounds::REQUESTS.parse(s))]
        requests: Option<u64>,
        /// Measured time per endpoint, e.g. 10s (instead of a request count).
        #[arg(long, value_parser = |s: &str| bounds::DURATION.parse(s))]
        duration: Option<Duration>,
    },
    /// N executions created at once, all in flight together, then all listed (scenario concurrent).
    Concurrent {
        #[command(flatten)]
        common: Common,
    },
    /// Mixed read/write stress over the real API with an integrity check (scenario stress).
    Stress {
        #[command(flatten)]
        common: Common,
        /// Measured time, e.g. 30, 30s, 2m.
        #[arg(long, value_parser = |s: &str| bounds::DURATION.parse(s))]
        duration: Option<Duration>,
        /// Share of reads in the mix, 0 to 1 (weights are rescaled; default from the scenario).
        #[arg(long, value_parser = |s: &str| bounds::READ_RATIO.parse(s))]
        read_ratio: Option<f64>,
        /// Run the same mix in-process against the storage layer, without HTTP.
        #[arg(long, conflicts_with = "target")]
        direct: bool,
    },
    /// The real-world flow: executions with steps, logs and artifacts (scenario simulate).
    Simulate {
        #[command(flatten)]
        common: Common,
        /// Executions to simulate.
        #[arg(long, value_parser = |s: &str| bounds::FLOW_EXECUTIONS.parse_u32(s))]
        executions: Option<u32>,
    },
    /// WebSocket fan-out: N subscribers on /api/ws, writes at --rate events/s, every event's
    /// delivery latency and a check that every subscriber got each exactly once, in order.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        fanout: super::fanout::FanoutArgs,
    },
    /// Compare baseline runs with candidate runs: per-metric change, interval, verdict.
    ///
    /// `compare BASE.json CAND.json` is the one-run short form; with several runs a side use
    /// `--baseline A1.json A2.json ... --candidate B1.json B2.json ...`.
    Compare {
        /// BASE.json CAND.json (short form).
        #[arg(num_args = 0..=2, conflicts_with_all = ["baseline", "candidate"])]
        files: Vec<PathBuf>,
        /// Baseline results files (one run each).
        #[arg(long, num_args = 1.., requires = "candidate")]
        baseline: Vec<PathBuf>,
        /// Candidate results files (one run each).
        #[arg(long, num_args = 1.., requires = "baseline")]
        candidate: Vec<PathBuf>,
        /// Scenario file or built-in name whose [gate] limits apply (default: the built-in
        /// scenario of the results' name, if any).
        #[arg(long)]
        scenario: Option<String>,
        /// Override a limit, percent (error_rate: percentage points), e.g. --limit p99=25.
        #[arg(long = "limit", value_name = "METRIC=VALUE")]
        limits: Vec<String>,
        #[arg(long, value_enum, default_value_t = PairingArg::Auto)]
        pairing: PairingArg,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
        /// Also write a JUnit XML report here (one test case per metric).
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Also write the comparison as a self-contained HTML page here.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Merge results of one scenario from generators that ran at the same time.
    Merge {
        /// Results files to merge.
        #[arg(required = true, num_args = 2..)]
        files: Vec<PathBuf>,
        /// Where to write the merged results JSON.
        #[arg(long)]
        out: PathBuf,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
    },
    /// Watch a monitor's stats and alerts live; the time series is written as results JSON.
    Monitor {
        /// The service, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        target: String,
        /// How long to watch, e.g. 60, 60s, 5m.
        #[arg(long, default_value = "60", value_parser = |s: &str| bounds::DURATION.parse(s))]
        duration: Duration,
        /// Time between polls, 100ms to 1h.
        #[arg(long, default_value = "1", value_parser = |s: &str| crate::watch::parse_interval(s))]
        interval: Duration,
        /// Results JSON path (default results/monitor-<timestamp>.json).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = crate::watch::WatchFormat::Table)]
        format: crate::watch::WatchFormat,
    },
    /// Print a monitor's recommendations (GET /performance/recommendations).
    Analyze {
        #[arg(long)]
        target: String,
        #[arg(long, value_enum, default_value_t = crate::watch::WatchFormat::Table)]
        format: crate::watch::WatchFormat,
    },
    /// Run a monitor's optimize actions (POST /performance/optimize) and print what was done.
    Optimize {
        #[arg(long)]
        target: String,
        /// Actions, in order (repeat the flag); default analyze, optimize, checkpoint.
        #[arg(long = "action", value_parser = ["analyze", "optimize", "checkpoint", "vacuum"])]
        actions: Vec<String>,
        #[arg(long, value_enum, default_value_t = crate::watch::WatchFormat::Table)]
        format: crate::watch::WatchFormat,
    },
    /// Render results files that exist: one run, or several overlaid on one page.
    Report {
        /// Results files.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Where to write the HTML page.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// What to print on stdout (each run's report).
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
    },
    /// One scenario at each of several load levels, with a table and the knee (where
    /// throughput stops growing while latency keeps growing).
    Sweep(SweepArgs),
    /// The highest open-model rate at which an SLO holds: exponential probe, bisection to
    /// 5 %, two confirmations, within a time budget.
    Capacity(CapacityArgs),
    /// Run scenario files (or built-in scenario names) one after another.
    Run {
        /// Scenario TOML files, or built-in names: api-latency, concurrent, stress, simulate, ci.
        #[arg(required = true)]
        scenarios: Vec<String>,
        #[command(flatten)]
        common: Common,
        /// Measured time, overriding every scenario's.
        #[arg(long, value_parser = |s: &str| bounds::DURATION.parse(s))]
        duration: Option<Duration>,
    },
}

/// Pairing of baseline and candidate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PairingArg {
    /// Paired when both sides have the same number of runs (interleaved runs).
    Auto,
    Paired,
    Unpaired,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FormatArg {
    #[default]
    Table,
    Json,
    Markdown,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Table => Format::Table,
            FormatArg::Json => Format::Json,
            FormatArg::Markdown => Format::Markdown,
        }
    }
}

/// Flags every load command shares; unset flags leave the scenario's values alone.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Common {
    /// Load this URL instead of starting the bundled monitor (http://HOST:PORT or
    /// https://HOST:PORT).
    #[arg(long)]
    pub target: Option<String>,
    /// https:// targets: trust the CA certificates in FILE (PEM) instead of the system's.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// https:// targets: accept any certificate (the connection is still encrypted).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Speak HTTP/2 only: ALPN h2 on https://, prior knowledge (h2c) on http://. Without it
    /// https:// targets get HTTP/2 when they offer it, HTTP/1.1 otherwise.
    #[arg(long)]
    pub http2: bool,
    /// Storage profile of the bundled monitor (or of --direct) [default: optimized].
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Closed model: this many workers (for `concurrent`: requests in flight at once).
    #[arg(long, conflicts_with = "rate", value_parser = |s: &str| bounds::CONCURRENCY.parse_u32(s))]
    pub concurrency: Option<u32>,
    /// Open model: requests per second on a fixed schedule (latency from intended send time).
    #[arg(long, value_parser = |s: &str| bounds::RATE.parse(s))]
    pub rate: Option<f64>,
    /// Open model: most requests in flight at once.
    #[arg(long, requires = "rate", value_parser = |s: &str| bounds::CONCURRENCY.parse_u32(s))]
    pub max_in_flight: Option<u32>,
    /// Load shape: stages DURATION:TARGET, each ramping linearly from the previous target (0
    /// at the start) to its own, a 0s stage a step, e.g. 10s:1000/s,0s:5000/s,20s:5000/s.
    /// Targets with /s are open-model rates; bare ones follow the scenario's model (workers
    /// in the closed model). The shape sets the run's length, warm-up included.
    #[arg(long, value_name = "SPEC", conflicts_with_all = ["rate", "concurrency"], value_parser = |s: &str| crate::load::scenario::parse_stages(s))]
    pub stages: Option<(Vec<crate::load::scenario::Stage>, bool)>,
    /// Warm-up before measuring, e.g. 2s (excluded from every figure).
    #[arg(long, value_parser = |s: &str| bounds::WARMUP.parse(s))]
    pub warmup: Option<Duration>,
    /// Results JSON path (default results/<scenario>-<timestamp>.json); `-` writes it to
    /// stdout, and the report of --format table or markdown to stderr.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Also write a JUnit XML report here: a test case per target and one for the read-back
    /// (several scenarios: one file each, named as for --out).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a self-contained HTML report here: summary, targets, throughput and latency
    /// over time, the percentile spectrum, the distribution, the server's side (several
    /// scenarios: one file each, named as for --out).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// While the run goes, one JSON line per second here (`-`: stdout, and the report moves
    /// to stderr): the second's requests, errors and latency per operation and in all, and
    /// the server's latest figures; the last line is the judged run's summary.
    #[arg(long, value_name = "FILE|-")]
    pub stream: Option<PathBuf>,
    /// No live progress line on stderr.
    #[arg(long)]
    pub no_progress: bool,
    /// Scenario file whose values replace the command's built-in defaults.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Keep the bundled monitor's (or --direct's) temporary data dir after the run.
    #[arg(long)]
    pub keep_data: bool,
    /// Generator threads, each with its own event loop (default: number of cores).
    #[arg(long, value_parser = |s: &str| bounds::THREADS.parse(s).map(|n| n as usize))]
    pub threads: Option<usize>,
    /// Per-request timeout, e.g. 30s [default: 30s].
    #[arg(long, value_parser = |s: &str| bounds::TIMEOUT.parse(s))]
    pub timeout: Option<Duration>,
}

impl Common {
    /// Whether results go to stdout (`--out -`).
    /// The load flags, for `Scenario::apply_flags`.
    pub fn load_flags(&self) -> LoadFlags {
        LoadFlags {
            rate: self.rate,
            max_in_flight: self.max_in_flight,
            concurrency: self.concurrency,
            warmup: self.warmup,
            stages: self.stages.clone(),
        }
    }

    pub fn out_is_stdout(&self) -> bool {
        self.out.as_deref() == Some(Path::new("-"))
    }
}

/// The flags a sweep or a capacity search shares with the load commands (those that set
/// the load itself are the search's own).
#[derive(Debug, Clone, clap::Args)]
pub struct SearchCommon {
    /// Load this URL instead of starting the bundled monitor.
    #[arg(long)]
    pub target: Option<String>,
    /// https:// targets: trust the CA certificates in FILE (PEM) instead of the system's.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// https:// targets: accept any certificate.
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Speak HTTP/2 only.
    #[arg(long)]
    pub http2: bool,
    /// Storage profile of the bundled monitor [default: optimized].
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Scenario file or built-in name (a mix) run at each level [default: stress].
    #[arg(long)]
    pub scenario: Option<String>,
    /// Measured time of each level or step, e.g. 10s.
    #[arg(long, value_parser = |s: &str| bounds::DURATION.parse(s))]
    pub duration: Option<Duration>,
    /// Warm-up before each level or step (default: the scenario's).
    #[arg(long, value_parser = |s: &str| bounds::WARMUP.parse(s))]
    pub warmup: Option<Duration>,
    /// Open model: most requests in flight at once.
    #[arg(long, value_parser = |s: &str| bounds::CONCURRENCY.parse_u32(s))]
    pub max_in_flight: Option<u32>,
    /// Results JSON path (one file holding every level or step); `-` for stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// No live progress line on stderr.
    #[arg(long)]
    pub no_progress: bool,
    /// Generator threads (default: number of cores).
    #[arg(long, value_parser = |s: &str| bounds::THREADS.parse(s).map(|n| n as usize))]
    pub threads: Option<usize>,
    /// Per-request timeout [default: 30s].
    #[arg(long, value_parser = |s: &str| bounds::TIMEOUT.parse(s))]
    pub timeout: Option<Duration>,
}

impl SearchCommon {
    /// The load commands' flags for one level or step: these, with the load given.
    pub fn common(&self, concurrency: Option<u32>, rate: Option<f64>) -> Common {
        Common {
            target: self.target.clone(),
            cacert: self.cacert.clone(),
            insecure: self.insecure,
            http2: self.http2,
            profile: self.profile,
            concurrency,
            rate,
            max_in_flight: rate.and(self.max_in_flight),
            warmup: self.warmup,
            out: self.out.clone(),
            format: self.format,
            no_progress: self.no_progress,
            scenario: self.scenario.clone(),
            threads: self.threads,
            timeout: self.timeout,
            ..Common::default()
        }
    }
}

/// `sweep`: the levels, closed or open.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub search: SearchCommon,
    /// Closed model: workers at each level, e.g. 1,10,50,100,500,1000.
    #[arg(long, value_delimiter = ',', required_unless_present = "rate", conflicts_with = "rate",
          value_parser = |s: &str| bounds::CONCURRENCY.parse_u32(s))]
    pub concurrency: Vec<u32>,
    /// Open model: requests per second at each level, e.g. 1000,5000,10000.
    #[arg(long, value_delimiter = ',', value_parser = |s: &str| bounds::RATE.parse(s))]
    pub rate: Vec<f64>,
    /// A fresh bundled monitor (empty database) for each level; by default one monitor
    /// serves every level, as a long-running service would, its data growing level by level.
    #[arg(long, conflicts_with = "target")]
    pub fresh: bool,
}

/// `capacity`: the SLO and the search's limits.
#[derive(Debug, Clone, clap::Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub search: SearchCommon,
    /// The SLO each step must meet, judged on latency from the intended send time, e.g.
    /// "p99<=10ms" (figures: p50 p90 p95 p99 p999 max mean).
    #[arg(long)]
    pub slo: String,
    /// Most failed requests a step may have, percent, e.g. 0.1% [default: 0.1%].
    #[arg(long, default_value = "0.1%")]
    pub max_error_rate: String,
    /// Longest the whole search may take, e.g. 5m.
    #[arg(long, default_value = "5m", value_parser = |s: &str| bounds::DURATION.parse(s))]
    pub budget: Duration,
    /// First rate probed, requests per second [default: 100].
    #[arg(long, value_parser = |s: &str| bounds::RATE.parse(s))]
    pub start_rate: Option<f64>,
}

/// Storage profile of the bundled monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// WAL, group commit, pooled readers.
    Optimized,
    /// Rollback journal, full sync, a connection per operation (the write-up's "before").
    Legacy,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Profile {
        match p {
            ProfileArg::Optimized => Profile::Optimized,
            ProfileArg::Legacy => Profile::Legacy,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Directory for stepflow.db and the step logs; created if missing.
    #[arg(long, default_value = "stepflow-data")]
    pub data_dir: PathBuf,
    /// Storage profile.
    #[arg(long, value_enum, default_value_t = ProfileArg::Optimized)]
    pub profile: ProfileArg,
    /// Async worker threads, 1 to 512 (default: one per core).
    #[arg(long, value_parser = |s: &str| bounds::SERVE_WORKERS.parse_u32(s))]
    pub workers: Option<u32>,
    /// Longest a connection may take to send a request head, or to sit idle between requests,
    /// and a request its body; then it is closed (a body gets 408 first), e.g. 30s.
    #[arg(long, value_parser = |s: &str| bounds::TIMEOUT.parse(s), default_value = "30s")]
    pub read_timeout: Duration,
    /// Longest a write may wait for a client that does not read its answers; then the
    /// connection is closed, e.g. 30s.
    #[arg(long, value_parser = |s: &str| bounds::TIMEOUT.parse(s), default_value = "30s")]
    pub write_timeout: Duration,
    /// After SIGTERM/SIGINT, how long in-flight requests may take before every connection still
    /// open is closed, e.g. 5s.
    #[arg(long, value_parser = |s: &str| bounds::TIMEOUT.parse(s), default_value = "5s")]
    pub shutdown_timeout: Duration,
    /// WebSocket subscribers (GET /api/ws): events one may fall behind before it is closed
    /// as too slow (4001); the size of the shared event ring.
    #[arg(long, value_parser = |s: &str| bounds::WS_BUFFER.parse(s).map(|n| n as usize), default_value = "8192")]
    pub ws_buffer: usize,
    /// How often idle WebSocket subscribers are pinged (one that has not answered the last
    /// ping when the next is due is closed, 4002), e.g. 30s.
    #[arg(long, value_parser = |s: &str| bounds::TIMEOUT.parse(s), default_value = "30s")]
    pub ws_ping_interval: Duration,
    /// Alert thresholds, TOML (see README); default: the write-up's values.
    #[arg(long, value_name = "FILE", value_parser = |s: &str| monitor::perf::alerts::AlertConfig::load(Path::new(s)))]
    pub alerts: Option<monitor::perf::alerts::AlertConfig>,
    /// Record every SQL statement taking at least this many milliseconds (0 to 60000) in the
    /// slow-query log, GET /performance/slow-queries.
    #[arg(long, value_name = "MS", value_parser = |s: &str| monitor::perf::parse_slow_query_ms(s))]
    pub slow_query_ms: Option<Duration>,
    /// Do not record per-route request figures or run the sampler (to measure their cost).
    #[arg(long)]
    pub no_instrumentation: bool,
    /// Serve a null endpoint instead of the monitor: every request gets `200 {}` at once, no
    /// storage. Load it to find the generator's own ceiling on this machine.
    #[arg(long)]
    pub null: bool,
}

impl ServeArgs {
    pub fn config(&self) -> ServeConfig {
        ServeConfig {
            addr: self.addr.clone(),
            data_dir: self.data_dir.clone(),
            profile: self.profile.into(),
            workers: self.workers.map(|n| n as usize),
            timeouts: monitor::server::Timeouts {
                read: self.read_timeout,
                write: self.write_timeout,
                shutdown: self.shutdown_timeout,
            },
            events: monitor::events::EventsConfig {
                buffer: self.ws_buffer,
                ping_interval: self.ws_ping_interval,
            },
            perf: monitor::perf::PerfConfig {
                instrument: !self.no_instrumentation,
                alerts: self.alerts.clone().unwrap_or_default(),
                slow_query: self.slow_query_ms,
            },
        }
    }
}
