//! SQL shared by both storage profiles: schema migrations, connection set-up and every statement.

use super::StorageError;
use crate::monitor::model::{
    Artifact, Execution, ExecutionPage, JsonText, ListQuery, NewExecution, Status, Step,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use std::path::Path;
use std::time::Duration;

/// Numbered migrations; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema. The counts table is kept by triggers so that the list endpoint's
    // `total` is a point read instead of a scan over every execution.
    r#"
    CREATE TABLE executions (
        id          INTEGER PRIMARY KEY,
        name        TEXT    NOT NULL,
        command     TEXT,
        metadata    TEXT,
        status      TEXT    NOT NULL,
        created_at  TEXT    NOT NULL,
        updated_at  TEXT    NOT NULL,
        step_count  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX executions_by_created ON executions (created_at, id);
    CREATE INDEX executions_by_status_created ON executions (status, created_at, id);

    CREATE TABLE steps (
        execution_id INTEGER NOT NULL REFERENCES executions (id),
        idx          INTEGER NOT NULL,
        name         TEXT    NOT NULL,
        status       TEXT    NOT NULL,
        created_at   TEXT    NOT NULL,
        updated_at   TEXT    NOT NULL,
        PRIMARY KEY (execution_id, idx)
    ) WITHOUT ROWID;

    CREATE TABLE artifacts (
        id           INTEGER PRIMARY KEY,
        execution_id INTEGER NOT NULL REFERENCES executions (id),
        name         TEXT    NOT NULL,
        content      TEXT    NOT NULL,
        created_at   TEXT    NOT NULL
    );
    CREATE INDEX artifacts_by_execution ON artifacts (execution_id, id);

    CREATE TABLE execution_counts (
        status TEXT PRIMARY KEY,
        n      INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO execution_counts (status, n) VALUES
        ('pending', 0), ('running', 0), ('completed', 0), ('failed', 0), ('cancelled', 0);

    CREATE TRIGGER executions_count_insert AFTER INSERT ON executions BEGIN
        UPDATE execution_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER executions_count_update AFTER UPDATE OF status ON executions
    WHEN OLD.status <> NEW.status BEGIN
        UPDATE execution_counts SET n = n - 1 WHERE status = OLD.status;
        UPDATE execution_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER steps_count_insert AFTER INSERT ON steps BEGIN
        UPDATE executions SET step_count = step_count + 1 WHERE id = NEW.execution_id;
    END;
    "#,
];

/// How long a connection waits on another's lock before it reports SQLITE_BUSY.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The write-up's optimized PRAGMAs, for the one write connection.
const OPTIMIZED_WRITER_PRAGMAS: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA cache_size = 10000;
    PRAGMA temp_store = MEMORY;
    PRAGMA mmap_size = 268435456;
    PRAGMA wal_autocheckpoint = 1000;
    PRAGMA foreign_keys = ON;
";

/// Readers get their pages from the shared mapping; a small page cache keeps the pool's
/// memory bounded.
const OPTIMIZED_READER_PRAGMAS: &str = "
    PRAGMA cache_size = 500;
    PRAGMA temp_store = MEMORY;
    PRAGMA mmap_size = 268435456;
";

/// The write-up's "before": rollback journal, full fsync on every commit.
const LEGACY_PRAGMAS: &str = "
    PRAGMA synchronous = FULL;
    PRAGMA foreign_keys = ON;
";

/// Turns off SQLite's global memory statistics before its first use: with them on, every
/// allocation on every connection takes one process-wide mutex, which showed up as lock
/// contention between the writer and the readers under load.
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection is opened by this process;
        // if SQLite was already initialised it returns SQLITE_MISUSE and changes nothing.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            );
        }
    });
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, StorageError> {
    configure_sqlite();
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StorageError::open(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StorageError::open(path, e))?;
    Ok(conn)
}

/// Opens the database read-write, creating it if needed, and runs pending migrations.
/// `wal` chooses the journal mode: WAL for optimized, DELETE for legacy.
pub fn open_and_migrate(path: &Path, wal: bool) -> Result<Connection, StorageError> {
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let setup = if wal {
        OPTIMIZED_WRITER_PRAGMAS.to_string()
    } else {
        format!("PRAGMA journal_mode = DELETE; {LEGACY_PRAGMAS}")
    };
    conn.execute_batch(&setup)
        .map_err(|e| StorageError::open(path, e))?;
    migrate(&conn).map_err(|e| StorageError::open(path, e))?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!(
                "database schema version {version} is newer than this build understands ({known})"
            )),
        ));
    }
    for (i, migration) in (1..).zip(MIGRATIONS).skip(version.max(0) as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", i)?;
        tx.commit()?;
    }
    Ok(())
}

/// A read-only connection of the optimized reader pool.
pub fn open_reader(path: &Path) -> Result<Connection, StorageError> {
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(OPTIMIZED_READER_PRAGMAS)
        .map_err(|e| StorageError::open(path, e))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A fresh connection per operation, as the legacy profile does; with no statement cache.
pub fn open_legacy(path: &Path) -> Result<Connection, StorageError> {
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(LEGACY_PRAGMAS)
        .map_err(|e| StorageError::open(path, e))?;
    conn.set_prepared_statement_cache_capacity(0);
    Ok(conn)
}

/// A connection for the background checkpointer of the optimized profile.
pub fn open_checkpointer(path: &Path) -> Result<Connection, StorageError> {
    let mut conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    fine_busy_handler(&mut conn).map_err(|e| StorageError::open(path, e))?;
    Ok(conn)
}

/// Replaces SQLite's busy handler (sleeps of 1, 2, 5, 10 ... ms) with short polls for the
/// first few milliseconds, then 1 ms sleeps, giving up after BUSY_TIMEOUT as before. The
/// writer and the checkpointer wait on each other for a checkpoint's short hold of the write
/// lock; a 1 ms first sleep would have added a whole millisecond to every batch caught by it.
pub fn fine_busy_handler(conn: &mut Connection) -> rusqlite::Result<()> {
    let mut since = std::time::Instant::now();
    conn.busy_handler(Some(move |count: i32| {
        if count == 0 {
            since = std::time::Instant::now();
        }
        let waited = since.elapsed();
        if waited >= BUSY_TIMEOUT {
            return false;
        }
        std::thread::sleep(if waited < Duration::from_millis(5) {
            Duration::from_micros(20)
        } else {
            Duration::from_millis(1)
        });
        true
    }))
}

pub fn journal_mode(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
}

// Column lists as macros so that every statement is one `&'static str` built at compile
// time: the statement cache is looked up by text, and a `format!` per call allocated it anew.
macro_rules! execution_columns {
    () => {
        "id, name, command, metadata, status, created_at, updated_at, step_count"
    };
}

fn status_column(row: &Row<'_>, idx: usize) -> rusqlite::Result<Status> {
    let text: String = row.get(idx)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn execution_from_row(row: &Row<'_>) -> rusqlite::Result<Execution> {
    let metadata: Option<String> = row.get(3)?;
    let metadata = metadata.map(JsonText::new).transpose().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Execution {
        id: row.get(0)?,
        name: row.get(1)?,
        command: row.get(2)?,
        metadata,
        status: status_column(row, 4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        step_count: row.get(7)?,
        steps: None,
    })
}

macro_rules! step_columns {
    () => {
        "execution_id, idx, name, status, created_at, updated_at"
    };
}

fn step_from_row(row: &Row<'_>) -> rusqlite::Result<Step> {
    Ok(Step {
        execution_id: row.get(0)?,
        index: row.get(1)?,
        name: row.get(2)?,
        status: status_column(row, 3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

// length() of TEXT counts characters; the size is documented in bytes.
macro_rules! artifact_columns {
    () => {
        "id, execution_id, name, content, length(CAST(content AS BLOB)), created_at"
    };
}

fn artifact_from_row(row: &Row<'_>) -> rusqlite::Result<Artifact> {
    Ok(Artifact {
        id: row.get(0)?,
        execution_id: row.get(1)?,
        name: row.get(2)?,
        content: row.get(3)?,
        size: row.get(4)?,
        created_at: row.get(5)?,
    })
}

fn not_found_execution(id: i64) -> StorageError {
    StorageError::NotFound(format!("execution {id} not found"))
}

fn not_found_step(id: i64, index: i64) -> StorageError {
    StorageError::NotFound(format!("step {index} of execution {id} not found"))
}

pub fn insert_execution(
    conn: &Connection,
    new: &NewExecution,
    now: &str,
) -> Result<Execution, StorageError> {
    let mut stmt = conn.prepare_cached(concat!(
        "INSERT INTO executions (name, command, metadata, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?4) RETURNING ",
        execution_columns!()
    ))?;
    Ok(stmt.query_row(
        params![new.name, new.command, new.metadata, now],
        execution_from_row,
    )?)
}

pub fn update_status(
    conn: &Connection,
    id: i64,
    status: Status,
    now: &str,
) -> Result<Execution, StorageError> {
    let mut stmt = conn.prepare_cached(concat!(
        "UPDATE executions SET status = ?2, updated_at = ?3 WHERE id = ?1
         RETURNING ",
        execution_columns!()
    ))?;
    stmt.query_row(params![id, status.as_str(), now], execution_from_row)
        .optional()?
        .ok_or_else(|| not_found_execution(id))
}

/// One statement, so a failure can never leave half a step behind inside a group commit;
/// the trigger bumps `step_count`, which is the next index.
pub fn add_step(conn: &Connection, id: i64, name: &str, now: &str) -> Result<Step, StorageError> {
    let mut stmt = conn.prepare_cached(concat!(
        "INSERT INTO steps (execution_id, idx, name, status, created_at, updated_at)
         SELECT id, step_count, ?2, 'pending', ?3, ?3 FROM executions WHERE id = ?1
         RETURNING ",
        step_columns!()
    ))?;
    stmt.query_row(params![id, name, now], step_from_row)
        .optional()?
        .ok_or_else(|| not_found_execution(id))
}

pub fn update_step(
    conn: &Connection,
    id: i64,
    index: i64,
    status: Status,
    now: &str,
) -> Result<Step, StorageError> {
    let mut stmt = conn.prepare_cached(concat!(
        "UPDATE steps SET status = ?3, updated_at = ?4 WHERE execution_id = ?1 AND idx = ?2
         RETURNING ",
        step_columns!()
    ))?;
    stmt.query_row(params![id, index, status.as_str(), now], step_from_row)
        .optional()?
        .ok_or_else(|| not_found_step(id, index))
}

pub fn add_artifact(
    conn: &Connection,
    id: i64,
    name: &str,
    content: &str,
    now: &str,
) -> Result<Artifact, StorageError> {
    let mut stmt = conn.prepare_cached(concat!(
        "INSERT INTO artifacts (execution_id, name, content, created_at)
         SELECT id, ?2, ?3, ?4 FROM executions WHERE id = ?1
         RETURNING ",
        artifact_columns!()
    ))?;
    stmt.query_row(params![id, name, content, now], artifact_from_row)
        .optional()?
        .ok_or_else(|| not_found_execution(id))
}

const GET_EXECUTION: &str = concat!(
    "SELECT ",
    execution_columns!(),
    " FROM executions WHERE id = ?1"
);
const STEPS_OF_EXECUTION: &str = concat!(
    "SELECT ",
    step_columns!(),
    " FROM steps WHERE execution_id = ?1 ORDER BY idx"
);
const LIST_EXECUTIONS: &str = concat!(
    "SELECT ",
    execution_columns!(),
    " FROM executions
                 ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2"
);
const LIST_EXECUTIONS_BY_STATUS: &str = concat!(
    "SELECT ",
    execution_columns!(),
    " FROM executions WHERE status = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
);
const STEP_EXISTS: &str = "SELECT 1 FROM steps WHERE execution_id = ?1 AND idx = ?2";
const EXECUTION_EXISTS: &str = "SELECT 1 FROM executions WHERE id = ?1";
const ARTIFACTS_OF_EXECUTION: &str = concat!(
    "SELECT ",
    artifact_columns!(),
    " FROM artifacts WHERE execution_id = ?1 ORDER BY id"
);

/// Every query the API's reads make, by the storage operation that runs it (as
/// `/performance/stats` names them), for the recommendations' EXPLAIN QUERY PLAN.
pub const READ_QUERIES: &[(&str, &str)] = &[
    ("point_select", GET_EXECUTION),
    ("point_select", STEPS_OF_EXECUTION),
    ("list", LIST_EXECUTIONS),
    ("list", LIST_EXECUTIONS_BY_STATUS),
    ("point_select", STEP_EXISTS),
    ("point_select", EXECUTION_EXISTS),
    ("point_select", ARTIFACTS_OF_EXECUTION),
];

pub fn get_execution(conn: &Connection, id: i64) -> Result<Execution, StorageError> {
    let mut stmt = conn.prepare_cached(GET_EXECUTION)?;
    let mut execution = stmt
        .query_row([id], execution_from_row)
        .optional()?
        .ok_or_else(|| not_found_execution(id))?;
    let mut stmt = conn.prepare_cached(STEPS_OF_EXECUTION)?;
    let steps = stmt
        .query_map([id], step_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    execution.steps = Some(steps);
    Ok(execution)
}

pub fn list_executions(conn: &Connection, q: &ListQuery) -> Result<ExecutionPage, StorageError> {
    let limit = i64::from(q.limit);
    let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
    let (executions, total) = match q.status {
        None => {
            let mut stmt = conn.prepare_cached(LIST_EXECUTIONS)?;
            let rows = stmt
                .query_map(params![limit, offset], execution_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut total = conn.prepare_cached("SELECT sum(n) FROM execution_counts")?;
            (rows, total.query_row([], |r| r.get::<_, i64>(0))?)
        }
        Some(status) => {
            let mut stmt = conn.prepare_cached(LIST_EXECUTIONS_BY_STATUS)?;
            let rows = stmt
                .query_map(params![status.as_str(), limit, offset], execution_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut total =
                conn.prepare_cached("SELECT n FROM execution_counts WHERE status = ?1")?;
            (
                rows,
                total.query_row([status.as_str()], |r| r.get::<_, i64>(0))?,
            )
        }
    };
    Ok(ExecutionPage { executions, total })
}

/// Errors with NotFound unless the step exists; guards log appends and reads.
pub fn require_step(conn: &Connection, id: i64, index: i64) -> Result<(), StorageError> {
    let mut stmt = conn.prepare_cached(STEP_EXISTS)?;
    if stmt.exists(params![id, index])? {
        Ok(())
    } else if require_execution(conn, id).is_err() {
        Err(not_found_execution(id))
    } else {
        Err(not_found_step(id, index))
    }
}

pub fn require_execution(conn: &Connection, id: i64) -> Result<(), StorageError> {
    let mut stmt = conn.prepare_cached(EXECUTION_EXISTS)?;
    if stmt.exists([id])? {
        Ok(())
    } else {
        Err(not_found_execution(id))
    }
}

pub fn list_artifacts(conn: &Connection, id: i64) -> Result<Vec<Artifact>, StorageError> {
    require_execution(conn, id)?;
    let mut stmt = conn.prepare_cached(ARTIFACTS_OF_EXECUTION)?;
    let rows = stmt
        .query_map([id], artifact_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
