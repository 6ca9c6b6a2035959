//! Step log files: `<data-dir>/logs/<execution-id>/step_<index>.log`, one timestamped line each.
//!
//! A line is stored as `<RFC 3339 timestamp> <content>` with `\` and newlines escaped, so a
//! line of content never spans two lines of the file and reads back exactly as written.

use super::StorageError;
use crate::monitor::model::{now_rfc3339, LogLine};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct LogStore {
    root: Arc<PathBuf>,
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
        })
    }

    fn file(&self, id: i64, index: i64) -> PathBuf {
        self.root
            .join(id.to_string())
            .join(format!("step_{index}.log"))
    }

    /// One `write` call per append: with O_APPEND the kernel keeps concurrent appends to the
    /// same file from interleaving, and the data survives a SIGKILL once it returns.
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
        let mut file = match OpenOptions::new().create(true).append(true).open(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::create_dir_all(path.parent().expect("log file has a parent"))?;
                OpenOptions::new().create(true).append(true).open(&path)?
            }
            other => other?,
        };
        file.write_all(buf.as_bytes())?;
        Ok(lines
            .iter()
            .map(|content| LogLine {
                timestamp: timestamp.clone(),
                content: content.clone(),
            })
            .collect())
    }

    pub fn read(&self, id: i64, index: i64) -> Result<Vec<LogLine>, StorageError> {
        let text = match fs::read_to_string(self.file(id, index)) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
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
}
