//! Storage benchmarks: each StepFlow storage operation under both profiles, one criterion
//! group per operation with `optimized` and `legacy` side by side, so the report shows the
//! before/after gap operation by operation.
//!
//! The databases live under cargo's target tmpdir (the same disk as the build, not a tmpfs),
//! because the legacy profile's cost is mostly its fsyncs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use futures_join::join_all;
use stepflow_bench::monitor::model::{ListQuery, NewExecution, Status};
use stepflow_bench::monitor::storage::{Profile, Storage, StorageConfig};
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// Executions created before measuring, so reads and lists have rows to find.
const SEEDED: usize = 300;
/// Lines per `append_logs` call.
const LOG_LINES: usize = 10;
/// Writes in one group-commit batch.
const BATCH: usize = 100;

const PROFILES: [(Profile, &str); 2] = [
    (Profile::Optimized, "optimized"),
    (Profile::Legacy, "legacy"),
];

/// One profile's storage in a fresh data dir, with seeded rows and one step to log to.
struct Fixture {
    storage: Storage,
    ids: Vec<i64>,
    /// Execution owning step 0, which `append_logs` writes to.
    logged: i64,
    _dir: TempDir,
}

impl Fixture {
    fn open(rt: &Runtime, profile: Profile) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("bench-storage-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir under the target dir");
        let storage = Storage::open(&StorageConfig::new(dir.path(), profile)).expect("open");
        // Seeded one by one: concurrent legacy writers would spend seconds in lock back-off.
        let ids = rt.block_on(async {
            let mut ids = Vec::with_capacity(SEEDED);
            for i in 0..SEEDED {
                let e = storage.create_execution(new_execution(i)).await;
                ids.push(e.expect("seed insert").id);
            }
            ids
        });
        let logged = ids[0];
        rt.block_on(storage.add_step(logged, "build".into()))
            .expect("seed step");
        Fixture {
            storage,
            ids,
            logged,
            _dir: dir,
        }
    }

    /// Seeded ids in turn, so reads and updates spread over the table.
    fn id(&self, i: usize) -> i64 {
        self.ids[i % self.ids.len()]
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.storage.close();
    }
}

fn new_execution(i: usize) -> NewExecution {
    NewExecution {
        name: format!("bench-{i}"),
        command: Some("make test".into()),
        metadata: Some(r#"{"branch":"main","runner":"bench"}"#.into()),
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn storage_benches(c: &mut Criterion) {
    let rt = runtime();
    let fixtures: Vec<(&str, Fixture)> = PROFILES
        .iter()
        .map(|(profile, name)| (*name, Fixture::open(&rt, *profile)))
        .collect();

    // Each operation's group runs `iteration` on both profiles; `i` counts iterations.
    let mut bench = |group_name: &str, slow: bool, iteration: &dyn Fn(&Fixture, usize)| {
        let mut group = c.benchmark_group(group_name);
        if slow {
            // Legacy writes fsync several times each: flat sampling with few samples keeps the
            // group within seconds instead of minutes.
            group.sampling_mode(SamplingMode::Flat).sample_size(10);
        }
        for (name, fixture) in &fixtures {
            group.bench_with_input(BenchmarkId::from_parameter(name), fixture, |b, f| {
                let mut i = 0;
                b.iter(|| {
                    i += 1;
                    iteration(f, i)
                })
            });
        }
        group.finish();
    };

    bench("insert", false, &|f, i| {
        let e = rt.block_on(f.storage.create_execution(new_execution(i)));
        black_box(e.expect("insert"));
    });
    bench("select_by_id", false, &|f, i| {
        let e = rt.block_on(f.storage.get_execution(f.id(i)));
        black_box(e.expect("select"));
    });
    bench("list_newest_10", false, &|f, _| {
        let q = ListQuery {
            limit: 10,
            ..ListQuery::default()
        };
        let page = rt.block_on(f.storage.list_executions(q));
        black_box(page.expect("list"));
    });
    bench("update_status", false, &|f, i| {
        let status = Status::ALL[i % Status::ALL.len()];
        let e = rt.block_on(f.storage.update_status(f.id(i), status));
        black_box(e.expect("update"));
    });
    bench("append_logs", false, &|f, i| {
        let lines = (0..LOG_LINES)
            .map(|n| format!("iteration {i} line {n}: compiling stepflow-bench"))
            .collect();
        let written = rt.block_on(f.storage.append_logs(f.logged, 0, lines));
        black_box(written.expect("append"));
    });
    bench("batch_100_inserts", true, &|f, i| {
        let created = rt.block_on(join_all(
            (0..BATCH).map(|n| f.storage.create_execution(new_execution(i * BATCH + n))),
        ));
        for e in created {
            black_box(e.expect("batch insert"));
        }
    });
}

/// A minimal `join_all`: polls every future to completion and keeps their order, so the
/// bench needs no futures crate.
mod futures_join {
    use std::future::Future;

    pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
        let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
        let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (fut, slot) in pinned.iter_mut().zip(out.iter_mut()) {
                if slot.is_none() {
                    match fut.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => *slot = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter()
            .map(|v| v.expect("every future completed"))
            .collect()
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = storage_benches
}
criterion_main!(benches);
