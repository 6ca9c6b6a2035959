//! The command line: clap definitions and dispatch to the library.

use crate::exit;
use crate::load::bounds;
use crate::load::builtin;
use crate::load::client::{Timeouts, Wire};
use crate::load::engine::Length;
use crate::load::https::TlsOptions;
use crate::load::results::Results;
use crate::load::run::{kind_name, run_scenario, ConnectionBudget, RunOptions};
use crate::load::scenario::{LoadModel, OpKind, OperationSpec, RunLength, Scenario, ScenarioKind};
use crate::monitor::{self, storage::Profile, ServeConfig, ServeError};
use crate::report::{self, Format};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
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
#[derive(Debug, Clone, clap::Args)]
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
    fn out_is_stdout(&self) -> bool {
        self.out.as_deref() == Some(Path::new("-"))
    }
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
    /// Async worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Longest a connection may take to send a request head, or to sit idle between requests,
    /// and a request its body; then it is closed (a body gets 408 first), e.g. 30s.
    #[arg(long, value_parser = |s: &str| bounds::TIMEOUT.parse(s), default_value = "30s")]
    pub read_timeout: Duration,
    /// After SIGTERM/SIGINT, how long in-flight requests may take before every connection still
    /// open is closed, e.g. 5s.
    #[arg(long, value_parser = |s: &str| bounds::TIMEOUT.parse(s), default_value = "5s")]
    pub shutdown_timeout: Duration,
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
}

impl ServeArgs {
    pub fn config(&self) -> ServeConfig {
        ServeConfig {
            addr: self.addr.clone(),
            data_dir: self.data_dir.clone(),
            profile: self.profile.into(),
            workers: self.workers,
            timeouts: monitor::server::Timeouts {
                read: self.read_timeout,
                shutdown: self.shutdown_timeout,
            },
            perf: monitor::perf::PerfConfig {
                instrument: !self.no_instrumentation,
                alerts: self.alerts.clone().unwrap_or_default(),
                slow_query: self.slow_query_ms,
            },
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Monitor {
            target,
            duration,
            interval,
            out,
            format,
        } => crate::watch::monitor(&target, duration, interval, out.as_deref(), format),
        Command::Analyze { target, format } => crate::watch::analyze(&target, format),
        Command::Optimize {
            target,
            actions,
            format,
        } => crate::watch::optimize(&target, &crate::watch::default_actions(actions), format),
        Command::Api {
            common,
            requests,
            duration,
        } => {
            let mut s = scenario_for(&common, "api", "api-latency")?;
            if let Some(n) = requests {
                s.length = RunLength::Requests(n);
            }
            if let Some(d) = duration {
                s.length = RunLength::Duration(d);
            }
            run_all(vec![s], &common, false)
        }
        Command::Concurrent { common } => {
            let s = scenario_for(&common, "concurrent", "concurrent")?;
            run_all(vec![s], &common, false)
        }
        Command::Stress {
            common,
            duration,
            read_ratio,
            direct,
        } => {
            let mut s = scenario_for(&common, "stress", "stress")?;
            if let Some(d) = duration {
                s.length = RunLength::Duration(d);
            }
            if let Some(r) = read_ratio {
                apply_read_ratio(&mut s, r)?;
            }
            run_all(vec![s], &common, direct)
        }
        Command::Simulate { common, executions } => {
            let mut s = scenario_for(&common, "simulate", "simulate")?;
            // The scenario is a flow (scenario_for checks the kind), so it has [flow].
            if let (Some(n), Some(flow)) = (executions, s.flow.as_mut()) {
                flow.executions = n;
                flow.check_total().map_err(|e| {
                    exit::usage(anyhow::anyhow!(
                        "--executions {n} in scenario {}: {e}",
                        s.name
                    ))
                })?;
            }
            run_all(vec![s], &common, false)
        }
        Command::Compare {
            files,
            baseline,
            candidate,
            scenario,
            limits,
            pairing,
            format,
            junit,
        } => {
            let (baseline, candidate) = if files.is_empty() {
                (baseline, candidate)
            } else if files.len() == 2 {
                (vec![files[0].clone()], vec![files[1].clone()])
            } else {
                return Err(exit::usage(anyhow::anyhow!(
                    "compare takes BASE.json CAND.json, or --baseline FILES... --candidate FILES..."
                )));
            };
            compare_cmd(
                &baseline,
                &candidate,
                scenario.as_deref(),
                &limits,
                pairing,
                format,
                junit.as_deref(),
            )
        }
        Command::Merge { files, out, format } => {
            check_writable(&out)
                .map_err(|why| exit::usage(anyhow::anyhow!("--out {}: {why}", out.display())))?;
            let parts = files
                .iter()
                .map(|f| read_results(f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            use crate::gate::merge::{merge_results, MergeError};
            let merged = merge_results(&parts).map_err(|e| match &e {
                // Name the files, not their places in the list.
                MergeError::SameRun { first, second, by } => exit::usage(anyhow::anyhow!(
                    "{} and {} are the same run ({by}): merging it twice would count its load \
                     twice; merge each run once",
                    files[first - 1].display(),
                    files[second - 1].display()
                )),
                _ => exit::usage(e),
            })?;
            write_results(&merged, &out).map_err(exit::usage)?;
            print!("{}", report::render(&merged, format.into()));
            eprintln!("merged {} results into {}", parts.len(), out.display());
            Ok(ExitCode::from(merged.exit_code))
        }
        Command::Run {
            scenarios,
            common,
            duration,
        } => {
            if common.scenario.is_some() {
                return Err(exit::usage(anyhow::anyhow!(
                    "run takes scenario files as arguments; --scenario applies to the other commands"
                )));
            }
            // Every file is validated before any load is sent.
            let mut plans = Vec::new();
            for spec in &scenarios {
                let mut s = builtin::load(spec).map_err(exit::usage)?;
                apply_common(&mut s, &common)?;
                if let Some(d) = duration {
                    if matches!(s.kind, ScenarioKind::Burst | ScenarioKind::Flow) {
                        return Err(exit::usage(anyhow::anyhow!(
                            "--duration does not apply to scenario {} (kind {}): a burst \
                             sends `load.concurrency` requests and a flow runs \
                             `flow.executions`; run it without --duration",
                            s.name,
                            kind_name(s.kind)
                        )));
                    }
                    s.length = RunLength::Duration(d);
                }
                plans.push(s);
            }
            run_all(plans, &common, false)
        }
    }
}

/// The command's scenario: `--scenario FILE` if given, else the built-in one; flags applied.
/// A file must be of the command's kind: its flags (`--requests`, `--executions`, ...) are
/// made for that kind, and `run FILE` takes any.
fn scenario_for(common: &Common, command: &str, builtin_name: &str) -> anyhow::Result<Scenario> {
    let mut s = match &common.scenario {
        Some(spec) => builtin::load(spec).map_err(exit::usage)?,
        None => builtin::builtin(builtin_name)
            .expect("built-in scenario exists")
            .map_err(exit::usage)?,
    };
    let wanted = builtin::builtin(builtin_name)
        .expect("built-in scenario exists")
        .map_err(exit::usage)?
        .kind;
    if s.kind != wanted {
        return Err(exit::usage(anyhow::anyhow!(
            "--scenario {}: scenario {} is of kind {}, and `{command}` runs {} scenarios; \
             run it with `stepflow-bench run {}`",
            common.scenario.as_deref().unwrap_or_default(),
            s.name,
            kind_name(s.kind),
            kind_name(wanted),
            common.scenario.as_deref().unwrap_or_default(),
        )));
    }
    apply_common(&mut s, common)?;
    Ok(s)
}

fn apply_common(s: &mut Scenario, common: &Common) -> anyhow::Result<()> {
    // A burst sends its requests at once and a flow runs whole executions: neither has a
    // send rate nor a warm-up.
    if matches!(s.kind, ScenarioKind::Burst | ScenarioKind::Flow) {
        let not_here = |flag: &str, instead: &str| {
            exit::usage(anyhow::anyhow!(
                "{flag} does not apply to scenario {} (kind {}){instead}",
                s.name,
                kind_name(s.kind)
            ))
        };
        if common.rate.is_some() {
            return Err(not_here("--rate", "; use --concurrency"));
        }
        if common.warmup.is_some() {
            return Err(not_here(
                "--warmup",
                ": it has no warm-up, every request it sends is measured",
            ));
        }
    }
    if let Some(w) = common.warmup {
        s.warmup = w;
    }
    // The flags' values are in range (their parsers check `bounds`, as scenario files do).
    if let Some(rate) = common.rate {
        s.load = LoadModel::Open {
            rate_per_s: rate,
            max_in_flight: common.max_in_flight,
        };
    }
    if let Some(c) = common.concurrency {
        s.load = LoadModel::Closed {
            concurrency: Some(c),
        };
    }
    Ok(())
}

fn is_read(spec: &OperationSpec) -> bool {
    match spec {
        OperationSpec::BuiltIn { kind, .. } => matches!(
            kind,
            OpKind::Health
                | OpKind::GetExecution
                | OpKind::ListExecutions
                | OpKind::GetLogs
                | OpKind::ListArtifacts
        ),
        OperationSpec::Request(r) => r.method == "GET" || r.method == "HEAD",
    }
}

/// Rescales weights so reads make up `ratio` of the mix, keeping proportions within each side.
fn apply_read_ratio(s: &mut Scenario, ratio: f64) -> anyhow::Result<()> {
    bounds::READ_RATIO
        .check(ratio)
        .map_err(|e| exit::usage(anyhow::anyhow!("--read-ratio {e}")))?;
    let sum = |reads: bool| -> u64 {
        s.operations
            .iter()
            .filter(|o| is_read(&o.spec) == reads)
            .map(|o| u64::from(o.weight))
            .sum()
    };
    let (reads, writes) = (sum(true), sum(false));
    if (ratio > 0.0 && reads == 0) || (ratio < 1.0 && writes == 0) {
        return Err(exit::usage(anyhow::anyhow!(
            "--read-ratio {ratio} needs both read and write operations in scenario {}",
            s.name
        )));
    }
    let scale = 10_000.0;
    s.operations.retain(|o| {
        let side = is_read(&o.spec);
        !(side && ratio == 0.0 || !side && ratio == 1.0)
    });
    for o in &mut s.operations {
        let (side_sum, share) = if is_read(&o.spec) {
            (reads, ratio)
        } else {
            (writes, 1.0 - ratio)
        };
        o.weight = ((f64::from(o.weight) / side_sum as f64) * share * scale)
            .round()
            .max(1.0) as u32;
    }
    Ok(())
}

/// Reads one results file; anything unreadable is bad input (exit 2).
fn read_results(path: &Path) -> anyhow::Result<Results> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read results file {}", path.display()))
        .map_err(exit::usage)?;
    let results: Results = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a stepflow-bench results file", path.display()))
        .map_err(exit::usage)?;
    results
        .check_plausible()
        .map_err(|e| exit::usage(anyhow::anyhow!("{}: {e}", path.display())))?;
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
fn compare_cmd(
    baseline: &[PathBuf],
    candidate: &[PathBuf],
    scenario: Option<&str>,
    limit_flags: &[String],
    pairing: PairingArg,
    format: FormatArg,
    junit: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    use crate::gate::compare::{compare, CompareOptions, Limits, Metric, Pairing};
    if let Some(path) = junit {
        check_writable(path)
            .map_err(|why| exit::usage(anyhow::anyhow!("--junit {}: {why}", path.display())))?;
    }
    // Flags first: a bad one is found without reading any file.
    let mut limit_overrides = Vec::new();
    for flag in limit_flags {
        let (name, value) = flag.split_once('=').ok_or_else(|| {
            exit::usage(anyhow::anyhow!(
                "--limit {flag:?}: expected METRIC=VALUE, e.g. p99=25"
            ))
        })?;
        let metric = Metric::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            exit::usage(anyhow::anyhow!(
                "--limit {flag:?}: unknown metric {name:?}; expected throughput, p50, p90, p99 or error_rate"
            ))
        })?;
        let bound = match metric {
            Metric::ErrorRate => bounds::GATE_ERROR_RATE,
            _ => bounds::GATE_PERCENT,
        };
        let value = bound
            .parse(value)
            .map_err(|e| exit::usage(anyhow::anyhow!("--limit {flag:?}: {e}")))?;
        limit_overrides.push((metric, value));
    }
    let base = baseline
        .iter()
        .map(|f| read_results(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cand = candidate
        .iter()
        .map(|f| read_results(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // An aborted run measured only part of its window: it is no sample of the scenario.
    for (path, r) in baseline
        .iter()
        .zip(&base)
        .chain(candidate.iter().zip(&cand))
    {
        if let Some(why) = &r.aborted {
            return Err(exit::usage(anyhow::anyhow!(
                "{} is an aborted run ({why}); rerun it",
                path.display()
            )));
        }
    }
    let gate_source = match scenario {
        Some(spec) => Some(builtin::load(spec).map_err(exit::usage)?),
        None => base
            .first()
            .and_then(|r| builtin::builtin(&r.scenario))
            .and_then(Result::ok),
    };
    let mut limits = gate_source.map_or_else(Limits::default, |s| Limits::from_gate(&s.gate));
    for (metric, value) in limit_overrides {
        limits.set(metric, value);
    }
    let options = CompareOptions {
        limits,
        pairing: match pairing {
            PairingArg::Auto => Pairing::Auto,
            PairingArg::Paired => Pairing::Paired,
            PairingArg::Unpaired => Pairing::Unpaired,
        },
        ..CompareOptions::default()
    };
    let comparison = compare(&base, &cand, &options).map_err(|e| {
        // Name the file an index points at.
        exit::usage(anyhow::anyhow!(
            "{e} (baseline: {baseline:?}, candidate: {candidate:?})"
        ))
    })?;
    let rendered = match format {
        FormatArg::Table => report::render_compare_table(&comparison),
        FormatArg::Markdown => report::render_compare_markdown(&comparison),
        FormatArg::Json => {
            serde_json::to_string_pretty(&comparison).expect("comparison serializes") + "\n"
        }
    };
    // The comparison carries the whole verdict (regressions, lost writes, missed targets):
    // what is printed and the exit code cannot disagree.
    print!("{rendered}");
    if let Some(path) = junit {
        // Found writable before; failing now is still the file's fault, not an
        // inconclusive comparison (exit 3 is that).
        std::fs::write(path, report::render_junit(&comparison))
            .with_context(|| format!("cannot write JUnit report {}", path.display()))
            .map_err(exit::usage)?;
    }
    Ok(ExitCode::from(comparison.exit_code))
}

fn default_out(results: &Results) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    PathBuf::from("results").join(format!("{}-{stamp}.json", results.scenario))
}

/// Finds out before any work whether a file can be written at `path` the way
/// `write_results` (or the JUnit report) will write it, so that an unwritable place is bad
/// usage (exit 2) rather than a run or comparison thrown away at its end. Nothing is left
/// behind: the one file made to try is removed.
fn check_writable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err("is a directory; give a file name".into()),
        // A device or a FIFO is written to as it is: open it so, without blocking on a
        // FIFO that has no reader yet (ENXIO), and without truncating anything.
        Ok(m) if !m.is_file() => {
            return match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
            {
                Ok(_) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(()),
                Err(e) => Err(format!("cannot be opened for writing ({e})")),
            };
        }
        _ => {}
    }
    // The file is written beside itself (a temporary file, then renamed), through a
    // symlink beside the file it points to, in a directory made if missing.
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut dir = resolved
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    while std::fs::symlink_metadata(&dir).is_err() {
        match dir.parent() {
            Some(up) if !up.as_os_str().is_empty() => dir = up.to_path_buf(),
            _ => {
                dir = PathBuf::from(".");
                break;
            }
        }
    }
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    tempfile::Builder::new()
        .prefix(".stepflow-bench-write-check-")
        .tempfile_in(&dir)
        .map(drop)
        .map_err(|e| format!("no file can be created in {} ({e})", dir.display()))
}

fn write_results(results: &Results, out: &Path) -> anyhow::Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create results dir {}", dir.display()))?;
    }
    let json = report::render(results, Format::Json);
    // Something that is not a regular file (/dev/null, /dev/stdout, a FIFO) is written to
    // as it is: renaming over it would replace the device or pipe with a file.
    // (A directory as --out is refused before the run.)
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        return std::fs::write(out, json)
            .with_context(|| format!("cannot write {}", out.display()));
    }
    // Through a symlink, the file it points to is replaced, not the link.
    let resolved = std::fs::canonicalize(out);
    let out = resolved.as_deref().unwrap_or(out);
    // Written whole to a temporary file, then renamed: a reader never sees half a file.
    let tmp = out.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// Checks `--target` and picks how to reach it: the lean HTTP/1.1 client for http://,
/// reqwest with the TLS settings of --cacert/--insecure for https:// and --http2. A
/// `--cacert` that cannot be used is bad usage (exit 2), found before anything runs.
fn wire_for(common: &Common) -> anyhow::Result<Wire> {
    let Some(url) = &common.target else {
        return Ok(Wire::Lean);
    };
    use crate::load::client::{Endpoint, EndpointError};
    let https = match Endpoint::parse(url) {
        Ok(endpoint) => endpoint.https,
        // A host that does not resolve cannot be reached: the run records that (exit 3).
        Err(EndpointError::Resolve { .. }) => url.starts_with("https://"),
        // A malformed URL is bad usage.
        Err(e) => return Err(exit::usage(e)),
    };
    if !https {
        for (given, flag) in [
            (common.cacert.is_some(), "--cacert"),
            (common.insecure, "--insecure"),
        ] {
            if given {
                return Err(exit::usage(anyhow::anyhow!(
                    "{flag} applies to https:// targets, and --target {url} is plain HTTP"
                )));
            }
        }
    }
    if !https && !common.http2 {
        return Ok(Wire::Lean);
    }
    let tls = TlsOptions {
        cacert: common.cacert.clone(),
        insecure: common.insecure,
        http2: common.http2,
    };
    let wire = crate::load::https::Wire::new(https, &tls).map_err(exit::usage)?;
    Ok(Wire::Reqwest(std::sync::Arc::new(wire)))
}

/// Refuses flags that would have no effect on these runs: a flag is never silently ignored.
fn refuse_flags_that_do_not_apply(
    scenarios: &[Scenario],
    common: &Common,
    direct: bool,
) -> anyhow::Result<()> {
    let refuse = |msg: String| Err(exit::usage(anyhow::anyhow!(msg)));
    if common.target.is_none() {
        for (given, flag) in [
            (common.cacert.is_some(), "--cacert"),
            (common.insecure, "--insecure"),
            (common.http2, "--http2"),
        ] {
            if given {
                return refuse(format!(
                    "{flag} applies to a --target: {}",
                    if direct {
                        "--direct sends no HTTP at all"
                    } else {
                        "the bundled monitor is reached over plain HTTP/1.1"
                    }
                ));
            }
        }
    }
    if common.target.is_some() {
        if let Some(p) = common.profile {
            return refuse(format!(
                "--profile {} applies to the bundled monitor, which --target replaces: the \
                 target's storage is its own; drop --profile, or drop --target to load the \
                 bundled monitor",
                Profile::from(p).as_str()
            ));
        }
        if common.keep_data {
            return refuse(
                "--keep-data keeps the bundled monitor's data dir, and with --target none is \
                 started; drop --keep-data"
                    .into(),
            );
        }
    }
    if direct {
        if common.timeout.is_some() {
            return refuse(
                "--timeout limits HTTP requests, and --direct sends none; drop --timeout".into(),
            );
        }
        for s in scenarios {
            if let Some(op) = s
                .operations
                .iter()
                .find(|o| matches!(o.spec, OperationSpec::Request(_)))
            {
                return refuse(format!(
                    "--direct runs built-in operations against the storage layer, and \
                     operation \"{}\" of scenario {} is a plain HTTP request; drop --direct",
                    op.name, s.name
                ));
            }
        }
    }
    Ok(())
}

/// Each worker, burst request or flow in flight holds a connection: more than the machine
/// can open is refused before any run, naming the flag or key the number came from.
fn refuse_connections_past_the_budget(
    scenarios: &[Scenario],
    common: &Common,
    budget: &ConnectionBudget,
) -> anyhow::Result<()> {
    for s in scenarios {
        let (wanted, flag, key) = match s.load {
            LoadModel::Closed { concurrency } => (
                concurrency.unwrap_or(32),
                common.concurrency.map(|_| "--concurrency"),
                "load.concurrency",
            ),
            LoadModel::Open {
                max_in_flight: Some(m),
                ..
            } => (
                m,
                common.max_in_flight.map(|_| "--max-in-flight"),
                "load.concurrency (the open model's in-flight cap)",
            ),
            // The default cap follows the budget.
            LoadModel::Open { .. } => continue,
        };
        if let Some(why) = budget.refuse(u64::from(wanted)) {
            let what = match flag {
                Some(flag) => format!("{flag} {wanted}"),
                None => format!("{key} = {wanted} of scenario {}", s.name),
            };
            return Err(exit::usage(anyhow::anyhow!("{what}: {why}")));
        }
    }
    Ok(())
}

fn run_all(scenarios: Vec<Scenario>, common: &Common, direct: bool) -> anyhow::Result<ExitCode> {
    refuse_flags_that_do_not_apply(&scenarios, common, direct)?;
    let wire = wire_for(common)?;
    if let Some(out) = common.out.as_ref().filter(|p| p.is_dir()) {
        return Err(exit::usage(anyhow::anyhow!(
            "--out {} is a directory; give a file name, e.g. {}",
            out.display(),
            out.join("results.json").display()
        )));
    }
    // Where the results will go, checked before any load (several scenarios' files go
    // beside each other, so one check does for all).
    if !common.out_is_stdout() {
        let out = common
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join("results.json"));
        check_writable(&out).map_err(|why| {
            exit::usage(anyhow::anyhow!(
                "--out {}: {why}",
                common.out.as_deref().unwrap_or(&out).display()
            ))
        })?;
    }
    let program = std::env::current_exe().context("cannot find this executable")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = common.threads.unwrap_or(cores);
    let budget = ConnectionBudget::detect(threads);
    if !direct {
        refuse_connections_past_the_budget(&scenarios, common, &budget)?;
    }
    let opts = RunOptions {
        target: common.target.clone(),
        profile: common.profile.unwrap_or(ProfileArg::Optimized).into(),
        direct,
        keep_data: common.keep_data,
        threads,
        progress: !common.no_progress,
        program,
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            request: common.timeout.unwrap_or(Duration::from_secs(30)),
        },
        wire,
        default_concurrency: 32,
        default_length: Length::Duration(Duration::from_secs(10)),
        // The open model's cap adapts to the machine when the user set none.
        default_max_in_flight: u32::try_from(budget.usable.clamp(1, 10_000)).unwrap_or(10_000),
    };
    let many = scenarios.len() > 1;
    // `--out -`: the results JSON is stdout's, and the report of another format goes to
    // stderr, so that stdout parses as JSON whatever the format.
    let to_stdout = common.out_is_stdout();
    let json_on_stdout = to_stdout || common.format == FormatArg::Json;
    // Several scenarios as JSON: one array on stdout, an element per scenario, so that it
    // parses as one document.
    let json_array = many && json_on_stdout;
    let mut worst = exit::OK;
    for (i, scenario) in scenarios.iter().enumerate() {
        if many {
            eprintln!("== {} ==", scenario.name);
        }
        let results = match run_scenario(scenario, &opts) {
            Ok(results) => results,
            Err(e) => {
                if json_array && i > 0 {
                    println!("\n]");
                }
                return Err(e);
            }
        };
        let written = (!to_stdout).then(|| {
            let out = match &common.out {
                Some(p) if many => {
                    let stem = p
                        .file_stem()
                        .map_or("results".into(), |s| s.to_string_lossy().into_owned());
                    p.with_file_name(format!("{stem}-{}.json", results.scenario))
                }
                Some(p) => p.clone(),
                None => default_out(&results),
            };
            let written = write_results(&results, &out);
            (out, written)
        });
        let mut rendered = if json_on_stdout {
            report::render(&results, Format::Json)
        } else {
            report::render(&results, common.format.into())
        };
        if json_array {
            let separator = if i == 0 { "[\n" } else { ",\n" };
            rendered = format!("{separator}{}", rendered.trim_end());
        }
        if to_stdout && common.format != FormatArg::Json {
            eprint!("{}", report::render(&results, common.format.into()));
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(rendered.as_bytes());
        let _ = stdout.flush();
        match written {
            Some((out, Ok(()))) => eprintln!("results written to {}", out.display()),
            Some((_, Err(e))) => {
                eprintln!("Error: {e:#}");
                worst = worst.max(exit::ABORTED);
            }
            None => {}
        }
        let built_in = builtin::BUILTIN.iter().any(|(n, _)| *n == results.scenario);
        if built_in && common.format == FormatArg::Table && results.aborted.is_none() {
            eprintln!(
                "note: the targets are the service's objectives (API < 50 ms, DB operations < \
                 5 ms, >= 1,000 ops/s, 0 % errors); what this machine should reach is in \
                 results/README.md (reference figures, 2-core Xeon and EPYC)"
            );
        }
        worst = worst.max(results.exit_code);
        if let Some(why) = &results.aborted {
            // Also on stderr when the report is not on a terminal (stdout may be JSON, a
            // file or a pipe).
            let report_on_terminal = if to_stdout && common.format != FormatArg::Json {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal() && !json_on_stdout
            };
            if !report_on_terminal {
                eprintln!("Error: run aborted: {why}");
            }
            break;
        }
    }
    if json_array {
        println!("\n]");
    }
    Ok(ExitCode::from(worst))
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    match monitor::serve_cli(args.config()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (ServeError::DataDir { .. } | ServeError::Bind { .. })) => Err(exit::usage(e)),
        Err(e) => Err(exit::aborted(e)),
    }
}

/// The body of every binary's `main`: run, print the whole error chain, map it to an exit code.
pub fn main_with(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(exit::code_of(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
