//! The slow-query log: every SQL statement that took at least `serve --slow-query-ms`, with its
//! text, duration and when it finished, in a bounded ring (the oldest entries drop out).
//!
//! Statements are timed on each connection by SQLite's trace hook: the statement's start
//! (`SQLITE_TRACE_STMT`) and its end (`SQLITE_TRACE_PROFILE`, when it is reset), with this
//! process's monotonic clock (SQLite's own profile time has millisecond resolution). The
//! lock is taken only for a statement over the threshold.

use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::Connection;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries the ring keeps.
pub const CAPACITY: usize = 1000;
/// Longest SQL text kept per entry, bytes.
const MAX_SQL_BYTES: usize = 2000;

/// Range of `--slow-query-ms`: 0 (log every statement) to one minute.
pub const MAX_THRESHOLD_MS: f64 = 60_000.0;

#[derive(Debug, Clone, Serialize)]
pub struct SlowQuery {
    pub sql: String,
    pub duration_ms: f64,
    /// When it finished, RFC 3339.
    pub at: String,
    /// Which connection ran it: writer, reader, checkpointer, legacy.
    pub connection: &'static str,
}

pub struct SlowLog {
    threshold: Duration,
    ring: Mutex<VecDeque<SlowQuery>>,
    /// Statements over the threshold since start, including those the ring dropped.
    total: AtomicU64,
}

impl SlowLog {
    pub fn new(threshold: Duration) -> SlowLog {
        SlowLog {
            threshold,
            ring: Mutex::new(VecDeque::with_capacity(64)),
            total: AtomicU64::new(0),
        }
    }

    pub fn threshold(&self) -> Duration {
        self.threshold
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Records a statement if it took at least the threshold.
    pub fn observe(&self, sql: &str, took: Duration, connection: &'static str) {
        if took < self.threshold {
            return;
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut text = sql.trim().to_string();
        if text.len() > MAX_SQL_BYTES {
            let mut cut = MAX_SQL_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        let entry = SlowQuery {
            sql: text.split_whitespace().collect::<Vec<_>>().join(" "),
            duration_ms: took.as_secs_f64() * 1000.0,
            at: crate::monitor::model::now_rfc3339(),
            connection,
        };
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// The newest `limit` entries, newest first.
    pub fn recent(&self, limit: usize) -> Vec<SlowQuery> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().rev().take(limit).cloned().collect()
    }

    /// Installs the timing hook on `conn`.
    pub fn install(
        self: &std::sync::Arc<Self>,
        conn: &mut Connection,
        connection: &'static str,
    ) -> rusqlite::Result<()> {
        let log = std::sync::Arc::clone(self);
        let mut started: Option<Instant> = None;
        conn.trace_v2(
            TraceEventCodes::SQLITE_TRACE_STMT | TraceEventCodes::SQLITE_TRACE_PROFILE,
            Some(move |event: TraceEvent<'_>| match event {
                // Trigger programs report their own start ("-- TRIGGER ...") inside the
                // statement that fired them; the statement's own start is what counts.
                TraceEvent::Stmt(_, sql) if !sql.starts_with("--") => {
                    started = Some(Instant::now());
                }
                TraceEvent::Profile(stmt, _) => {
                    if let Some(at) = started.take() {
                        log.observe(&stmt.sql(), at.elapsed(), connection);
                    }
                }
                _ => {}
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn only_statements_over_the_threshold_are_kept_and_the_ring_is_bounded() {
        let log = SlowLog::new(Duration::from_millis(5));
        log.observe("SELECT 1", Duration::from_millis(4), "reader");
        assert_eq!(log.total(), 0);
        for i in 0..CAPACITY + 10 {
            log.observe(&format!("SELECT {i}"), Duration::from_millis(6), "reader");
        }
        assert_eq!(log.total(), (CAPACITY + 10) as u64);
        let recent = log.recent(usize::MAX);
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].sql, format!("SELECT {}", CAPACITY + 9));
        assert_eq!(recent.last().unwrap().sql, "SELECT 10");
    }

    #[test]
    fn the_hook_times_real_statements() {
        let log = Arc::new(SlowLog::new(Duration::ZERO));
        let mut conn = Connection::open_in_memory().unwrap();
        log.install(&mut conn, "writer").unwrap();
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        // A statement that takes real time: a recursive count to 200,000.
        let n: i64 = conn
            .query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) \
                 SELECT count(*) FROM c",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 200_000);
        let recent = log.recent(10);
        assert!(
            recent.iter().any(|q| q.sql.starts_with("WITH RECURSIVE")),
            "{recent:?}"
        );
        assert!(recent.iter().any(|q| q.sql == "CREATE TABLE t (x)"));
    }
}
