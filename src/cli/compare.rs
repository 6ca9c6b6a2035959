//! `compare`: read both sides' results, judge them (`gate::compare`), render the comparison
//! and its JUnit report.

use super::args::{FormatArg, PairingArg};
use crate::exit;
use crate::load::bounds;
use crate::load::builtin;
use crate::report::{self, Format};
use crate::results::io::{check_flag_writable, read_results};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The two sides from the short form (`BASE.json CAND.json`) or the long one.
pub fn sides(
    files: Vec<PathBuf>,
    baseline: Vec<PathBuf>,
    candidate: Vec<PathBuf>,
) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    if files.is_empty() {
        Ok((baseline, candidate))
    } else if files.len() == 2 {
        Ok((vec![files[0].clone()], vec![files[1].clone()]))
    } else {
        Err(exit::usage(anyhow::anyhow!(
            "compare takes BASE.json CAND.json, or --baseline FILES... --candidate FILES..."
        )))
    }
}

#[allow(clippy::too_many_arguments)]
pub fn compare(
    baseline: &[PathBuf],
    candidate: &[PathBuf],
    scenario: Option<&str>,
    limit_flags: &[String],
    pairing: PairingArg,
    format: FormatArg,
    junit: Option<&Path>,
    html: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    use crate::gate::compare::{compare, CompareOptions, Limits, Metric, Pairing};
    for (flag, path) in [("--junit", junit), ("--html", html)] {
        if let Some(path) = path {
            check_flag_writable(flag, path)?;
        }
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
    let rendered = report::exporter(format.into()).comparison(&comparison);
    // The comparison carries the whole verdict (regressions, lost writes, missed targets):
    // what is printed and the exit code cannot disagree.
    print!("{rendered}");
    for (format, what, path) in [
        (Format::Junit, "JUnit report", junit),
        (Format::Html, "HTML report", html),
    ] {
        if let Some(path) = path {
            // Found writable before; failing now is still the file's fault, not an
            // inconclusive comparison (exit 3 is that).
            std::fs::write(path, report::exporter(format).comparison(&comparison))
                .with_context(|| format!("cannot write {what} {}", path.display()))
                .map_err(exit::usage)?;
            eprintln!("{what} written to {}", path.display());
        }
    }
    Ok(ExitCode::from(comparison.exit_code))
}
