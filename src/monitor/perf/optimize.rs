//! `POST /performance/optimize {"actions": ["analyze", "optimize", "checkpoint", "vacuum"]}`:
//! runs each action on the connection that writes, without stopping service. In the optimized
//! profile that is the writer thread, between two group commits: writes that arrive meanwhile
//! queue and are committed right after (none fails), reads go on from the reader pool. The
//! answer says how long each action held the writer. In the legacy profile each action runs
//! on a connection of its own, and other connections wait on its locks (busy timeout 10 s).

use crate::monitor::storage::{Profile, Storage, StorageError};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The actions, in the order they are listed in errors and the README.
pub const ACTIONS: [&str; 4] = ["analyze", "optimize", "checkpoint", "vacuum"];

/// How long a checkpoint retries while the background checkpointer holds the lock.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize)]
pub struct Done {
    pub action: String,
    pub sql: &'static str,
    /// From the request being queued to the action's end, milliseconds.
    pub took_ms: f64,
    /// How long the writer (or, legacy, the action's connection) was held, milliseconds.
    pub writer_paused_ms: f64,
    pub skipped: Option<String>,
    pub result: Value,
}

/// Checks the requested actions: at least one, each known, none twice.
pub fn check(actions: &[String]) -> Result<(), String> {
    if actions.is_empty() {
        return Err(format!(
            "actions must not be empty; give any of {}",
            ACTIONS.join(", ")
        ));
    }
    for (i, a) in actions.iter().enumerate() {
        if !ACTIONS.contains(&a.as_str()) {
            return Err(format!(
                "unknown action {a:?}; the actions are {}",
                ACTIONS.join(", ")
            ));
        }
        if actions[..i].contains(a) {
            return Err(format!("action {a:?} is given twice"));
        }
    }
    Ok(())
}

fn page_figures(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    Ok((
        conn.query_row("PRAGMA page_count", [], |r| r.get(0))?,
        conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?,
    ))
}

/// Runs one action on `conn`.
fn apply(
    action: &str,
    conn: &Connection,
    wal: bool,
) -> Result<(&'static str, Value, Option<String>), StorageError> {
    Ok(match action {
        "analyze" => {
            conn.execute_batch("ANALYZE")?;
            let rows: i64 =
                conn.query_row("SELECT count(*) FROM sqlite_stat1", [], |r| r.get(0))?;
            ("ANALYZE", json!({ "stat1_rows": rows }), None)
        }
        "optimize" => {
            conn.execute_batch("PRAGMA optimize")?;
            ("PRAGMA optimize", json!({}), None)
        }
        "checkpoint" => {
            let sql = "PRAGMA wal_checkpoint(TRUNCATE)";
            if !wal {
                return Ok((
                    sql,
                    json!({}),
                    Some("the journal is not a WAL (legacy profile): nothing to checkpoint".into()),
                ));
            }
            let started = Instant::now();
            let mut tries = 0;
            loop {
                tries += 1;
                let (busy, log, done): (i64, i64, i64) =
                    conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                if busy == 0 || started.elapsed() >= CHECKPOINT_RETRY {
                    break (
                        sql,
                        json!({ "busy": busy != 0, "wal_pages": log, "checkpointed_pages": done, "tries": tries }),
                        None,
                    );
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        "vacuum" => {
            let (pages, free) = page_figures(conn)?;
            conn.execute_batch("VACUUM")?;
            let (pages_after, free_after) = page_figures(conn)?;
            (
                "VACUUM",
                json!({
                    "page_count_before": pages, "freelist_before": free,
                    "page_count_after": pages_after, "freelist_after": free_after,
                }),
                None,
            )
        }
        other => unreachable!("checked action {other}"),
    })
}

/// Runs the actions one after another, each as one hold of the writer.
pub async fn run(storage: &Storage, actions: &[String]) -> Result<Value, StorageError> {
    let wal = storage.journal_mode().eq_ignore_ascii_case("wal");
    let mut done = Vec::new();
    let all = Instant::now();
    for action in actions {
        let queued = Instant::now();
        let name = action.clone();
        let (sql, result, skipped, held) = storage
            .maintain(move |conn| {
                let started = Instant::now();
                let (sql, result, skipped) = apply(&name, conn, wal)?;
                Ok((sql, result, skipped, started.elapsed()))
            })
            .await?;
        done.push(Done {
            action: action.clone(),
            sql,
            took_ms: queued.elapsed().as_secs_f64() * 1000.0,
            writer_paused_ms: held.as_secs_f64() * 1000.0,
            skipped,
            result,
        });
    }
    let paused: f64 = done.iter().map(|d| d.writer_paused_ms).sum();
    let how = match storage.profile() {
        Profile::Optimized => {
            "on the writer thread between group commits: writes queued meanwhile were \
             committed right after, reads went on"
        }
        Profile::Legacy => "each on a connection of its own; other connections waited on its locks",
    };
    Ok(json!({
        "profile": storage.profile().as_str(),
        "done": done,
        "took_ms": all.elapsed().as_secs_f64() * 1000.0,
        "writer_paused_ms": paused,
        "how": how,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_checked() {
        assert!(check(&["analyze".into(), "vacuum".into()]).is_ok());
        assert!(check(&[]).unwrap_err().contains("must not be empty"));
        assert!(check(&["defrag".into()])
            .unwrap_err()
            .contains("unknown action \"defrag\""));
        assert!(check(&["vacuum".into(), "vacuum".into()])
            .unwrap_err()
            .contains("twice"));
    }
}
