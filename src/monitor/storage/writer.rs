//! The optimized profile's writer: the queued write operations, the one writer thread that
//! drains them into group-commit transactions (answering each after COMMIT and publishing its
//! event), and the background checkpointer that keeps the WAL bounded.

use super::*;

/// A write the writer thread applies inside its current batch transaction.
pub(super) enum WriteOp {
    CreateExecution(NewExecution),
    UpdateStatus {
        id: i64,
        status: Status,
    },
    AddStep {
        id: i64,
        name: String,
    },
    UpdateStep {
        id: i64,
        index: i64,
        status: Status,
    },
    AddArtifact {
        id: i64,
        name: String,
        content: String,
    },
}

pub(super) enum Written {
    Execution(Execution),
    Step(Step),
    Artifact(Artifact),
}

impl WriteOp {
    pub(super) fn db_op(&self) -> DbOp {
        match self {
            WriteOp::CreateExecution(_) | WriteOp::AddStep { .. } | WriteOp::AddArtifact { .. } => {
                DbOp::Insert
            }
            WriteOp::UpdateStatus { .. } | WriteOp::UpdateStep { .. } => DbOp::Update,
        }
    }

    pub(super) fn apply(&self, conn: &Connection) -> Result<Written, StorageError> {
        let now = now_rfc3339();
        Ok(match self {
            WriteOp::CreateExecution(new) => {
                Written::Execution(sql::insert_execution(conn, new, &now)?)
            }
            WriteOp::UpdateStatus { id, status } => {
                Written::Execution(sql::update_status(conn, *id, *status, &now)?)
            }
            WriteOp::AddStep { id, name } => Written::Step(sql::add_step(conn, *id, name, &now)?),
            WriteOp::UpdateStep { id, index, status } => {
                Written::Step(sql::update_step(conn, *id, *index, *status, &now)?)
            }
            WriteOp::AddArtifact { id, name, content } => {
                Written::Artifact(sql::add_artifact(conn, *id, name, content, &now)?)
            }
        })
    }
}

/// The event a committed write publishes: its kind and the REST API's shape of what it wrote.
pub(super) fn event_of(op: &WriteOp, written: &Written) -> events::Pending {
    use events::{EventKind, Pending};
    match (op, written) {
        (WriteOp::CreateExecution(_), Written::Execution(e)) => {
            Pending::new(EventKind::ExecutionCreated, e.id, e)
        }
        (_, Written::Execution(e)) => Pending::new(EventKind::ExecutionStatusChanged, e.id, e),
        (WriteOp::AddStep { .. }, Written::Step(s)) => {
            Pending::new(EventKind::StepAdded, s.execution_id, s)
        }
        (_, Written::Step(s)) => Pending::new(EventKind::StepStatusChanged, s.execution_id, s),
        (_, Written::Artifact(a)) => Pending::new(EventKind::ArtifactAdded, a.execution_id, a),
    }
}

pub(super) struct WriteJob {
    pub(super) op: WriteOp,
    pub(super) reply: oneshot::Sender<Result<Written, StorageError>>,
}

pub(super) enum WriterMsg {
    Job(WriteJob),
    /// Maintenance (ANALYZE, VACUUM, a checkpoint, reading PRAGMAs) on the write connection,
    /// run between two batches: writes queued meanwhile wait, none fails.
    Maintain(MaintainJob),
    Shutdown,
}

pub(super) type MaintainJob = Box<dyn FnOnce(&Connection) + Send>;

pub(super) fn start_optimized(
    conn: Connection,
    db_path: &Path,
    config: &StorageConfig,
    stats: &Arc<DbStats>,
    events: &EventHub,
) -> Result<Optimized, StorageError> {
    let events = events.clone();
    let wal = config.wal;
    let (write_tx, write_rx) = crossbeam_channel::unbounded::<WriterMsg>();
    let (read_tx, read_rx) = crossbeam_channel::unbounded::<Option<ReadJob>>();
    let readers = config.readers.max(1);
    let mut threads = Vec::new();
    for i in 0..readers {
        let mut reader = sql::open_reader(db_path)?;
        if let Some(hook) = &config.on_connect {
            (hook.0)(&mut reader, "reader");
        }
        let rx = read_rx.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("db-reader-{i}"))
                .spawn(move || {
                    while let Ok(Some(job)) = rx.recv() {
                        job(&reader);
                    }
                })?,
        );
    }
    let stats = Arc::clone(stats);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    // The hook replaces SQLite's automatic checkpoint (wal_autocheckpoint is itself a WAL
    // hook): the writer only signals, and the checkpoint runs on its own thread.
    let (wake_tx, wake_rx) = crossbeam_channel::bounded::<()>(1);
    let wal_pages = Arc::new(AtomicI64::new(0));
    let hook_wal_pages = Arc::clone(&wal_pages);
    let mut conn = conn;
    sql::fine_busy_handler(&mut conn).map_err(|e| StorageError::open(db_path, e))?;
    conn.wal_hook(Some(
        move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            hook_wal_pages.store(pages.into(), Ordering::Relaxed);
            if i64::from(pages) >= wal.checkpoint_pages {
                let _ = wake_tx.try_send(());
            }
            Ok(())
        },
    ))?;
    let mut checkpointer = sql::open_checkpointer(db_path)?;
    if let Some(hook) = &config.on_connect {
        (hook.0)(&mut checkpointer, "checkpointer");
    }
    let checkpoint_stats = Arc::clone(&stats);
    let background = std::thread::Builder::new()
        .name("db-checkpoint".into())
        .spawn(move || checkpoint_loop(&checkpointer, &wake_rx, &stop_rx, &checkpoint_stats))?;
    threads.push(
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                writer_loop(&conn, &write_rx, &stats, wal, &wal_pages, &events);
                // The background checkpointer stops first: a checkpoint of its own running
                // at the same time would make the final TRUNCATE fail with SQLITE_BUSY.
                drop(stop_tx);
                let _ = background.join();
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
                    eprintln!("stepflow-monitor: WAL checkpoint at shutdown failed: {e}");
                }
            })?,
    );
    Ok(Optimized {
        writes: write_tx,
        reads: read_tx,
        readers,
        wal,
        threads: Mutex::new(threads),
    })
}

/// How often the writer hands its clean cached pages back.
pub(super) const SHRINK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// WAL size, pages, at which the writer wakes the checkpointer: the write-up's
/// `wal_autocheckpoint=1000`, kept as a threshold but run off the writer thread.
pub(super) const CHECKPOINT_PAGES: i64 = 1000;

/// WAL size, pages (about 64 MiB at 4 KiB pages), at which the writer stops writing and runs
/// a RESTART checkpoint itself: it copies back what the checkpointer has not yet, waits until
/// readers let go of old frames, and the next commit starts the WAL from its beginning. This
/// is what bounds the WAL. Under steady writes it happens every 16,000 pages: the WAL only
/// restarts when a checkpoint has copied every frame back before the next commit, which a
/// checkpoint running beside a busy writer almost never manages, so the background one keeps
/// the copy-back current and this one is short (the writer's own timing: `wal_restart`).
/// When readers pin the WAL or the disk is slow, it holds the writer back as long as needed.
/// (A RESTART on the checkpointer's connection does not hold the writer back while it waits
/// for readers: the WAL grew past any limit in tests/storage_wal.rs.)
pub(super) const WAL_HARD_LIMIT_PAGES: i64 = 16_000;

/// A quiet WAL below the threshold is still copied back this often.
pub(super) const IDLE_CHECKPOINT: std::time::Duration = std::time::Duration::from_secs(1);

/// Copies committed WAL frames into the database off the writer thread, when the writer's WAL
/// hook says the WAL passed CHECKPOINT_PAGES (or after IDLE_CHECKPOINT). SQLite's automatic
/// checkpoint ran inside COMMIT on the writer, with its fsyncs, while a whole batch of
/// requests waited: that was the write tail (p99 12 ms against p90 3 ms).
pub(super) fn checkpoint_loop(
    conn: &Connection,
    wake: &crossbeam_channel::Receiver<()>,
    stop: &crossbeam_channel::Receiver<()>,
    stats: &DbStats,
) {
    loop {
        crossbeam_channel::select! {
            recv(stop) -> _ => return,
            recv(wake) -> _ => {},
            default(IDLE_CHECKPOINT) => {},
        }
        let started = Instant::now();
        let outcome = checkpoint(conn, "PRAGMA wal_checkpoint(PASSIVE)");
        stats.record(DbOp::Checkpoint, started.elapsed());
        match outcome {
            Ok((_, wal, done)) => stats.record_checkpoint(wal, wal - done, false),
            Err(e) => eprintln!("stepflow-monitor: background checkpoint failed: {e}"),
        }
    }
}

/// The WAL passed its hard limit: the checkpointer has fallen behind, or readers pin old
/// frames. The writer stops taking writes (they queue, and their requests wait) until a
/// RESTART checkpoint has copied the whole WAL back and readers have let go of it, so that
/// the next commit starts the WAL from its beginning. A RESTART returns busy at once while the
/// background checkpointer holds the checkpoint lock, so it is retried until BUSY_TIMEOUT.
pub(super) fn bound_wal(conn: &Connection, pages: i64, wal_pages: &AtomicI64, stats: &DbStats) {
    let started = Instant::now();
    let outcome = loop {
        match checkpoint(conn, "PRAGMA wal_checkpoint(RESTART)") {
            Ok((false, wal, done)) => break Ok((wal, done)),
            Ok(_) if started.elapsed() < sql::BUSY_TIMEOUT => {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            Ok(_) => break Err("still busy after the busy timeout".to_string()),
            Err(e) => break Err(e.to_string()),
        }
    };
    stats.record(DbOp::WalRestart, started.elapsed());
    match outcome {
        Ok((wal, done)) => {
            wal_pages.store(wal - done, Ordering::Relaxed);
            stats.record_checkpoint(pages.max(wal), wal - done, true);
        }
        Err(e) => eprintln!(
            "stepflow-monitor: WAL over its limit ({pages} pages), checkpoint failed: {e}"
        ),
    }
}

/// Runs one checkpoint PRAGMA; returns whether it was blocked (busy), the WAL's size and how
/// much of it is now in the database, pages.
pub(super) fn checkpoint(
    conn: &Connection,
    pragma: &'static str,
) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row(pragma, [], |r| {
        Ok((
            r.get::<_, i64>(0)? != 0,
            r.get::<_, i64>(1)?.max(0),
            r.get::<_, i64>(2)?.max(0),
        ))
    })
}

/// Group commit: take one write, then everything already queued (up to MAX_BATCH), apply them
/// all in one transaction, and answer each only after COMMIT has returned.
pub(super) fn writer_loop(
    conn: &Connection,
    rx: &crossbeam_channel::Receiver<WriterMsg>,
    stats: &DbStats,
    limits: WalLimits,
    wal_pages: &AtomicI64,
    events: &EventHub,
) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    let mut results: Vec<Result<Written, StorageError>> = Vec::with_capacity(MAX_BATCH);
    let mut shutting_down = false;
    let mut last_shrink = Instant::now();
    let mut maintenance: Option<MaintainJob> = None;
    loop {
        match rx.recv() {
            Ok(WriterMsg::Job(job)) => batch.push(job),
            Ok(WriterMsg::Maintain(job)) => maintenance = Some(job),
            Ok(WriterMsg::Shutdown) | Err(_) => shutting_down = true,
        }
        // Writes queued before a maintenance job are committed before it runs.
        while batch.len() < MAX_BATCH && maintenance.is_none() {
            match rx.try_recv() {
                Ok(WriterMsg::Job(job)) => batch.push(job),
                Ok(WriterMsg::Maintain(job)) => maintenance = Some(job),
                Ok(WriterMsg::Shutdown) => shutting_down = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            stats.queued(-(batch.len() as i64));
            stats.record_batch(batch.len());
            commit_batch(conn, &batch, &mut results, stats);
            // Events go out only now that the batch has committed (a failed batch leaves
            // every result an error, and publishes nothing).
            let ok = results.iter().filter(|r| r.is_ok()).count();
            if ok > 0 {
                let at = now_rfc3339();
                events.publish(ok, &at, || {
                    batch
                        .iter()
                        .zip(results.iter())
                        .filter_map(|(job, r)| r.as_ref().ok().map(|w| event_of(&job.op, w)))
                        .collect()
                });
            }
            for (job, result) in batch.drain(..).zip(results.drain(..)) {
                let _ = job.reply.send(result);
            }
        }
        if let Some(job) = maintenance.take() {
            job(conn);
        }
        let pages = wal_pages.load(Ordering::Relaxed);
        if pages > limits.hard_limit_pages {
            bound_wal(conn, pages, wal_pages, stats);
        }
        // cache_size=10000 lets the page cache grow to ~40 MB, almost all of it clean pages
        // that mmap serves again for free; releasing them now and then keeps the RSS low.
        // It takes ~0.3 ms (up to 2.5 ms seen) of the writer's time, so only when no write
        // is waiting: the cache_size cap bounds the memory of a writer that is never idle.
        if last_shrink.elapsed() >= SHRINK_INTERVAL && rx.is_empty() {
            last_shrink = Instant::now();
            let _ = exec_cached(conn, "PRAGMA shrink_memory");
            stats.record(DbOp::ShrinkMemory, last_shrink.elapsed());
        }
        // Writes queued behind the shutdown request are still committed before the loop ends.
        if shutting_down && rx.is_empty() {
            break;
        }
    }
}

pub(super) fn commit_batch(
    conn: &Connection,
    batch: &[WriteJob],
    results: &mut Vec<Result<Written, StorageError>>,
    stats: &DbStats,
) {
    if let Err(e) = exec_cached(conn, "BEGIN IMMEDIATE") {
        fail_all(batch, results, &e.into());
        return;
    }
    for job in batch {
        let started = Instant::now();
        let result = job.op.apply(conn);
        stats.record(job.op.db_op(), started.elapsed());
        // A severe error (disk full, I/O) rolls the whole transaction back by itself; later
        // writes must not then run in autocommit mode behind the batch's back.
        if conn.is_autocommit() {
            let cause = match result {
                Err(e) => e,
                Ok(_) => {
                    StorageError::Io(std::io::Error::other("transaction rolled back by SQLite"))
                }
            };
            fail_all(batch, results, &cause);
            return;
        }
        results.push(result);
    }
    let started = Instant::now();
    match exec_cached(conn, "COMMIT") {
        Ok(()) => stats.record(DbOp::Commit, started.elapsed()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            eprintln!(
                "stepflow-monitor: group commit of {} writes failed: {e}",
                batch.len()
            );
            fail_all(batch, results, &e.into());
        }
    }
}

pub(super) fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

pub(super) fn fail_all(
    batch: &[WriteJob],
    results: &mut Vec<Result<Written, StorageError>>,
    cause: &StorageError,
) {
    results.clear();
    results.extend(batch.iter().map(|_| Err(cause.batch_failure())));
}
