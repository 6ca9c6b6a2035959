//! The load commands (`api`, `concurrent`, `stress`, `simulate`, `run`): each builds its
//! scenarios from the flags, then `run_all` sequences measure → judge → render for each.

use super::args::{Common, FormatArg, ProfileArg};
use crate::exit;
use crate::gate::judge;
use crate::load::builtin;
use crate::load::client::{Timeouts, Wire};
use crate::load::https::TlsOptions;
use crate::load::run::{run_scenario, ConnectionBudget, RunOptions};
use crate::load::scenario::{Length, LoadModel, OperationSpec, Scenario, ScenarioKind};
use crate::load::stream::{write_line, StreamSink};
use crate::monitor::storage::Profile;
use crate::report::{self, Format};
use crate::results::io::{check_flag_writable, check_writable, write_results};
use crate::results::Results;
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `api`: per-endpoint latency, optionally a request count or a time per endpoint.
pub fn api(
    common: &Common,
    requests: Option<u64>,
    duration: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let mut s = scenario_for(common, "api", "api-latency")?;
    if let Some(n) = requests {
        s.length = Some(Length::Requests(n));
    }
    if let Some(d) = duration {
        s.length = Some(Length::Duration(d));
    }
    run_all(vec![s], common, false)
}

/// `concurrent`: a burst of creates.
pub fn concurrent(common: &Common) -> anyhow::Result<ExitCode> {
    let s = scenario_for(common, "concurrent", "concurrent")?;
    run_all(vec![s], common, false)
}

/// `stress`: the mixed read/write stress, over HTTP or `--direct`.
pub fn stress(
    common: &Common,
    duration: Option<Duration>,
    read_ratio: Option<f64>,
    direct: bool,
) -> anyhow::Result<ExitCode> {
    let mut s = scenario_for(common, "stress", "stress")?;
    if let Some(d) = duration {
        s.length = Some(Length::Duration(d));
    }
    if let Some(r) = read_ratio {
        s.set_read_ratio(r)
            .map_err(|e| exit::usage(anyhow::anyhow!(e)))?;
    }
    run_all(vec![s], common, direct)
}

/// `simulate`: the real-world flow, optionally with another number of executions.
pub fn simulate(common: &Common, executions: Option<u32>) -> anyhow::Result<ExitCode> {
    let mut s = scenario_for(common, "simulate", "simulate")?;
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
    run_all(vec![s], common, false)
}

/// `run`: scenario files (or built-in names) one after another, every one validated before
/// any load is sent.
pub fn run(
    scenarios: &[String],
    common: &Common,
    duration: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    if common.scenario.is_some() {
        return Err(exit::usage(anyhow::anyhow!(
            "run takes scenario files as arguments; --scenario applies to the other commands"
        )));
    }
    let mut plans = Vec::new();
    for spec in scenarios {
        let mut s = builtin::load(spec).map_err(exit::usage)?;
        s.apply_flags(&common.load_flags())
            .map_err(|e| exit::usage(anyhow::anyhow!(e)))?;
        if let Some(d) = duration {
            if matches!(s.kind, ScenarioKind::Burst | ScenarioKind::Flow) {
                return Err(exit::usage(anyhow::anyhow!(
                    "--duration does not apply to scenario {} (kind {}): a burst sends \
                     `load.concurrency` requests and a flow runs `flow.executions`; run it \
                     without --duration",
                    s.name,
                    s.kind.name()
                )));
            }
            s.length = Some(Length::Duration(d));
        }
        plans.push(s);
    }
    run_all(plans, common, false)
}

/// The command's scenario: `--scenario FILE` if given, else the built-in one; flags applied.
/// A file must be of the command's kind: its flags (`--requests`, `--executions`, ...) are
/// made for that kind, and `run FILE` takes any.
pub(super) fn scenario_for(
    common: &Common,
    command: &str,
    builtin_name: &str,
) -> anyhow::Result<Scenario> {
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
            s.kind.name(),
            wanted.name(),
            common.scenario.as_deref().unwrap_or_default(),
        )));
    }
    s.apply_flags(&common.load_flags())
        .map_err(|e| exit::usage(anyhow::anyhow!(e)))?;
    Ok(s)
}

/// The stream's last line for a run: how it was judged, and its headline figures.
fn summary_line(r: &Results) -> serde_json::Value {
    let t = &r.totals;
    serde_json::json!({"summary": {
        "scenario": r.scenario,
        "run_id": r.run_id,
        "exit_code": r.exit_code,
        "aborted": r.aborted,
        "duration_s": r.duration_s,
        "totals": {
            "count": t.count,
            "errors": t.errors,
            "throughput": t.throughput,
            "p50_us": t.latency_us.p50,
            "p99_us": t.latency_us.p99,
        },
        "targets": r.targets,
        "integrity": r.integrity,
    }})
}

/// `path` for one of several scenarios: `r.json` → `r-stress.json`.
fn per_scenario(path: &std::path::Path, scenario: &str, extension: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or("results".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-{scenario}.{extension}"))
}

fn default_out(results: &Results) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    PathBuf::from("results").join(format!("{}-{stamp}.json", results.scenario))
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

/// Everything checked before any load (flags, scenarios' stages, the target's URL, where
/// results go, the connection budget), and the options the runs take.
pub(super) fn prepare(
    scenarios: &[Scenario],
    common: &Common,
    direct: bool,
) -> anyhow::Result<RunOptions> {
    refuse_flags_that_do_not_apply(scenarios, common, direct)?;
    for s in scenarios {
        s.check_stages()
            .map_err(|e| exit::usage(anyhow::anyhow!(e)))?;
    }
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
    for (flag, path) in [("--junit", &common.junit), ("--html", &common.html)] {
        if let Some(path) = path {
            check_flag_writable(flag, path)?;
        }
    }
    let stream_to_stdout = common.stream.as_deref() == Some(std::path::Path::new("-"));
    if stream_to_stdout && common.out_is_stdout() {
        return Err(exit::usage(anyhow::anyhow!(
            "--stream - and --out - both want stdout; send one of them to a file"
        )));
    }
    let stream: Option<StreamSink> = match &common.stream {
        None => None,
        Some(_) if stream_to_stdout => Some(Arc::new(Mutex::new(Box::new(std::io::stdout())))),
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| {
                exit::usage(anyhow::anyhow!(
                    "--stream {}: cannot be written ({e})",
                    path.display()
                ))
            })?;
            Some(Arc::new(Mutex::new(Box::new(file))))
        }
    };
    let program = std::env::current_exe().context("cannot find this executable")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = common.threads.unwrap_or(cores);
    let budget = ConnectionBudget::detect(threads);
    if !direct {
        refuse_connections_past_the_budget(scenarios, common, &budget)?;
    }
    Ok(RunOptions {
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
        stream,
        shared_monitor: None,
    })
}

fn run_all(scenarios: Vec<Scenario>, common: &Common, direct: bool) -> anyhow::Result<ExitCode> {
    let opts = prepare(&scenarios, common, direct)?;
    let stream = opts.stream.clone();
    let stream_to_stdout = common.stream.as_deref() == Some(std::path::Path::new("-"));
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
        // Measure, then judge, then render.
        let results = match run_scenario(scenario, &opts) {
            Ok(mut results) => {
                judge::judge(&scenario.targets, &mut results);
                if let Some(sink) = &stream {
                    let _ = write_line(sink, &summary_line(&results));
                }
                results
            }
            Err(e) => {
                if json_array && i > 0 {
                    println!("\n]");
                }
                return Err(e);
            }
        };
        let written = (!to_stdout).then(|| {
            let out = match &common.out {
                Some(p) if many => per_scenario(p, &results.scenario, "json"),
                Some(p) => p.clone(),
                None => default_out(&results),
            };
            let written = write_results(&results, &out);
            (out, written)
        });
        let report_file = |path: &Option<PathBuf>, format: Format, what: &str| {
            path.as_ref().map(|p| {
                let extension = p.extension().map_or("out".into(), |e| e.to_string_lossy());
                let path = if many {
                    per_scenario(p, &results.scenario, &extension)
                } else {
                    p.clone()
                };
                let written = std::fs::write(&path, report::exporter(format).results(&results))
                    .with_context(|| format!("cannot write {what} {}", path.display()));
                (path, written)
            })
        };
        let junit = report_file(&common.junit, Format::Junit, "JUnit report");
        let html = report_file(&common.html, Format::Html, "HTML report");
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
        // With `--stream -` stdout is the stream's: the report goes to stderr.
        let mut report_out: Box<dyn Write> = if stream_to_stdout {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        let _ = report_out.write_all(rendered.as_bytes());
        let _ = report_out.flush();
        for (what, file) in [
            ("results", written),
            ("JUnit report", junit),
            ("HTML report", html),
        ] {
            match file {
                Some((path, Ok(()))) => eprintln!("{what} written to {}", path.display()),
                // The run happened; a file it could not write makes it inconclusive.
                Some((_, Err(e))) => {
                    eprintln!("Error: {e:#}");
                    worst = worst.max(exit::ABORTED);
                }
                None => {}
            }
        }
        // (The null scenario has no objectives: it loads `serve --null`, not the service.)
        let built_in = builtin::BUILTIN.iter().any(|(n, _)| *n == results.scenario)
            && results.scenario != "null";
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
