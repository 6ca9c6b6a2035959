//! `sweep`: one scenario at each load level (each with its own warm-up; one bundled monitor
//! for all levels, or a fresh one each with `--fresh`), a table of the levels, and the knee.
//! Measure → judge → render, per level.

use super::args::{FormatArg, SweepArgs};
use super::load::{prepare, scenario_for};
use crate::exit;
use crate::gate::{judge, search};
use crate::load::bundled::SharedMonitor;
use crate::load::run::{run_scenario, RunOptions};
use crate::load::scenario::{Length, Scenario};
use crate::report;
use crate::results::io::write_results;
use crate::results::{Knee, Results, SweepLevel};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub fn sweep(args: &SweepArgs) -> anyhow::Result<ExitCode> {
    let closed = !args.concurrency.is_empty();
    let levels: Vec<f64> = if closed {
        args.concurrency.iter().map(|&c| f64::from(c)).collect()
    } else {
        args.rate.clone()
    };
    if levels.windows(2).any(|w| w[1] <= w[0]) {
        return Err(exit::usage(anyhow::anyhow!(
            "sweep levels must rise: {levels:?}"
        )));
    }
    let level_common = |level: f64| {
        if closed {
            args.search.common(Some(level as u32), None)
        } else {
            args.search.common(None, Some(level))
        }
    };
    let mut scenarios: Vec<Scenario> = Vec::new();
    for &level in &levels {
        let mut s = scenario_for(&level_common(level), "sweep", "stress")?;
        s.length = Some(Length::Duration(
            args.search.duration.unwrap_or(Duration::from_secs(10)),
        ));
        scenarios.push(s);
    }
    // Checked for the highest level (the connections it needs) before any load.
    let top = level_common(*levels.last().expect("clap requires a level"));
    let mut opts = prepare(&scenarios, &top, false)?;
    let bundled = opts.target.is_none();
    if bundled && !args.fresh {
        opts.shared_monitor = Some(SharedMonitor::default());
    }
    let monitor = bundled.then(|| if args.fresh { "fresh" } else { "shared" }.to_string());
    let mut done: Vec<SweepLevel> = Vec::new();
    let mut aborted = false;
    for (s, &level) in scenarios.iter().zip(&levels) {
        eprintln!(
            "sweep: {} at {level}{} ...",
            s.name,
            if closed { " workers" } else { "/s" }
        );
        let run = run_scenario(s, &opts);
        let mut results = match run {
            Ok(r) => r,
            Err(e) => {
                stop_shared(&opts);
                return Err(e);
            }
        };
        judge::judge(&s.targets, &mut results);
        let generator_limited = results.generator.as_ref().is_some_and(|g| g.limited);
        eprintln!(
            "  {:.0} ops/s, p99 {:.2} ms{}",
            results.totals.throughput,
            results.totals.latency_us.p99 / 1000.0,
            if generator_limited {
                " (limited by the generator)"
            } else {
                ""
            }
        );
        aborted = results.aborted.is_some();
        done.push(SweepLevel {
            level,
            generator_limited,
            monitor: monitor.clone(),
            results,
        });
        if aborted {
            break;
        }
    }
    stop_shared(&opts);
    let figures: Vec<(f64, f64, f64, bool)> = done
        .iter()
        .map(|l| {
            (
                l.level,
                l.results.totals.throughput,
                l.results.totals.latency_us.p99,
                l.generator_limited,
            )
        })
        .collect();
    let knee = search::knee(&figures).map(|(index, why)| Knee {
        level: done[index].level,
        index,
        why,
    });
    let pick = knee.as_ref().map_or(done.len() - 1, |k| k.index);
    let mut results: Results = done[pick].results.clone();
    results.levels = done;
    results.knee = knee;
    results.exit_code = if aborted { exit::ABORTED } else { exit::OK };
    finish(&results, &args.search.out, args.search.format, "sweep")
}

/// Stops the sweep's one bundled monitor, if it has one (a failed stop is said, not fatal:
/// every level's results are already measured).
fn stop_shared(opts: &RunOptions) {
    if let Some(shared) = &opts.shared_monitor {
        if let Err(e) = shared.stop() {
            eprintln!("warning: {e:#}");
        }
    }
}

/// Writes the file, prints the report; shared with `capacity`.
pub(super) fn finish(
    results: &Results,
    out: &Option<PathBuf>,
    format: FormatArg,
    what: &str,
) -> anyhow::Result<ExitCode> {
    let to_stdout = out.as_deref() == Some(std::path::Path::new("-"));
    let rendered = match format {
        FormatArg::Json => report::render(results, report::Format::Json),
        FormatArg::Markdown => report::search::render_search(results, true),
        FormatArg::Table => report::search::render_search(results, false),
    };
    if to_stdout {
        print!("{}", report::render(results, report::Format::Json));
        if format != FormatArg::Json {
            eprint!("{rendered}");
        }
    } else {
        let path = out.clone().unwrap_or_else(|| {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            PathBuf::from("results").join(format!("{what}-{}-{stamp}.json", results.scenario))
        });
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(rendered.as_bytes());
        let _ = stdout.flush();
        write_results(results, &path)?;
        eprintln!("results written to {}", path.display());
    }
    Ok(ExitCode::from(results.exit_code))
}
