//! `stepflow-bench fanout`: parse → measure (`load::fanout`) → judge → render.

use super::{Common, FormatArg, ProfileArg};
use crate::exit;
use crate::load::bounds;
use crate::load::fanout::scenario::FanoutScenario;
use crate::load::fanout::{self, FanoutOptions};
use crate::load::run::ConnectionBudget;
use crate::report::{self, Format};
use crate::results::io::{check_writable, write_results};
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The fan-out command's own flags (the common ones are in `Common`).
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// WebSocket subscriber connections, each subscribed to every event.
    #[arg(long, value_parser = |s: &str| bounds::SUBSCRIBERS.parse(s))]
    pub subscribers: Option<u64>,
    /// How long the writers produce events, e.g. 10s.
    #[arg(long, value_parser = |s: &str| bounds::DURATION.parse(s))]
    pub duration: Option<Duration>,
    /// Writes in flight at most (a write due while all are busy waits; its latency counts
    /// from when it was due).
    #[arg(long, value_parser = |s: &str| bounds::WRITERS.parse_u32(s))]
    pub writers: Option<u32>,
}

pub fn run(common: &Common, args: &FanoutArgs) -> anyhow::Result<ExitCode> {
    let refuse = |msg: String| Err(exit::usage(anyhow::anyhow!(msg)));
    for (given, flag, why) in [
        (
            common.concurrency.is_some(),
            "--concurrency",
            "fan-out writes on the open model: give --rate EVENTS_PER_S (and --writers)",
        ),
        (
            common.max_in_flight.is_some(),
            "--max-in-flight",
            "a fan-out run's writes in flight are --writers",
        ),
        (
            common.warmup.is_some(),
            "--warmup",
            "connecting the subscribers comes before the measured writes, and nothing else is warmed up",
        ),
        (
            common.html.is_some() || common.junit.is_some(),
            "--html/--junit",
            "fan-out results have no HTML or JUnit report yet; use --out FILE (JSON) or --format",
        ),
        (
            common.cacert.is_some() || common.insecure || common.http2,
            "--cacert/--insecure/--http2",
            "fan-out subscribers speak plain ws:// to an http:// target",
        ),
    ] {
        if given {
            return refuse(format!("{flag} does not apply to fanout: {why}"));
        }
    }
    if common.target.is_some() && (common.profile.is_some() || common.keep_data) {
        return refuse(
            "--profile and --keep-data concern the bundled monitor, which --target replaces".into(),
        );
    }
    let mut scenario = match &common.scenario {
        Some(spec) if Path::new(spec).exists() => {
            FanoutScenario::from_file(Path::new(spec)).map_err(exit::usage)?
        }
        Some(spec) if spec.trim_end_matches(".toml") == "fanout" => FanoutScenario::builtin(),
        Some(spec) => {
            return refuse(format!(
                "--scenario {spec}: no such file (the built-in fan-out scenario is `fanout`)"
            ))
        }
        None => FanoutScenario::builtin(),
    };
    if let Some(n) = args.subscribers {
        scenario.subscribers = n;
    }
    if let Some(d) = args.duration {
        scenario.duration = d;
    }
    if let Some(w) = args.writers {
        scenario.writers = w;
    }
    if let Some(r) = common.rate {
        scenario.rate = bounds::EVENT_RATE
            .check(r)
            .map_err(|m| exit::usage(anyhow::anyhow!("--rate {m}")))?;
    }
    // Event numbers are tracked per subscriber in a bitset: bound the product.
    let events = scenario.events();
    if events > MAX_EVENTS {
        return refuse(format!(
            "--rate × --duration makes {} events, more than the {} a run tracks; lower one",
            bounds::thousands(events),
            bounds::thousands(MAX_EVENTS)
        ));
    }
    let bits = events.saturating_mul(scenario.subscribers);
    if bits > MAX_TRACKED_DELIVERIES {
        return refuse(format!(
            "{} subscribers × {} events is {} deliveries to track, more than {}; lower \
             --subscribers, --rate or --duration",
            bounds::thousands(scenario.subscribers),
            bounds::thousands(events),
            bounds::thousands(bits),
            bounds::thousands(MAX_TRACKED_DELIVERIES)
        ));
    }
    if let Some(t) = &common.target {
        crate::load::client::Endpoint::parse(t).map_err(exit::usage)?;
        if t.starts_with("https://") {
            return refuse(format!(
                "--target {t}: fanout loads http:// targets only (its subscribers speak ws://)"
            ));
        }
    }
    let to_stdout = common.out.as_deref() == Some(Path::new("-"));
    if !to_stdout {
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = common.threads.unwrap_or(cores);
    // Subscribers and writers each hold a connection (the limit is raised first).
    let budget = ConnectionBudget::detect(threads);
    let wanted = scenario.subscribers + u64::from(scenario.writers);
    if let Some(why) = budget.refuse(wanted) {
        return refuse(format!(
            "--subscribers {} + --writers {}: {why}",
            scenario.subscribers, scenario.writers
        ));
    }
    let opts = FanoutOptions {
        target: common.target.clone(),
        profile: common.profile.unwrap_or(ProfileArg::Optimized).into(),
        keep_data: common.keep_data,
        threads,
        progress: !common.no_progress,
        program: std::env::current_exe().context("cannot find this executable")?,
        timeout: common.timeout.unwrap_or(Duration::from_secs(30)),
    };
    let mut results = fanout::run(&scenario, &opts)?;
    crate::gate::judge::judge(&scenario.targets, &mut results);
    let json_on_stdout = to_stdout || common.format == FormatArg::Json;
    let written = (!to_stdout).then(|| {
        let out = common.out.clone().unwrap_or_else(|| {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            PathBuf::from("results").join(format!("{}-{stamp}.json", results.scenario))
        });
        let w = write_results(&results, &out);
        (out, w)
    });
    let rendered = if json_on_stdout {
        report::render(&results, Format::Json)
    } else {
        report::render(&results, common.format.into())
    };
    if to_stdout && common.format != FormatArg::Json {
        eprint!("{}", report::render(&results, common.format.into()));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(rendered.as_bytes());
    let _ = stdout.flush();
    let mut code = results.exit_code;
    if let Some(d) = &results.delivery {
        eprintln!(
            "delivery: {} subscribers, {} events, expected {}, received {}, missed {}, \
             duplicated {}, reordered {}, sequence gaps {}, dropped as slow {} (their misses: {})",
            d.subscribers,
            d.events,
            d.expected,
            d.received,
            d.missed,
            d.duplicated,
            d.reordered,
            d.seq_gaps,
            d.dropped_slow,
            d.missed_by_dropped
        );
    }
    match written {
        Some((out, Ok(()))) => eprintln!("results written to {}", out.display()),
        Some((_, Err(e))) => {
            eprintln!("Error: {e:#}");
            code = code.max(exit::ABORTED);
        }
        None => {}
    }
    if let Some(why) = &results.aborted {
        eprintln!("Error: run aborted: {why}");
    }
    Ok(ExitCode::from(code))
}

/// Most events one run writes.
const MAX_EVENTS: u64 = 100_000_000;
/// Most (subscriber, event) pairs one run tracks: a bit each, 1 GiB of bitsets at most.
const MAX_TRACKED_DELIVERIES: u64 = 8 << 30;
