//! Results files on disk: read and checked as a whole, written whole (a temporary file
//! renamed into place, so a reader never sees half a file), and checked for writability
//! before any work so that an unwritable place is bad usage rather than a run thrown away.

use super::Results;
use crate::exit;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Reads one results file; anything unreadable is bad input (exit 2).
/// The results as the JSON the contract describes: pretty-printed, one trailing newline.
pub fn to_json(results: &Results) -> String {
    let mut s = serde_json::to_string_pretty(results).expect("results serialize");
    s.push('\n');
    s
}

pub fn read_results(path: &Path) -> anyhow::Result<Results> {
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

/// Finds out before any work whether a file can be written at `path` the way
/// `write_results` (or the JUnit report) will write it, so that an unwritable place is bad
/// usage (exit 2) rather than a run or comparison thrown away at its end. Nothing is left
/// behind: the one file made to try is removed.
/// `check_writable` for the file a flag names: a place that cannot take it is bad usage
/// (exit 2) whose message names the flag and the path.
pub fn check_flag_writable(flag: &str, path: &Path) -> anyhow::Result<()> {
    check_writable(path)
        .map_err(|why| exit::usage(anyhow::anyhow!("{flag} {}: {why}", path.display())))
}

pub fn check_writable(path: &Path) -> Result<(), String> {
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

pub fn write_results(results: &Results, out: &Path) -> anyhow::Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create results dir {}", dir.display()))?;
    }
    let json = to_json(results);
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
