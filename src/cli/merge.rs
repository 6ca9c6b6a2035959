//! `merge`: results of one scenario from generators that ran side by side, merged
//! (`results::merge`), written and rendered.

use super::args::FormatArg;
use crate::exit;
use crate::report;
use crate::results::io::{check_flag_writable, read_results, write_results};
use crate::results::merge::{merge_results, MergeError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn merge(files: &[PathBuf], out: &Path, format: FormatArg) -> anyhow::Result<ExitCode> {
    check_flag_writable("--out", out)?;
    let parts = files
        .iter()
        .map(|f| read_results(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
    write_results(&merged, out).map_err(exit::usage)?;
    print!("{}", report::render(&merged, format.into()));
    eprintln!("merged {} results into {}", parts.len(), out.display());
    Ok(ExitCode::from(merged.exit_code))
}
