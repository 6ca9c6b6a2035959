//! The monitor's storage: SQLite behind a group-commit writer thread and a reader pool
//! (optimized profile), or a connection per operation (legacy profile), plus step log files.

mod logs;
mod sql;
mod writer;

use writer::*;
pub mod stats;

use crate::monitor::events::{self, EventHub, EventsConfig};
pub use sql::READ_QUERIES;

use crate::monitor::model::{
    now_rfc3339, Artifact, Execution, ExecutionPage, ListQuery, LogLine, NewExecution, Status, Step,
};
use rusqlite::Connection;
use stats::{DbOp, DbStats, DbStatsSnapshot};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::oneshot;

/// Which storage configuration the monitor runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// WAL, group commit on one writer thread, pooled read-only connections.
    #[default]
    Optimized,
    /// Rollback journal, full sync, a new connection and transaction per operation.
    Legacy,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Optimized => "optimized",
            Profile::Legacy => "legacy",
        }
    }
}

/// Most writes one group-commit transaction takes from the queue.
const MAX_BATCH: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    NotFound(String),
    // No `source` fields: the message already carries the cause, and `{:#}` chains would
    // print it twice.
    #[error("cannot use database {path}: {reason}")]
    Open {
        path: PathBuf,
        reason: rusqlite::Error,
    },
    #[error("{0}")]
    DataDir(String),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// The disk (or the quota) is full; nothing of the write was kept. Says what failed.
    #[error("no space left on device: {0}")]
    Full(String),
    #[error("storage is shutting down")]
    Closed,
}

impl StorageError {
    fn open(path: &Path, reason: rusqlite::Error) -> Self {
        StorageError::Open {
            path: path.to_path_buf(),
            reason,
        }
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            StorageError::Full(format!("database: {e}"))
        } else {
            StorageError::Sqlite(e)
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        let full = e.kind() == std::io::ErrorKind::StorageFull
            || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT));
        if full {
            StorageError::Full(e.to_string())
        } else {
            StorageError::Io(e)
        }
    }
}

impl StorageError {
    /// What every write of a batch that failed as a whole gets, keeping the kind of failure.
    fn batch_failure(&self) -> StorageError {
        match self {
            StorageError::Full(why) => StorageError::Full(format!("transaction failed: {why}")),
            other => StorageError::Io(std::io::Error::other(format!(
                "transaction failed: {other}"
            ))),
        }
    }
}

/// Called with every connection the storage opens (the writer, the readers, the
/// checkpointer, each legacy connection) and its role, e.g. to install a trace hook.
#[derive(Clone)]
pub struct ConnHook(pub Arc<ConnHookFn>);

/// The function a [`ConnHook`] holds.
pub type ConnHookFn = dyn Fn(&mut Connection, &'static str) + Send + Sync;

impl std::fmt::Debug for ConnHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnHook")
    }
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

struct Optimized {
    writes: crossbeam_channel::Sender<WriterMsg>,
    /// `None` tells one reader thread to stop.
    reads: crossbeam_channel::Sender<Option<ReadJob>>,
    readers: usize,
    wal: WalLimits,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

enum Backend {
    Optimized(Optimized),
    Legacy,
}

struct Inner {
    backend: Backend,
    profile: Profile,
    db_path: PathBuf,
    logs: logs::LogStore,
    stats: Arc<DbStats>,
    journal_mode: String,
    events: EventHub,
    on_connect: Option<ConnHook>,
}

/// Cheap to clone; every clone talks to the same database and threads.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

/// Options for [`Storage::open`].
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub profile: Profile,
    /// Read-only connections in the optimized profile's pool.
    pub readers: usize,
    /// The optimized profile's WAL bounds.
    pub wal: WalLimits,
    /// The committed-write events' fan-out (`GET /api/ws`).
    pub events: EventsConfig,
    /// Run on every connection opened.
    pub on_connect: Option<ConnHook>,
}

/// When the optimized profile checkpoints its write-ahead log, in pages.
#[derive(Debug, Clone, Copy)]
pub struct WalLimits {
    /// WAL size at which the writer wakes the background checkpointer.
    pub checkpoint_pages: i64,
    /// WAL size past which a checkpoint holds the writer back until the WAL is copied back.
    pub hard_limit_pages: i64,
}

impl Default for WalLimits {
    fn default() -> Self {
        WalLimits {
            checkpoint_pages: CHECKPOINT_PAGES,
            hard_limit_pages: WAL_HARD_LIMIT_PAGES,
        }
    }
}

impl StorageConfig {
    pub fn new(data_dir: impl Into<PathBuf>, profile: Profile) -> Self {
        StorageConfig {
            data_dir: data_dir.into(),
            profile,
            readers: 2,
            wal: WalLimits::default(),
            events: EventsConfig::default(),
            on_connect: None,
        }
    }
}

impl Storage {
    /// Opens (creating if needed) `<data_dir>/stepflow.db` and `<data_dir>/logs`, runs
    /// migrations and starts the profile's threads. Fails before anything is served when the
    /// directory or database cannot be used.
    pub fn open(config: &StorageConfig) -> Result<Storage, StorageError> {
        let data_dir = &config.data_dir;
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(StorageError::DataDir(
                "it exists and is not a directory; pass --data-dir with a directory path".into(),
            ));
        }
        let logs = logs::LogStore::open(&data_dir.join("logs"))?;
        let db_path = data_dir.join("stepflow.db");
        let stats = Arc::new(DbStats::default());
        let events = EventHub::new(config.events);
        let mut conn = sql::open_and_migrate(&db_path, config.profile == Profile::Optimized)?;
        if let Some(hook) = &config.on_connect {
            (hook.0)(&mut conn, "writer");
        }
        let journal_mode = sql::journal_mode(&conn).map_err(|e| StorageError::open(&db_path, e))?;
        let backend = match config.profile {
            Profile::Optimized => {
                Backend::Optimized(start_optimized(conn, &db_path, config, &stats, &events)?)
            }
            Profile::Legacy => {
                drop(conn);
                Backend::Legacy
            }
        };
        Ok(Storage {
            inner: Arc::new(Inner {
                backend,
                profile: config.profile,
                db_path,
                logs,
                stats,
                journal_mode,
                events,
                on_connect: config.on_connect.clone(),
            }),
        })
    }

    pub fn profile(&self) -> Profile {
        self.inner.profile
    }

    pub fn journal_mode(&self) -> &str {
        &self.inner.journal_mode
    }

    /// The events published after each committed write.
    pub fn events(&self) -> &EventHub {
        &self.inner.events
    }

    pub fn stats(&self) -> DbStatsSnapshot {
        let mut snap = self.inner.stats.snapshot();
        if let Backend::Optimized(opt) = &self.inner.backend {
            snap.wal.checkpoint_threshold_pages = opt.wal.checkpoint_pages;
            snap.wal.hard_limit_pages = opt.wal.hard_limit_pages;
        }
        snap
    }

    /// The live figures, for exporters that read their histograms.
    pub fn raw_stats(&self) -> &DbStats {
        &self.inner.stats
    }

    /// The optimized profile's WAL bounds (`None` for legacy, which has no WAL).
    pub fn wal_limits(&self) -> Option<WalLimits> {
        match &self.inner.backend {
            Backend::Optimized(opt) => Some(opt.wal),
            Backend::Legacy => None,
        }
    }

    /// `<data-dir>/stepflow.db`.
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// Runs `f` on the connection that writes: the optimized writer thread's, between two
    /// group commits (writes queued meanwhile wait for it, none fails), or a new legacy
    /// connection (other legacy writers wait on its locks up to the busy timeout).
    pub async fn maintain<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        match &self.inner.backend {
            Backend::Optimized(opt) => {
                let (tx, rx) = oneshot::channel();
                let job: MaintainJob = Box::new(move |conn| {
                    let _ = tx.send(f(conn));
                });
                opt.writes
                    .send(WriterMsg::Maintain(job))
                    .map_err(|_| StorageError::Closed)?;
                rx.await.map_err(|_| StorageError::Closed)?
            }
            Backend::Legacy => {
                let inner = Arc::clone(&self.inner);
                blocking(move || f(&inner.open_legacy()?)).await
            }
        }
    }

    /// Size of the write-ahead log file, bytes (0 without WAL).
    pub fn wal_bytes(&self) -> u64 {
        let mut wal = self.inner.db_path.clone().into_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    /// Applies one write; returns once the transaction holding it has committed.
    async fn write(&self, op: WriteOp) -> Result<Written, StorageError> {
        match &self.inner.backend {
            Backend::Optimized(opt) => {
                let (reply, rx) = oneshot::channel();
                self.inner.stats.queued(1);
                if opt
                    .writes
                    .send(WriterMsg::Job(WriteJob { op, reply }))
                    .is_err()
                {
                    self.inner.stats.queued(-1);
                    return Err(StorageError::Closed);
                }
                rx.await.map_err(|_| StorageError::Closed)?
            }
            Backend::Legacy => {
                let inner = Arc::clone(&self.inner);
                blocking(move || {
                    let conn = inner.open_legacy()?;
                    conn.execute_batch("BEGIN IMMEDIATE")?;
                    let started = Instant::now();
                    let result = op.apply(&conn);
                    inner.stats.record(op.db_op(), started.elapsed());
                    // The operation's own error is the answer, not a failed ROLLBACK's (SQLite
                    // may have rolled back already, on a full disk); closing the connection
                    // rolls back whatever is left.
                    if result.is_err() {
                        let _ = conn.execute_batch("ROLLBACK");
                        return result;
                    }
                    let started = Instant::now();
                    if let Err(e) = conn.execute_batch("COMMIT") {
                        let _ = conn.execute_batch("ROLLBACK");
                        return Err(e.into());
                    }
                    inner.stats.record(DbOp::Commit, started.elapsed());
                    if let Ok(written) = &result {
                        let at = now_rfc3339();
                        inner
                            .events
                            .publish(1, &at, || vec![event_of(&op, written)]);
                    }
                    result
                })
                .await
            }
        }
    }

    /// Runs `f` on a read connection off the async worker threads.
    async fn read<T, F>(&self, op: DbOp, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let stats = Arc::clone(&self.inner.stats);
        let timed = move |conn: &Connection| {
            let started = Instant::now();
            let result = f(conn);
            stats.record(op, started.elapsed());
            result
        };
        match &self.inner.backend {
            Backend::Optimized(opt) => {
                let (tx, rx) = oneshot::channel();
                let job: ReadJob = Box::new(move |conn| {
                    let _ = tx.send(timed(conn));
                });
                opt.reads
                    .send(Some(job))
                    .map_err(|_| StorageError::Closed)?;
                rx.await.map_err(|_| StorageError::Closed)?
            }
            Backend::Legacy => {
                let inner = Arc::clone(&self.inner);
                blocking(move || timed(&inner.open_legacy()?)).await
            }
        }
    }

    pub async fn create_execution(&self, new: NewExecution) -> Result<Execution, StorageError> {
        match self.write(WriteOp::CreateExecution(new)).await? {
            Written::Execution(e) => Ok(e),
            _ => unreachable!("create_execution writes an execution"),
        }
    }

    pub async fn update_status(&self, id: i64, status: Status) -> Result<Execution, StorageError> {
        match self.write(WriteOp::UpdateStatus { id, status }).await? {
            Written::Execution(e) => Ok(e),
            _ => unreachable!("update_status writes an execution"),
        }
    }

    pub async fn add_step(&self, id: i64, name: String) -> Result<Step, StorageError> {
        match self.write(WriteOp::AddStep { id, name }).await? {
            Written::Step(s) => Ok(s),
            _ => unreachable!("add_step writes a step"),
        }
    }

    pub async fn update_step(
        &self,
        id: i64,
        index: i64,
        status: Status,
    ) -> Result<Step, StorageError> {
        match self
            .write(WriteOp::UpdateStep { id, index, status })
            .await?
        {
            Written::Step(s) => Ok(s),
            _ => unreachable!("update_step writes a step"),
        }
    }

    pub async fn add_artifact(
        &self,
        id: i64,
        name: String,
        content: String,
    ) -> Result<Artifact, StorageError> {
        match self
            .write(WriteOp::AddArtifact { id, name, content })
            .await?
        {
            Written::Artifact(a) => Ok(a),
            _ => unreachable!("add_artifact writes an artifact"),
        }
    }

    pub async fn get_execution(&self, id: i64) -> Result<Execution, StorageError> {
        self.read(DbOp::PointSelect, move |c| sql::get_execution(c, id))
            .await
    }

    pub async fn list_executions(&self, q: ListQuery) -> Result<ExecutionPage, StorageError> {
        self.read(DbOp::List, move |c| sql::list_executions(c, &q))
            .await
    }

    pub async fn list_artifacts(&self, id: i64) -> Result<Vec<Artifact>, StorageError> {
        self.read(DbOp::PointSelect, move |c| sql::list_artifacts(c, id))
            .await
    }

    /// Appends timestamped lines to the step's log file; returns them as stored. The file
    /// write has completed (it is in the OS page cache) before this returns.
    pub async fn append_logs(
        &self,
        id: i64,
        index: i64,
        lines: Vec<String>,
    ) -> Result<Vec<LogLine>, StorageError> {
        self.read(DbOp::PointSelect, move |c| sql::require_step(c, id, index))
            .await?;
        let logs = self.inner.logs.clone();
        let events = self.inner.events.clone();
        blocking(move || {
            let appended = logs.append(id, index, &lines)?;
            let at = now_rfc3339();
            events.publish(1, &at, || {
                vec![events::Pending::new(
                    events::EventKind::LogsAppended,
                    id,
                    &serde_json::json!({"execution_id": id, "index": index, "lines": &appended}),
                )]
            });
            Ok(appended)
        })
        .await
    }

    pub async fn read_logs(&self, id: i64, index: i64) -> Result<Vec<LogLine>, StorageError> {
        self.read(DbOp::PointSelect, move |c| sql::require_step(c, id, index))
            .await?;
        let logs = self.inner.logs.clone();
        blocking(move || logs.read(id, index)).await
    }

    /// Commits every queued write, checkpoints the WAL and stops the threads. Blocks; call
    /// it after the last request has been answered. Later calls on any clone fail with Closed.
    pub fn close(&self) {
        if let Backend::Optimized(opt) = &self.inner.backend {
            let _ = opt.writes.send(WriterMsg::Shutdown);
            for _ in 0..opt.readers {
                let _ = opt.reads.send(None);
            }
            let threads =
                std::mem::take(&mut *opt.threads.lock().unwrap_or_else(|e| e.into_inner()));
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

impl Inner {
    fn open_legacy(&self) -> Result<Connection, StorageError> {
        let mut conn = sql::open_legacy(&self.db_path)?;
        if let Some(hook) = &self.on_connect {
            (hook.0)(&mut conn, "legacy");
        }
        Ok(conn)
    }
}

async fn blocking<T, F>(f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        StorageError::Io(std::io::Error::other(format!("blocking task failed: {e}")))
    })?
}
