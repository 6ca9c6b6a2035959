//! `report`: results files that exist, rendered again: each run's report on stdout, and
//! with `--html FILE` one page with every run overlaid.

use super::args::FormatArg;
use crate::exit;
use crate::report::{self, html};
use crate::results::io::{check_flag_writable, read_results};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn report(
    files: &[PathBuf],
    html: Option<&Path>,
    format: FormatArg,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = html {
        check_flag_writable("--html", path)?;
    }
    let runs = files
        .iter()
        .map(|f| read_results(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for r in &runs {
        print!("{}", report::render(r, format.into()));
    }
    if let Some(path) = html {
        let refs: Vec<_> = runs.iter().collect();
        std::fs::write(path, html::render_html(&refs))
            .with_context(|| format!("cannot write HTML report {}", path.display()))
            .map_err(exit::usage)?;
        eprintln!(
            "HTML report of {} runs written to {}",
            runs.len(),
            path.display()
        );
    }
    // The worst of the runs' own exit codes: a report of a failed run fails.
    Ok(ExitCode::from(
        runs.iter().map(|r| r.exit_code).max().unwrap_or(0),
    ))
}
