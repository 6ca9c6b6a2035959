//! The workload's memory of what it wrote: executions and steps it created, the statuses it
//! set, so later operations have targets and the integrity check knows what must be stored.

use super::ops::{Call, CallError, ExecutionRow, Reply};
use super::scenario::{OpKind, OpParams};
use crate::monitor::model::Status;
use std::collections::HashMap;

/// A small, fast, seedable generator (SplitMix64); statistical quality is ample for picking
/// operations and targets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

#[derive(Debug, Clone)]
struct Owned {
    id: i64,
    /// Last acknowledged status; None while only the creation is acknowledged (pending).
    acked: Option<Status>,
    /// Statuses of updates that failed or timed out: they may still have been applied.
    uncertain: Vec<Status>,
    /// Statuses that overlapping updates may have left, in either commit order; forgotten
    /// once an update sent with nothing else in flight is acknowledged.
    overlapping: Vec<Status>,
    /// Statuses of updates in flight now.
    in_flight: Vec<Status>,
    acked_steps: i64,
}

/// What an in-flight call will change in the book when it completes.
#[derive(Debug, Clone, Copy)]
pub enum Intent {
    None,
    Create,
    Status {
        slot: usize,
        status: Status,
        /// Nothing else was in flight on this execution when it was sent.
        alone: bool,
    },
    Step { slot: usize },
}

/// Per-thread record of owned executions and steps.
#[derive(Debug, Default)]
pub struct Book {
    owned: Vec<Owned>,
    steps: Vec<(usize, i64)>,
    created: u64,
    prefix: String,
}

const STATUSES: [Status; 4] = [
    Status::Running,
    Status::Completed,
    Status::Failed,
    Status::Cancelled,
];

impl Book {
    pub fn new(prefix: String) -> Book {
        Book {
            prefix,
            ..Book::default()
        }
    }

    pub fn len(&self) -> usize {
        self.owned.len()
    }

    fn next_name(&mut self) -> String {
        self.created += 1;
        format!("{}-{}", self.prefix, self.created)
    }

    pub fn create_call(&mut self) -> (Call, Intent) {
        (
            Call::Create {
                name: self.next_name(),
            },
            Intent::Create,
        )
    }

    pub fn step_call(&mut self, slot: usize) -> (Call, Intent) {
        let id = self.owned[slot].id;
        let name = format!("step-{}", self.owned[slot].acked_steps);
        (Call::AddStep { id, name }, Intent::Step { slot })
    }

    /// The call for one built-in operation. Operations that need an execution (or a step)
    /// fall back to creating one while the book has none, which only happens before set-up.
    pub fn prepare(&mut self, kind: OpKind, params: &OpParams, rng: &mut Rng) -> (Call, Intent) {
        let needs_step = matches!(
            kind,
            OpKind::UpdateStep | OpKind::AppendLogs | OpKind::GetLogs
        );
        if (kind != OpKind::Health && kind != OpKind::ListExecutions && self.owned.is_empty())
            || (needs_step && self.steps.is_empty())
        {
            if kind != OpKind::CreateExecution && !self.owned.is_empty() {
                let slot = rng.below(self.owned.len());
                return self.step_call(slot);
            }
            return self.create_call();
        }
        let slot = if self.owned.is_empty() {
            0
        } else {
            rng.below(self.owned.len())
        };
        let step = if self.steps.is_empty() {
            None
        } else {
            Some(self.steps[rng.below(self.steps.len())])
        };
        match kind {
            OpKind::Health => (Call::Health, Intent::None),
            OpKind::CreateExecution => self.create_call(),
            OpKind::GetExecution => (
                Call::Get {
                    id: self.owned[slot].id,
                },
                Intent::None,
            ),
            OpKind::ListExecutions => (
                Call::List {
                    limit: params.limit.unwrap_or(10),
                    offset: 0,
                },
                Intent::None,
            ),
            OpKind::UpdateStatus => {
                let status = STATUSES[rng.below(STATUSES.len())];
                let owned = &mut self.owned[slot];
                let alone = owned.in_flight.is_empty();
                if !alone {
                    // Updates in flight together on one execution may commit in any order.
                    owned.overlapping.extend(owned.in_flight.iter().copied());
                    owned.overlapping.push(status);
                    owned.overlapping.extend(owned.acked);
                }
                owned.in_flight.push(status);
                (
                    Call::UpdateStatus {
                        id: owned.id,
                        status,
                    },
                    Intent::Status {
                        slot,
                        status,
                        alone,
                    },
                )
            }
            OpKind::AddStep => self.step_call(slot),
            OpKind::UpdateStep => {
                let (s, index) = step.expect("checked above");
                (
                    Call::UpdateStep {
                        id: self.owned[s].id,
                        index,
                        status: STATUSES[rng.below(STATUSES.len())],
                    },
                    Intent::None,
                )
            }
            OpKind::AppendLogs => {
                let (s, index) = step.expect("checked above");
                let n = params.lines.unwrap_or(3);
                let lines = (0..n)
                    .map(|i| format!("log line {i} of step {index}: the quick brown fox"))
                    .collect();
                (
                    Call::AppendLogs {
                        id: self.owned[s].id,
                        index,
                        lines,
                    },
                    Intent::None,
                )
            }
            OpKind::GetLogs => {
                let (s, index) = step.expect("checked above");
                (
                    Call::GetLogs {
                        id: self.owned[s].id,
                        index,
                    },
                    Intent::None,
                )
            }
            OpKind::AddArtifact => (
                Call::AddArtifact {
                    id: self.owned[slot].id,
                    name: "report.txt".to_string(),
                    content: "artifact content ".repeat(8),
                },
                Intent::None,
            ),
            OpKind::ListArtifacts => (
                Call::ListArtifacts {
                    id: self.owned[slot].id,
                },
                Intent::None,
            ),
        }
    }

    /// Applies a completed call's outcome.
    pub fn complete(&mut self, intent: Intent, result: &Result<Reply, CallError>) {
        match (intent, result) {
            (Intent::Create, Ok(Reply::Created { id })) => self.owned.push(Owned {
                id: *id,
                acked: None,
                uncertain: Vec::new(),
                overlapping: Vec::new(),
                in_flight: Vec::new(),
                acked_steps: 0,
            }),
            (
                Intent::Status {
                    slot,
                    status,
                    alone,
                },
                r,
            ) => {
                let owned = &mut self.owned[slot];
                if let Some(i) = owned.in_flight.iter().position(|s| *s == status) {
                    owned.in_flight.swap_remove(i);
                }
                match r {
                    Ok(_) => {
                        owned.acked = Some(status);
                        // Sent after every earlier update had answered, and nothing was sent
                        // since: it committed last, so the order is known again.
                        if alone && owned.in_flight.is_empty() {
                            owned.overlapping.clear();
                        }
                    }
                    // Failed or timed out: it may or may not have been applied.
                    Err(_) => owned.uncertain.push(status),
                }
            }
            (Intent::Step { slot }, Ok(Reply::StepAdded { index })) => {
                let owned = &mut self.owned[slot];
                owned.acked_steps = owned.acked_steps.max(index + 1);
                self.steps.push((slot, *index));
            }
            _ => {}
        }
    }

    /// The lowest id this book created, to know how far back to page.
    pub fn min_id(&self) -> Option<i64> {
        self.owned.iter().map(|o| o.id).min()
    }

    /// Acknowledged creates (each with its last acknowledged status and step count).
    pub fn acknowledged(&self) -> u64 {
        self.owned.len() as u64
    }

    /// Compares what was acknowledged against what is stored. Returns (checked, lost, notes).
    pub fn verify(&self, stored: &HashMap<i64, ExecutionRow>) -> (u64, u64, Vec<String>) {
        let mut lost = 0;
        let mut notes = Vec::new();
        let note = |msg: String, notes: &mut Vec<String>| {
            if notes.len() < 10 {
                notes.push(msg);
            }
        };
        for o in &self.owned {
            let Some(row) = stored.get(&o.id) else {
                lost += 1;
                note(
                    format!("execution {} acknowledged but not stored", o.id),
                    &mut notes,
                );
                continue;
            };
            let expected = o.acked.unwrap_or(Status::Pending);
            let status_ok = row.status == expected.as_str()
                || o
                    .uncertain
                    .iter()
                    .chain(&o.overlapping)
                    .any(|s| s.as_str() == row.status);
            if !status_ok {
                lost += 1;
                note(
                    format!(
                        "execution {}: status {:?} acknowledged, {:?} stored",
                        o.id,
                        expected.as_str(),
                        row.status
                    ),
                    &mut notes,
                );
            }
            if row.step_count < o.acked_steps {
                lost += 1;
                note(
                    format!(
                        "execution {}: {} steps acknowledged, {} stored",
                        o.id, o.acked_steps, row.step_count
                    ),
                    &mut notes,
                );
            }
        }
        (self.owned.len() as u64, lost, notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, status: &str, steps: i64) -> (i64, ExecutionRow) {
        (
            id,
            ExecutionRow {
                id,
                status: status.into(),
                step_count: steps,
            },
        )
    }

    #[test]
    fn rng_below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            seen[rng.below(5)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 1500), "{seen:?}");
    }

    #[test]
    fn verify_finds_missing_executions_wrong_status_and_missing_steps() {
        let mut book = Book::new("t".into());
        let mut rng = Rng::new(1);
        for id in 1..=3 {
            let (_, intent) = book.create_call();
            book.complete(intent, &Ok(Reply::Created { id }));
        }
        // Execution slot 0 gets an acknowledged status update and a step.
        let (call, intent) = book.prepare(OpKind::UpdateStatus, &OpParams::default(), &mut rng);
        let Call::UpdateStatus { id, status } = call else {
            panic!("{call:?}")
        };
        book.complete(intent, &Ok(Reply::Done));
        let (_, intent) = book.step_call(0);
        book.complete(intent, &Ok(Reply::StepAdded { index: 0 }));
        let first = book.owned[0].id;

        let good: HashMap<_, _> = (1..=3)
            .map(|i| {
                if i == id {
                    row(i, status.as_str(), if i == first { 1 } else { 0 })
                } else {
                    row(i, "pending", if i == first { 1 } else { 0 })
                }
            })
            .collect();
        assert_eq!(book.verify(&good).1, 0, "{:?}", book.verify(&good).2);

        let mut missing = good.clone();
        missing.remove(&2);
        assert_eq!(book.verify(&missing).1, 1);

        let mut stale = good.clone();
        stale.get_mut(&id).unwrap().status = "pending".into();
        assert_eq!(book.verify(&stale).1, 1);

        let mut no_step = good;
        no_step.get_mut(&first).unwrap().step_count = 0;
        assert_eq!(book.verify(&no_step).1, 1);
    }

    #[test]
    fn overlapping_updates_accept_either_commit_order_until_a_lone_update_settles_it() {
        let mut book = Book::new("t".into());
        let (_, intent) = book.create_call();
        book.complete(intent, &Ok(Reply::Created { id: 5 }));
        let mut rng = Rng::new(11);
        let p = OpParams::default();
        let (c1, i1) = book.prepare(OpKind::UpdateStatus, &p, &mut rng);
        let (c2, i2) = book.prepare(OpKind::UpdateStatus, &p, &mut rng);
        let status = |c: &Call| match c {
            Call::UpdateStatus { status, .. } => *status,
            other => panic!("{other:?}"),
        };
        let (s1, s2) = (status(&c1), status(&c2));
        // The answers arrive in send order, but the server may have committed U2 first.
        book.complete(i1, &Ok(Reply::Done));
        book.complete(i2, &Ok(Reply::Done));
        for stored in [s1, s2] {
            let rows: HashMap<_, _> = [row(5, stored.as_str(), 0)].into_iter().collect();
            assert_eq!(book.verify(&rows).1, 0, "{stored:?} after {s1:?}, {s2:?}");
        }
        // A later update sent alone decides the final state again.
        let (c3, i3) = book.prepare(OpKind::UpdateStatus, &p, &mut rng);
        book.complete(i3, &Ok(Reply::Done));
        let s3 = status(&c3);
        for stored in [s1, s2] {
            if stored != s3 {
                let rows: HashMap<_, _> = [row(5, stored.as_str(), 0)].into_iter().collect();
                assert_eq!(book.verify(&rows).1, 1, "{stored:?} must not pass after {s3:?}");
            }
        }
    }

    #[test]
    fn failed_update_makes_either_status_acceptable() {
        let mut book = Book::new("t".into());
        let (_, intent) = book.create_call();
        book.complete(intent, &Ok(Reply::Created { id: 9 }));
        let mut rng = Rng::new(3);
        let (call, intent) = book.prepare(OpKind::UpdateStatus, &OpParams::default(), &mut rng);
        let Call::UpdateStatus { status, .. } = call else {
            panic!()
        };
        book.complete(intent, &Err(CallError::Decode("connection reset".into())));
        for stored in ["pending", status.as_str()] {
            let rows: HashMap<_, _> = [row(9, stored, 0)].into_iter().collect();
            assert_eq!(book.verify(&rows).1, 0, "{stored}");
        }
    }
}
