//! The workload's memory of what it wrote: executions and steps it created, the statuses it
//! set, so later operations have targets and the integrity check knows what must be stored.

use super::id::ExecId;
use super::scenario::{OpKind, OpParams};
use super::transport::{Call, CallError, ExecutionRow, Reply};
use crate::monitor::model::Status;
pub use crate::rng::Rng;
use std::collections::HashMap;

/// A set of statuses. What a track remembers is one of these rather than a list of the
/// updates sent, so that it stays a byte however many updates overlap or fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StatusSet(u8);

impl StatusSet {
    fn bit(s: Status) -> u8 {
        let i = Status::ALL.iter().position(|x| *x == s).unwrap_or(0);
        1 << i
    }

    fn insert(&mut self, s: Status) {
        self.0 |= StatusSet::bit(s);
    }

    fn extend(&mut self, statuses: impl IntoIterator<Item = Status>) {
        for s in statuses {
            self.insert(s);
        }
    }

    fn clear(&mut self) {
        self.0 = 0;
    }

    fn contains_str(self, stored: &str) -> bool {
        Status::ALL
            .iter()
            .any(|s| self.0 & StatusSet::bit(*s) != 0 && s.as_str() == stored)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[cfg(test)]
    fn len(self) -> usize {
        self.0.count_ones() as usize
    }
}

/// What is known of one status field (an execution's or a step's) from the updates sent.
#[derive(Debug, Clone, Default)]
pub struct StatusTrack {
    /// Last acknowledged status; None while only the creation is acknowledged (pending).
    acked: Option<Status>,
    /// Statuses of updates that failed or timed out: they may still have been applied.
    uncertain: StatusSet,
    /// Statuses that overlapping updates may have left, in either commit order; forgotten
    /// once an update sent with nothing else in flight is acknowledged.
    overlapping: StatusSet,
    /// Statuses of updates in flight now (as many as are in flight: bounded by the load).
    in_flight: Vec<Status>,
    /// Updates sent so far; tells whether another was sent while one was in flight.
    sent: u64,
}

/// One status update on its way, as the track saw it leave.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    status: Status,
    /// Nothing else was in flight when it was sent.
    alone: bool,
    /// Its number among the track's updates.
    seq: u64,
}

impl StatusTrack {
    /// Notes an update being sent.
    fn send(&mut self, status: Status) -> Ticket {
        let alone = self.in_flight.is_empty();
        let seq = self.sent;
        self.sent += 1;
        if !alone {
            // Updates in flight together may commit in any order.
            self.overlapping.extend(self.in_flight.iter().copied());
            self.overlapping.insert(status);
            self.overlapping.extend(self.acked);
        }
        self.in_flight.push(status);
        Ticket { status, alone, seq }
    }

    fn complete(&mut self, ticket: Ticket, ok: bool) {
        let status = ticket.status;
        if let Some(i) = self.in_flight.iter().position(|s| *s == status) {
            self.in_flight.swap_remove(i);
        }
        if ok {
            self.acked = Some(status);
            // Sent after every earlier update had answered, and none was sent while it was
            // in flight: it committed last, so the order is known again.
            if ticket.alone && self.sent == ticket.seq + 1 {
                self.overlapping.clear();
            }
        } else {
            self.uncertain.insert(status);
        }
    }

    /// Whether a stored status is one the acknowledged updates allow.
    pub fn accepts(&self, stored: &str) -> bool {
        self.expected().as_str() == stored
            || self.uncertain.contains_str(stored)
            || self.overlapping.contains_str(stored)
    }

    pub fn expected(&self) -> Status {
        self.acked.unwrap_or(Status::Pending)
    }

    fn touched(&self) -> bool {
        self.acked.is_some() || !self.uncertain.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Owned {
    id: ExecId,
    status: StatusTrack,
    acked_steps: i64,
    acked_artifacts: u64,
    /// An artifact upload failed: it may or may not be stored.
    artifacts_uncertain: bool,
}

impl Owned {
    /// Acknowledged steps as a count (a negative index from the service counts none).
    fn steps(&self) -> u64 {
        u64::try_from(self.acked_steps).unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct StepRec {
    slot: usize,
    index: i64,
    status: StatusTrack,
    acked_lines: u64,
    /// A log append failed: its lines may or may not be stored.
    lines_uncertain: bool,
}

/// What an in-flight call will change in the book when it completes.
#[derive(Debug, Clone, Copy)]
pub enum Intent {
    None,
    Create,
    Status { slot: usize, ticket: Ticket },
    Step { slot: usize },
    StepStatus { step: usize, ticket: Ticket },
    Logs { step: usize, lines: u64 },
    Artifact { slot: usize },
}

/// A read-back the integrity check makes beyond the execution list.
#[derive(Debug, Clone)]
pub enum Check {
    /// The step's log holds `lines` lines (at least that many when `at_least`).
    Logs {
        id: ExecId,
        index: i64,
        lines: u64,
        at_least: bool,
    },
    /// The execution holds `count` artifacts (at least that many when `at_least`).
    Artifacts {
        id: ExecId,
        count: u64,
        at_least: bool,
    },
    /// The steps' stored statuses are ones their acknowledged updates allow.
    StepStatuses {
        id: ExecId,
        steps: Vec<(i64, StatusTrack)>,
    },
    /// The execution holds at least `count` steps; for services whose list does not show
    /// step counts.
    StepCount { id: ExecId, count: u64 },
}

impl Check {
    /// Acknowledged writes this check covers.
    pub fn writes(&self) -> u64 {
        match self {
            Check::Logs { lines, .. } => *lines,
            Check::Artifacts { count, .. } => *count,
            Check::StepStatuses { steps, .. } => steps.len() as u64,
            Check::StepCount { count, .. } => *count,
        }
    }
}

/// What [`Book::verify`] found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Acknowledged writes checked.
    pub checked: u64,
    /// Of those, missing or different.
    pub lost: u64,
    /// The first few discrepancies.
    pub notes: Vec<String>,
    /// Step counts to read from the executions themselves (the rows did not show them).
    pub step_counts: Vec<Check>,
}

/// Per-thread record of owned executions and steps.
#[derive(Debug, Default)]
pub struct Book {
    owned: Vec<Owned>,
    steps: Vec<StepRec>,
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

    /// Executions created and acknowledged so far.
    pub fn executions(&self) -> usize {
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
        let id = self.owned[slot].id.clone();
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
        // Past the fall-backs above, every kind that names an execution (or a step) has one.
        let slot = if self.owned.is_empty() {
            0
        } else {
            rng.below(self.owned.len())
        };
        let step = if self.steps.is_empty() {
            0
        } else {
            rng.below(self.steps.len())
        };
        let id = || self.owned[slot].id.clone();
        let step_target = || {
            let s = &self.steps[step];
            (self.owned[s.slot].id.clone(), s.index)
        };
        match kind {
            OpKind::Health => (Call::Health, Intent::None),
            OpKind::CreateExecution => self.create_call(),
            OpKind::GetExecution => (Call::Get { id: id() }, Intent::None),
            OpKind::ListExecutions => (
                Call::List {
                    limit: params.limit.unwrap_or(10),
                    offset: 0,
                },
                Intent::None,
            ),
            OpKind::UpdateStatus => {
                let id = id();
                let status = STATUSES[rng.below(STATUSES.len())];
                let ticket = self.owned[slot].status.send(status);
                (
                    Call::UpdateStatus { id, status },
                    Intent::Status { slot, ticket },
                )
            }
            OpKind::AddStep => self.step_call(slot),
            OpKind::UpdateStep => {
                let (id, index) = step_target();
                let status = STATUSES[rng.below(STATUSES.len())];
                let ticket = self.steps[step].status.send(status);
                (
                    Call::UpdateStep { id, index, status },
                    Intent::StepStatus { step, ticket },
                )
            }
            OpKind::AppendLogs => {
                let (id, index) = step_target();
                let n = params.lines.unwrap_or(3);
                let lines = (0..n)
                    .map(|i| format!("log line {i} of step {index}: the quick brown fox"))
                    .collect();
                (
                    Call::AppendLogs { id, index, lines },
                    Intent::Logs {
                        step,
                        lines: u64::from(n),
                    },
                )
            }
            OpKind::GetLogs => {
                let (id, index) = step_target();
                (Call::GetLogs { id, index }, Intent::None)
            }
            OpKind::AddArtifact => (
                Call::AddArtifact {
                    id: id(),
                    name: "report.txt".to_string(),
                    content: "artifact content ".repeat(8),
                },
                Intent::Artifact { slot },
            ),
            OpKind::ListArtifacts => (Call::ListArtifacts { id: id() }, Intent::None),
        }
    }

    /// Applies a completed call's outcome.
    pub fn complete(&mut self, intent: Intent, result: &Result<Reply, CallError>) {
        let ok = result.is_ok();
        match (intent, result) {
            (Intent::Create, Ok(Reply::Created { id })) => self.owned.push(Owned {
                id: id.clone(),
                status: StatusTrack::default(),
                acked_steps: 0,
                acked_artifacts: 0,
                artifacts_uncertain: false,
            }),
            (Intent::Status { slot, ticket }, _) => self.owned[slot].status.complete(ticket, ok),
            (Intent::Step { slot }, Ok(Reply::StepAdded { index })) => {
                let owned = &mut self.owned[slot];
                // The index is the service's: a hostile one may say i64::MAX.
                owned.acked_steps = owned.acked_steps.max(index.saturating_add(1));
                self.steps.push(StepRec {
                    slot,
                    index: *index,
                    status: StatusTrack::default(),
                    acked_lines: 0,
                    lines_uncertain: false,
                });
            }
            (Intent::StepStatus { step, ticket }, _) => {
                self.steps[step].status.complete(ticket, ok)
            }
            (Intent::Logs { step, lines }, _) => {
                let s = &mut self.steps[step];
                if ok {
                    s.acked_lines += lines;
                } else {
                    s.lines_uncertain = true;
                }
            }
            (Intent::Artifact { slot }, _) => {
                let o = &mut self.owned[slot];
                if ok {
                    o.acked_artifacts += 1;
                } else {
                    o.artifacts_uncertain = true;
                }
            }
            _ => {}
        }
    }

    /// Ids of the executions this book created and saw acknowledged.
    pub fn ids(&self) -> impl Iterator<Item = &ExecId> {
        self.owned.iter().map(|o| &o.id)
    }

    /// Acknowledged creates (each with its last acknowledged status and step count).
    pub fn acknowledged(&self) -> u64 {
        self.owned.len() as u64
    }

    /// Compares acknowledged creates, status updates and step counts against the stored
    /// executions. Step counts the rows do not show become checks to read back.
    pub fn verify(&self, stored: &HashMap<ExecId, ExecutionRow>) -> Verified {
        let mut lost = 0;
        let mut checked = 0;
        let mut notes = Vec::new();
        let mut step_counts = Vec::new();
        let note = |msg: String, notes: &mut Vec<String>| {
            if notes.len() < 10 {
                notes.push(msg);
            }
        };
        for o in &self.owned {
            checked += 1 + u64::from(o.status.touched());
            let Some(row) = stored.get(&o.id) else {
                checked += o.steps();
                lost += 1;
                note(
                    format!("execution {} acknowledged but not stored", o.id),
                    &mut notes,
                );
                continue;
            };
            if !o.status.accepts(&row.status) {
                lost += 1;
                note(
                    format!(
                        "execution {}: status {:?} acknowledged, {:?} stored",
                        o.id,
                        o.status.expected().as_str(),
                        row.status
                    ),
                    &mut notes,
                );
            }
            match row.step_count {
                Some(stored_steps) => {
                    checked += o.steps();
                    if stored_steps < o.acked_steps {
                        lost += 1;
                        note(
                            format!(
                                "execution {}: {} steps acknowledged, {stored_steps} stored",
                                o.id, o.acked_steps
                            ),
                            &mut notes,
                        );
                    }
                }
                None if o.acked_steps > 0 => step_counts.push(Check::StepCount {
                    id: o.id.clone(),
                    count: o.steps(),
                }),
                None => {}
            }
        }
        Verified {
            checked,
            lost,
            notes,
            step_counts,
        }
    }

    /// The read-backs needed for log lines, artifacts and step statuses.
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for s in &self.steps {
            if s.acked_lines > 0 || s.lines_uncertain {
                checks.push(Check::Logs {
                    id: self.owned[s.slot].id.clone(),
                    index: s.index,
                    lines: s.acked_lines,
                    at_least: s.lines_uncertain,
                });
            }
        }
        let mut step_statuses: HashMap<usize, Vec<(i64, StatusTrack)>> = HashMap::new();
        for s in self.steps.iter().filter(|s| s.status.touched()) {
            step_statuses
                .entry(s.slot)
                .or_default()
                .push((s.index, s.status.clone()));
        }
        for (slot, steps) in step_statuses {
            checks.push(Check::StepStatuses {
                id: self.owned[slot].id.clone(),
                steps,
            });
        }
        for o in &self.owned {
            if o.acked_artifacts > 0 || o.artifacts_uncertain {
                checks.push(Check::Artifacts {
                    id: o.id.clone(),
                    count: o.acked_artifacts,
                    at_least: o.artifacts_uncertain,
                });
            }
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UUID-like hex id, as a Python service of this shape hands out.
    fn uid(n: u32) -> ExecId {
        ExecId::from(format!("{n:08x}e5b84bfe91e62a90b2e05f94").as_str())
    }

    fn row(id: &ExecId, status: &str, steps: Option<i64>) -> (ExecId, ExecutionRow) {
        (
            id.clone(),
            ExecutionRow {
                id: id.clone(),
                status: status.into(),
                step_count: steps,
            },
        )
    }

    fn created(book: &mut Book, id: ExecId) {
        let (_, intent) = book.create_call();
        book.complete(intent, &Ok(Reply::Created { id }));
    }

    #[test]
    fn verify_finds_missing_executions_wrong_status_and_missing_steps() {
        let mut book = Book::new("t".into());
        let mut rng = Rng::new(1);
        // Ids in no particular order: nothing may depend on it.
        let ids = [uid(0xfeed), uid(3), uid(0xa11)];
        for id in &ids {
            created(&mut book, id.clone());
        }
        // Execution slot 0 gets an acknowledged status update and a step.
        let (call, intent) = book.prepare(OpKind::UpdateStatus, &OpParams::default(), &mut rng);
        let Call::UpdateStatus { id, status } = call else {
            panic!("{call:?}")
        };
        book.complete(intent, &Ok(Reply::Done));
        let (_, intent) = book.step_call(0);
        book.complete(intent, &Ok(Reply::StepAdded { index: 0 }));
        let first = book.owned[0].id.clone();

        let good: HashMap<_, _> = ids
            .iter()
            .map(|i| {
                let steps = Some(if *i == first { 1 } else { 0 });
                if *i == id {
                    row(i, status.as_str(), steps)
                } else {
                    row(i, "pending", steps)
                }
            })
            .collect();
        let v = book.verify(&good);
        assert_eq!(v.lost, 0, "{:?}", v.notes);
        assert_eq!(v.checked, 3 + 1 + 1);
        assert!(v.step_counts.is_empty());

        let mut missing = good.clone();
        missing.remove(&ids[1]);
        assert_eq!(book.verify(&missing).lost, 1);

        let mut stale = good.clone();
        stale.get_mut(&id).unwrap().status = "pending".into();
        assert_eq!(book.verify(&stale).lost, 1);

        let mut no_step = good.clone();
        no_step.get_mut(&first).unwrap().step_count = Some(0);
        assert_eq!(book.verify(&no_step).lost, 1);

        // A list without step counts: they are left to a read-back of the execution.
        let mut unshown = good;
        for r in unshown.values_mut() {
            r.step_count = None;
        }
        let v = book.verify(&unshown);
        assert_eq!(v.lost, 0);
        assert_eq!(v.checked, 3 + 1);
        assert_eq!(v.step_counts.len(), 1, "{:?}", v.step_counts);
        assert!(matches!(
            &v.step_counts[0],
            Check::StepCount { id, count: 1 } if *id == first
        ));
        assert_eq!(v.step_counts[0].writes(), 1);
    }

    #[test]
    fn overlapping_updates_accept_either_commit_order_until_a_lone_update_settles_it() {
        let mut book = Book::new("t".into());
        let five = uid(5);
        created(&mut book, five.clone());
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
            let rows: HashMap<_, _> = [row(&five, stored.as_str(), Some(0))].into();
            assert_eq!(
                book.verify(&rows).lost,
                0,
                "{stored:?} after {s1:?}, {s2:?}"
            );
        }
        // Answers in the other order: U2's first, then U1's (which left alone but had U2
        // sent behind it) must not be taken as the last commit.
        let mut other = Book::new("t".into());
        let six = uid(6);
        created(&mut other, six.clone());
        let (d1, j1) = other.prepare(OpKind::UpdateStatus, &p, &mut rng);
        let (d2, j2) = other.prepare(OpKind::UpdateStatus, &p, &mut rng);
        other.complete(j2, &Ok(Reply::Done));
        other.complete(j1, &Ok(Reply::Done));
        for stored in [status(&d1), status(&d2)] {
            let rows: HashMap<_, _> = [row(&six, stored.as_str(), Some(0))].into();
            assert_eq!(other.verify(&rows).lost, 0, "{stored:?}");
        }
        // A later update sent alone decides the final state again.
        let (c3, i3) = book.prepare(OpKind::UpdateStatus, &p, &mut rng);
        book.complete(i3, &Ok(Reply::Done));
        let s3 = status(&c3);
        for stored in [s1, s2] {
            if stored != s3 {
                let rows: HashMap<_, _> = [row(&five, stored.as_str(), Some(0))].into();
                assert_eq!(
                    book.verify(&rows).lost,
                    1,
                    "{stored:?} must not pass after {s3:?}"
                );
            }
        }
    }

    #[test]
    fn checks_cover_acknowledged_log_lines_artifacts_and_step_statuses() {
        let mut book = Book::new("t".into());
        let mut rng = Rng::new(2);
        let three = uid(3);
        created(&mut book, three.clone());
        let (_, intent) = book.step_call(0);
        book.complete(intent, &Ok(Reply::StepAdded { index: 0 }));
        let p = OpParams {
            lines: Some(4),
            ..OpParams::default()
        };
        let (call, logs) = book.prepare(OpKind::AppendLogs, &p, &mut rng);
        assert!(
            matches!(&call, Call::AppendLogs { id, index: 0, .. } if *id == three),
            "{call:?}"
        );
        book.complete(logs, &Ok(Reply::Done));
        let (_, art) = book.prepare(OpKind::AddArtifact, &p, &mut rng);
        book.complete(art, &Ok(Reply::Done));
        let (call, step) = book.prepare(OpKind::UpdateStep, &p, &mut rng);
        book.complete(step, &Ok(Reply::Done));
        let Call::UpdateStep { status, .. } = call else {
            panic!("{call:?}")
        };
        let checks = book.checks();
        assert_eq!(checks.len(), 3, "{checks:?}");
        assert!(checks.iter().any(|c| matches!(
            c,
            Check::Logs {
                id,
                index: 0,
                lines: 4,
                at_least: false
            } if *id == three
        )));
        assert!(checks.iter().any(|c| matches!(
            c,
            Check::Artifacts {
                id,
                count: 1,
                at_least: false
            } if *id == three
        )));
        let steps = checks.iter().find_map(|c| match c {
            Check::StepStatuses { id, steps } if *id == three => Some(steps),
            _ => None,
        });
        let (index, track) = &steps.expect("step statuses checked")[0];
        assert_eq!(*index, 0);
        assert!(track.accepts(status.as_str()));
        assert!(!track.accepts("pending"));
        // A failed append makes the count a lower bound.
        let (_, logs) = book.prepare(OpKind::AppendLogs, &p, &mut rng);
        book.complete(logs, &Err(CallError::Decode("reset".into())));
        assert!(book.checks().iter().any(|c| matches!(
            c,
            Check::Logs {
                lines: 4,
                at_least: true,
                ..
            }
        )));
    }

    #[test]
    fn a_status_track_stays_small_however_many_updates_overlap_or_fail() {
        // Updates always overlapping, a third of them failing: what the track remembers
        // is a set of the five statuses, whatever the number of updates sent.
        let mut track = StatusTrack::default();
        for i in 0..10_000 {
            let a = track.send(STATUSES[i % 4]);
            let b = track.send(STATUSES[(i + 1) % 4]);
            track.complete(a, i % 3 != 0);
            track.complete(b, i % 3 != 1);
        }
        assert!(track.overlapping.len() <= 5, "{}", track.overlapping.len());
        assert!(track.uncertain.len() <= 5, "{}", track.uncertain.len());
        assert!(track.in_flight.is_empty());
        for s in STATUSES {
            assert!(track.accepts(s.as_str()), "{s:?}");
        }
    }

    #[test]
    fn failed_update_makes_either_status_acceptable() {
        let mut book = Book::new("t".into());
        let nine = ExecId::from(9);
        created(&mut book, nine.clone());
        let mut rng = Rng::new(3);
        let (call, intent) = book.prepare(OpKind::UpdateStatus, &OpParams::default(), &mut rng);
        let Call::UpdateStatus { status, .. } = call else {
            panic!()
        };
        book.complete(intent, &Err(CallError::Decode("connection reset".into())));
        for stored in ["pending", status.as_str()] {
            let rows: HashMap<_, _> = [row(&nine, stored, Some(0))].into();
            assert_eq!(book.verify(&rows).lost, 0, "{stored}");
        }
    }
}
