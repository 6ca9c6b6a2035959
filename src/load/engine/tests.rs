//! The engine's own tests: pure parts by tables, and the read-back against a transport that
//! loses writes on purpose, so that every checker is seen to find a loss.

use super::*;
use crate::load::scenario::OpParams;
use crate::load::transport::direct::DirectTransport;
use crate::monitor::storage::{Profile, Storage, StorageConfig};

#[test]
fn measured_windows_by_model() {
    let open = Load::Open {
        rate_per_s: 100.0,
        max_in_flight: 10,
    };
    let closed = Load::Closed { concurrency: 4 };
    let s = Duration::from_secs_f64;
    // (load, planned, until the last answer, cut short, window)
    for (load, planned, last, cut, want) in [
        (open, 10.0, 14.0, false, 14.0), // answers lagging: counted until the last
        (open, 10.0, 10.01, false, 10.01),
        (open, 10.0, 4.0, true, 4.0), // Ctrl-C after 4 s: not the planned 10
        (closed, 10.0, 10.2, false, 10.0), // each worker's last request is incidental
        (closed, 10.0, 4.0, true, 4.0),
    ] {
        assert_eq!(measured_window(load, s(planned), s(last), cut), s(want));
    }
}

#[test]
fn shares_add_up_and_differ_by_at_most_one() {
    for (total, parts) in [(10, 3), (1, 4), (0, 2), (10_000, 2), (7, 7)] {
        let s: Vec<u64> = (0..parts).map(|i| share(total, parts, i)).collect();
        assert_eq!(s.iter().sum::<u64>(), total, "{s:?}");
        assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
    }
}

/// Which writes a `Lossy` transport loses: of the calls of `kind`, every `every`-th one past
/// the first `after`.
#[derive(Debug, Clone, Copy)]
struct Loss {
    kind: OpKind,
    every: u64,
    after: u64,
}

impl Loss {
    /// Every `every`-th write of `kind`: for writes that add (an execution, a step, lines).
    fn every(kind: OpKind, every: u64) -> Loss {
        Loss {
            kind,
            every,
            after: 0,
        }
    }

    /// Every write of `kind` past the first `after`: for writes that overwrite (a status),
    /// where only the last one to each record can be found missing.
    fn all_after(kind: OpKind, after: u64) -> Loss {
        Loss {
            kind,
            every: 1,
            after,
        }
    }

    /// The loss a kind of write is tested with.
    fn of(kind: OpKind) -> Loss {
        match kind {
            OpKind::UpdateStatus | OpKind::UpdateStep => Loss::all_after(kind, 50),
            _ => Loss::every(kind, 7),
        }
    }
}

/// In-process storage whose transport answers some writes as if they were done and never
/// carries them out: what a service that loses acknowledged writes looks like to the
/// generator.
struct Lossy {
    inner: DirectTransport,
    loss: Option<Loss>,
    seen: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
}

impl Connector for Lossy {
    fn open(&self) -> Box<dyn crate::load::transport::DynTransport> {
        Box::new(Lossy {
            inner: self.inner.clone(),
            loss: self.loss,
            seen: Arc::clone(&self.seen),
            lost: Arc::clone(&self.lost),
        })
    }

    fn describe(&self, method: &str, path: &str) -> String {
        format!("{method} {path} (lossy in-process storage)")
    }
}

fn kind_of(call: &Call) -> Option<OpKind> {
    Some(match call {
        Call::Create { .. } => OpKind::CreateExecution,
        Call::UpdateStatus { .. } => OpKind::UpdateStatus,
        Call::AddStep { .. } => OpKind::AddStep,
        Call::UpdateStep { .. } => OpKind::UpdateStep,
        Call::AppendLogs { .. } => OpKind::AppendLogs,
        Call::AddArtifact { .. } => OpKind::AddArtifact,
        _ => return None,
    })
}

impl Transport for Lossy {
    async fn call(&mut self, call: &Call) -> Result<Reply, CallError> {
        if let Some(loss) = self.loss.filter(|l| kind_of(call) == Some(l.kind)) {
            let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
            if n > loss.after && n % loss.every == 0 {
                let k = self.lost.fetch_add(1, Ordering::Relaxed) as i64;
                return Ok(match call {
                    // Ids and indexes the storage never handed out.
                    Call::Create { .. } => Reply::Created {
                        id: ExecId::from(1_000_000_000 + k),
                    },
                    Call::AddStep { .. } => Reply::StepAdded { index: 1_000 + k },
                    _ => Reply::Done,
                });
            }
        }
        self.inner.call(call).await
    }
    async fn page(&mut self, limit: u32, offset: u64) -> Result<Page, CallError> {
        self.inner.page(limit, offset).await
    }
    async fn execution(&mut self, id: &ExecId) -> Result<ExecutionDetail, CallError> {
        self.inner.execution(id).await
    }
    async fn logs(&mut self, id: &ExecId, index: i64) -> Result<Vec<String>, CallError> {
        self.inner.logs(id, index).await
    }
    async fn artifacts(&mut self, id: &ExecId) -> Result<Vec<ArtifactRow>, CallError> {
        self.inner.artifacts(id).await
    }
}

/// Runs `workload` against fresh in-process storage through a `Lossy` transport; returns
/// the read-back's verdict and how many writes the transport lost.
fn run_lossy(workload: Workload, load: Load, loss: Option<Loss>) -> (Integrity, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage =
        Storage::open(&StorageConfig::new(dir.path(), Profile::Optimized)).expect("storage");
    let lost = Arc::new(AtomicU64::new(0));
    let connector = Lossy {
        inner: DirectTransport {
            storage: storage.clone(),
        },
        loss,
        seen: Arc::new(AtomicU64::new(0)),
        lost: Arc::clone(&lost),
    };
    let config = EngineConfig {
        workload,
        load,
        length: Length::Requests(300),
        warmup: Duration::ZERO,
        seed: 16,
        threads: 1,
        transport: Arc::new(connector),
        max_consecutive_failures: 1_000_000,
        shape: None,
    };
    let measured = run(config, Arc::new(Control::new(1_000_000)), || {});
    storage.close();
    let integrity = measured.integrity.expect("write workloads are read back");
    (integrity, lost.load(Ordering::Relaxed))
}

fn mix_of(kind: OpKind) -> Workload {
    Workload::Mix(vec![Operation {
        name: kind.name().to_string(),
        weight: 1,
        spec: OperationSpec::BuiltIn {
            kind,
            params: OpParams {
                lines: (kind == OpKind::AppendLogs).then_some(3),
                ..OpParams::default()
            },
        },
    }])
}

const WORKERS: Load = Load::Closed { concurrency: 2 };

#[test]
fn the_read_back_of_a_mix_finds_every_kind_of_lost_write() {
    // Each kind of write a mix makes, some of them acknowledged and not done: the
    // read-back must count losses, and a run without losses none.
    for kind in [
        OpKind::CreateExecution,
        OpKind::UpdateStatus,
        OpKind::AddStep,
        OpKind::UpdateStep,
        OpKind::AppendLogs,
        OpKind::AddArtifact,
    ] {
        let (clean, _) = run_lossy(mix_of(kind), WORKERS, None);
        assert_eq!(clean.lost_writes, 0, "{kind}: {:?}", clean.details);
        assert!(clean.checked > 0, "{kind}: nothing was checked");
        let (integrity, lost) = run_lossy(mix_of(kind), WORKERS, Some(Loss::of(kind)));
        assert!(lost > 0, "{kind}: the transport lost nothing");
        assert!(
            integrity.lost_writes > 0,
            "{kind}: {lost} writes lost, the read-back found none ({} checked)",
            integrity.checked
        );
        assert!(
            !integrity.details.is_empty(),
            "{kind}: no detail names a loss"
        );
    }
}

#[test]
fn the_read_back_of_a_burst_counts_each_lost_create() {
    let burst = || Workload::Burst { count: 60 };
    let load = Load::Closed { concurrency: 60 };
    let (clean, _) = run_lossy(burst(), load, None);
    assert_eq!(
        (clean.checked, clean.lost_writes),
        (60, 0),
        "{:?}",
        clean.details
    );
    let loss = Loss::every(OpKind::CreateExecution, 7);
    let (integrity, lost) = run_lossy(burst(), load, Some(loss));
    assert_eq!(lost, 8);
    assert_eq!(integrity.lost_writes, lost, "{:?}", integrity.details);
}

#[test]
fn the_read_back_of_a_flow_finds_every_kind_of_lost_write() {
    let plan = FlowPlan {
        executions: 6,
        steps: 3,
        artifacts: 2,
        log_lines: 4,
    };
    let (clean, _) = run_lossy(Workload::Flow(plan), WORKERS, None);
    assert_eq!(clean.lost_writes, 0, "{:?}", clean.details);
    for kind in [
        OpKind::UpdateStatus,
        OpKind::AddStep,
        OpKind::UpdateStep,
        OpKind::AppendLogs,
        OpKind::AddArtifact,
    ] {
        let (integrity, lost) =
            run_lossy(Workload::Flow(plan), WORKERS, Some(Loss::every(kind, 4)));
        assert!(lost > 0, "{kind}: the transport lost nothing");
        assert!(
            integrity.lost_writes > 0,
            "{kind}: {lost} writes lost, the read-back found none ({} checked)",
            integrity.checked
        );
    }
}
