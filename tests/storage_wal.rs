//! The optimized profile's write-ahead log: checkpoints run off the writer, and the WAL stays
//! bounded when a reader pins old frames. Real SQLite files in a temporary directory.

use std::path::Path;
use std::time::{Duration, Instant};
use stepflow_bench::monitor::model::NewExecution;
use stepflow_bench::monitor::storage::{Profile, Storage, StorageConfig, WalLimits};

const PAGE_FRAME_BYTES: u64 = 4096 + 24;

fn open(dir: &Path, checkpoint_pages: i64, hard_limit_pages: i64) -> Storage {
    let mut config = StorageConfig::new(dir, Profile::Optimized);
    config.wal = WalLimits {
        checkpoint_pages,
        hard_limit_pages,
    };
    Storage::open(&config).expect("storage opens on a fresh dir")
}

fn new_execution(i: usize) -> NewExecution {
    NewExecution {
        name: format!("wal-{i}"),
        command: None,
        metadata: None,
    }
}

fn wal_file_bytes(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("stepflow.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Creates `n` executions, `in_flight` at a time (each group commits as one batch or a few).
async fn create(storage: &Storage, n: usize, in_flight: usize) {
    for start in (0..n).step_by(in_flight) {
        let group = (start..(start + in_flight).min(n)).map(|i| {
            let storage = storage.clone();
            async move { storage.create_execution(new_execution(i)).await }
        });
        for result in futures_join_all(group).await {
            result.expect("the write is acknowledged");
        }
    }
}

async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task runs"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_wakes_the_checkpointer_past_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path(), 20, 100_000);
    create(&storage, 400, 2).await;
    // The checkpointer was woken by the WAL hook; the idle fallback (1 s) could also explain
    // one checkpoint, so wait less than that and ask for the copied-back WAL.
    let deadline = Instant::now() + Duration::from_millis(900);
    loop {
        let stats = storage.stats();
        if stats.operations["checkpoint"].count >= 1 {
            assert!(stats.wal.peak_pages >= 20, "{:?}", stats.wal);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint within 0.9 s of passing the threshold: {:?}",
            stats.wal
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    storage.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_reader_does_not_let_the_wal_grow_past_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (threshold, limit) = (20, 200);
    let storage = open(dir.path(), threshold, limit);
    create(&storage, 10, 1).await;

    // A reader in the middle of a transaction keeps every frame after its snapshot in the WAL.
    let reader = rusqlite::Connection::open(dir.path().join("stepflow.db")).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM executions", [], |r| r.get(0))
        .unwrap();

    // About 1,500 small batches: several thousand WAL pages if nothing held the writer back.
    let writer = {
        let storage = storage.clone();
        tokio::spawn(async move { create(&storage, 3000, 2).await })
    };
    let mut peak = 0;
    let pinned_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < pinned_until && !writer.is_finished() {
        peak = peak.max(wal_file_bytes(dir.path()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("writes finish once the reader lets go")
        .expect("writer task");
    peak = peak.max(wal_file_bytes(dir.path()));

    let stats = storage.stats();
    assert!(stats.wal.forced_checkpoints >= 1, "{:?}", stats.wal);
    // The hard limit plus what a few batches add between two checks of the checkpointer.
    let bound = (2 * limit) as u64 * PAGE_FRAME_BYTES;
    assert!(
        peak <= bound,
        "WAL reached {peak} bytes with a limit of {limit} pages (bound {bound}): {:?}",
        stats.wal
    );
    let page = stepflow_bench::monitor::model::ListQuery::default();
    let listed = storage.list_executions(page).await.unwrap();
    assert_eq!(listed.total, 3010, "every acknowledged write is stored");
    storage.close();
}
