//! Step log files: `<data-dir>/logs/<execution-id>/step_<index>.log`, one timestamped line each.
//!
//! A line is stored as `<RFC 3339 timestamp> <content>` with `\` and newlines escaped, so a
//! line of content never spans two lines of the file and reads back exactly as written.
//!
//! An append is all or nothing: a write that fails part-way (a full disk) is cut back off,
//! and a line without its newline (a crash in the middle of a write, never acknowledged) is
//! neither read back nor left for the next append to be glued onto.

use super::StorageError;
use crate::monitor::model::{now_rfc3339, LogLine};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Locks that serialise the appends and reads of one file, shared by many files.
const LOCK_STRIPES: usize = 64;

#[derive(Clone)]
pub struct LogStore {
    root: Arc<PathBuf>,
    locks: Arc<[Mutex<()>; LOCK_STRIPES]>,
}

impl LogStore {
    pub fn open(root: &Path) -> Result<LogStore, StorageError> {
        fs::create_dir_all(root).map_err(|e| {
            StorageError::DataDir(format!("cannot create log dir {}: {e}", root.display()))
        })?;
        // Probe writability now, so an unusable dir fails at start-up and not on a request.
        tempfile::tempfile_in(root).map_err(|e| {
            StorageError::DataDir(format!("cannot write in log dir {}: {e}", root.display()))
        })?;
        Ok(LogStore {
            root: Arc::new(root.to_path_buf()),
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        })
    }

    fn file(&self, id: i64, index: i64) -> PathBuf {
        self.root
            .join(id.to_string())
            .join(format!("step_{index}.log"))
    }

    /// The length before an append must still be the file's end when a failed append is cut
    /// back to it, so appends to one file (and reads, which must not see half of one) take
    /// turns.
    fn lock(&self, id: i64, index: i64) -> MutexGuard<'_, ()> {
        let stripe = (id.wrapping_mul(31).wrapping_add(index)).rem_euclid(LOCK_STRIPES as i64);
        self.locks[stripe as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// All the lines in one `write` call, which the kernel takes whole unless the disk fills,
    /// so a SIGKILL right after the return loses nothing. If writing fails part-way (ENOSPC),
    /// the file is cut back to its length before, and the error says nothing was stored.
    pub fn append(
        &self,
        id: i64,
        index: i64,
        lines: &[String],
    ) -> Result<Vec<LogLine>, StorageError> {
        let timestamp = now_rfc3339();
        let mut buf = String::with_capacity(lines.iter().map(|l| l.len() + 40).sum());
        for line in lines {
            buf.push_str(&timestamp);
            buf.push(' ');
            escape_into(line, &mut buf);
            buf.push('\n');
        }
        let path = self.file(id, index);
        let _turn = self.lock(id, index);
        let open = || {
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
        };
        let mut file = match open() {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::create_dir_all(self.root.join(id.to_string()))?;
                open()?
            }
            other => other?,
        };
        let len = complete_length(&file)?;
        if let Err(e) = file.write_all(buf.as_bytes()) {
            if let Err(cut) = file.set_len(len) {
                eprintln!(
                    "stepflow-monitor: cannot cut {} back to {len} bytes after a failed \
                     append ({e}): {cut}; the next append cuts the torn line off",
                    path.display()
                );
            }
            return Err(e.into());
        }
        Ok(lines
            .iter()
            .map(|content| LogLine {
                timestamp: timestamp.clone(),
                content: content.clone(),
            })
            .collect())
    }

    pub fn read(&self, id: i64, index: i64) -> Result<Vec<LogLine>, StorageError> {
        let bytes = {
            let _turn = self.lock(id, index);
            match fs::read(self.file(id, index)) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            }
        };
        // A last line without its newline was torn by a crash and never acknowledged.
        let complete = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(&bytes[..0], |end| &bytes[..=end]);
        let text = String::from_utf8_lossy(complete);
        Ok(text
            .lines()
            .map(|line| {
                let (timestamp, content) = line.split_once(' ').unwrap_or((line, ""));
                LogLine {
                    timestamp: timestamp.to_string(),
                    content: unescape(content),
                }
            })
            .collect())
    }
}

/// The file's length up to and including its last newline, having cut off anything after it
/// (a line torn by a crash mid-write, or by a failed append that could not be cut back).
fn complete_length(file: &File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let mut last = [0u8; 1];
    if len == 0 || (file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n') {
        return Ok(len);
    }
    // Rare: walk back a block at a time to the newline that ends the last whole line.
    let mut block = vec![0u8; 64 * 1024];
    let mut end = len;
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            break start + at as u64 + 1;
        }
        end = start;
    };
    file.set_len(keep)?;
    Ok(keep)
}

fn escape_into(content: &str, out: &mut String) {
    for c in content.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_newlines_and_backslashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs")).unwrap();
        let lines = vec![
            "plain".to_string(),
            "two\nlines".to_string(),
            "back\\slash \\n literal".to_string(),
            String::new(),
            "tail\r".to_string(),
        ];
        store.append(7, 0, &lines[..2]).unwrap();
        store.append(7, 0, &lines[2..]).unwrap();
        let read: Vec<String> = store
            .read(7, 0)
            .unwrap()
            .into_iter()
            .map(|l| l.content)
            .collect();
        assert_eq!(read, lines);
        assert!(dir.path().join("logs/7/step_0.log").is_file());
        assert!(store.read(7, 1).unwrap().is_empty());
    }

    #[test]
    fn a_torn_last_line_is_not_read_and_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(&dir.path().join("logs")).unwrap();
        store.append(3, 1, &["whole".to_string()]).unwrap();
        let path = dir.path().join("logs/3/step_1.log");
        let whole = fs::read(&path).unwrap();
        // Longer than one block of the walk back, so that it crosses blocks.
        let torn = format!("2026-01-01T00:00:00Z {}", "t".repeat(100_000));
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(torn.as_bytes())
            .unwrap();
        let contents = |store: &LogStore| -> Vec<String> {
            store
                .read(3, 1)
                .unwrap()
                .into_iter()
                .map(|l| l.content)
                .collect()
        };
        assert_eq!(contents(&store), ["whole"]);
        store.append(3, 1, &["next".to_string()]).unwrap();
        assert_eq!(contents(&store), ["whole", "next"]);
        assert!(fs::read(&path).unwrap().starts_with(&whole));

        // A file that is nothing but a torn line.
        let path = dir.path().join("logs/3/step_2.log");
        fs::write(&path, torn.as_bytes()).unwrap();
        assert!(store.read(3, 2).unwrap().is_empty());
        store.append(3, 2, &["only".to_string()]).unwrap();
        assert_eq!(
            store
                .read(3, 2)
                .unwrap()
                .into_iter()
                .map(|l| l.content)
                .collect::<Vec<_>>(),
            ["only"]
        );
    }
}
