//! The flow executor: whole executions created, stepped through with logs and artifacts,
//! and completed.

use super::*;

/// What one simulated execution wrote, to read back afterwards. Names, log lines and
/// artifact contents follow from the id and the numbers (`flow_step_name`, ...), so they are
/// made again for the read-back instead of being kept: a record is a few words however many
/// lines and artifacts the plan asks for.
#[derive(Debug, Clone)]
pub(super) struct FlowRecord {
    pub(super) id: ExecId,
    /// Steps acknowledged: step-0, step-1, ... in order.
    pub(super) steps: u32,
    /// Of those, the steps whose log append was not acknowledged (it may or may not be
    /// stored); the others hold `plan.log_lines` lines each.
    pub(super) logs_unacknowledged: Vec<u32>,
    /// Of those, the steps whose update to `completed` was not acknowledged.
    pub(super) steps_unfinished: Vec<u32>,
    /// Artifacts sent: artifact-0.txt, ...
    pub(super) artifacts: u32,
    /// Of those, the ones not acknowledged.
    pub(super) artifacts_unacknowledged: Vec<u32>,
    pub(super) completed: bool,
}

/// What a flow records, as indices into `FLOW_OPS` (the same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlowOp {
    /// One whole execution, created to completed.
    Execution,
    Create,
    AddStep,
    UpdateStep,
    AppendLogs,
    AddArtifact,
    UpdateStatus,
}

pub(super) fn flow_step_name(s: u32) -> String {
    format!("step-{s}")
}

pub(super) fn flow_log_lines(id: &ExecId, s: u32, lines: u32) -> Vec<String> {
    (0..lines)
        .map(|l| format!("execution {id} step {s} line {l}"))
        .collect()
}

pub(super) fn flow_artifact(id: &ExecId, a: u32) -> (String, String) {
    (
        format!("artifact-{a}.txt"),
        format!("output {a} of execution {id}\n").repeat(4),
    )
}

/// The real-world flow: executions created, stepped through with status updates and logs,
/// given artifacts and completed, with `concurrency` executions in flight.
pub(super) async fn run_flow(
    i: usize,
    threads: usize,
    shared: &Arc<Shared>,
    plan: &FlowPlan,
) -> ThreadOut {
    let concurrency = match shared.config.load {
        Load::Closed { concurrency } => concurrency,
        Load::Open { max_in_flight, .. } => max_in_flight,
    };
    let workers = share(u64::from(concurrency), threads, i);
    let Some(start) = shared.sync_start() else {
        return ThreadOut::nothing(FLOW_OPS.len(), Book::default());
    };
    if i == 0 {
        set_phase(shared, |p| p.measure_start = Some(start));
    }
    let rec = Rc::new(RefCell::new(Rec::new(
        FLOW_OPS.len(),
        start,
        Arc::clone(&shared.control),
    )));
    let flows = Rc::new(RefCell::new(Vec::new()));
    tokio::time::sleep_until(start.into()).await;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (shared, rec, flows, plan) = (
            Arc::clone(shared),
            Rc::clone(&rec),
            Rc::clone(&flows),
            *plan,
        );
        tasks.push(tokio::task::spawn_local(async move {
            let mut t = shared.transport();
            loop {
                let n = shared.next_flow.fetch_add(1, Ordering::Relaxed);
                if n >= u64::from(plan.executions) || shared.control.stopped() {
                    break;
                }
                let began = Instant::now();
                let record = one_flow(n, &plan, &mut t, &shared, &rec).await;
                // An execution cut short by the stop is neither a success nor a failure.
                if shared.control.stopped() {
                    break;
                }
                let outcome = match &record {
                    Some(r) if r.completed => Ok(()),
                    _ => Err(CallError::Decode("the execution did not complete".into())),
                };
                rec.borrow_mut().record(
                    FlowOp::Execution as usize,
                    began,
                    began,
                    Instant::now(),
                    &outcome,
                );
                if let Some(r) = record {
                    flows.borrow_mut().push(r);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    ThreadOut::finished(shared, start.elapsed(), rec, Vec::new(), take_rc(flows))
}

pub(super) async fn timed_call(
    op: FlowOp,
    t: &mut RunTransport,
    shared: &Shared,
    rec: &RefCell<Rec>,
    call: Call,
) -> Result<Reply, CallError> {
    let sent = Instant::now();
    let r = t.call(&call).await;
    shared.control.note(&r);
    rec.borrow_mut()
        .record(op as usize, sent, sent, Instant::now(), &r);
    r
}

/// One execution's life; returns what was acknowledged (None if it was never created).
pub(super) async fn one_flow(
    n: u64,
    plan: &FlowPlan,
    t: &mut RunTransport,
    shared: &Shared,
    rec: &RefCell<Rec>,
) -> Option<FlowRecord> {
    let id = match timed_call(
        FlowOp::Create,
        t,
        shared,
        rec,
        Call::Create {
            name: format!("flow-{n}"),
        },
    )
    .await
    {
        Ok(Reply::Created { id }) => id,
        _ => return None,
    };
    let mut record = FlowRecord {
        id: id.clone(),
        steps: 0,
        logs_unacknowledged: Vec::new(),
        steps_unfinished: Vec::new(),
        artifacts: 0,
        artifacts_unacknowledged: Vec::new(),
        completed: false,
    };
    let mut all_ok = true;
    for s in 0..plan.steps {
        let name = flow_step_name(s);
        let index = match timed_call(
            FlowOp::AddStep,
            t,
            shared,
            rec,
            Call::AddStep {
                id: id.clone(),
                name: name.clone(),
            },
        )
        .await
        {
            Ok(Reply::StepAdded { index }) => index,
            _ => return Some(record),
        };
        record.steps += 1;
        all_ok &= timed_call(
            FlowOp::UpdateStep,
            t,
            shared,
            rec,
            Call::UpdateStep {
                id: id.clone(),
                index,
                status: Status::Running,
            },
        )
        .await
        .is_ok();
        if plan.log_lines > 0 {
            let lines = flow_log_lines(&id, s, plan.log_lines);
            let appended = timed_call(
                FlowOp::AppendLogs,
                t,
                shared,
                rec,
                Call::AppendLogs {
                    id: id.clone(),
                    index,
                    lines,
                },
            )
            .await
            .is_ok();
            if !appended {
                record.logs_unacknowledged.push(s);
                all_ok = false;
            }
        }
        let finished = timed_call(
            FlowOp::UpdateStep,
            t,
            shared,
            rec,
            Call::UpdateStep {
                id: id.clone(),
                index,
                status: Status::Completed,
            },
        )
        .await
        .is_ok();
        if !finished {
            record.steps_unfinished.push(s);
            all_ok = false;
        }
    }
    for a in 0..plan.artifacts {
        let (name, content) = flow_artifact(&id, a);
        record.artifacts += 1;
        let added = timed_call(
            FlowOp::AddArtifact,
            t,
            shared,
            rec,
            Call::AddArtifact {
                id: id.clone(),
                name,
                content,
            },
        )
        .await
        .is_ok();
        if !added {
            record.artifacts_unacknowledged.push(a);
            all_ok = false;
        }
    }
    if timed_call(
        FlowOp::UpdateStatus,
        t,
        shared,
        rec,
        Call::UpdateStatus {
            id: id.clone(),
            status: Status::Completed,
        },
    )
    .await
    .is_ok()
    {
        record.completed = all_ok;
    }
    Some(record)
}
