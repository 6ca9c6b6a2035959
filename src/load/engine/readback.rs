//! The integrity read-back: after the load, every acknowledged write is read back and any
//! missing or different one counted as lost.

use super::*;

/// After the load: integrity checks and kind-specific figures.
pub(super) fn finish(
    shared: &Shared,
    outs: &[ThreadOut],
    extra: &mut serde_json::Map<String, serde_json::Value>,
    warnings: &mut Vec<String>,
) -> Option<Integrity> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build runtime");
    let local = tokio::task::LocalSet::new();
    match &shared.config.workload {
        Workload::Mix(ops) => {
            let writes = ops.iter().any(|o| o.spec.is_builtin_write());
            if !writes {
                return None;
            }
            let books: Vec<&Book> = outs.iter().map(|o| &o.book).collect();
            let acknowledged = books.iter().map(|b| b.acknowledged()).sum();
            let checks: Vec<Check> = books.iter().flat_map(|b| b.checks()).collect();
            read_back(shared, acknowledged, warnings, |warnings| {
                local.block_on(&rt, async {
                    let (mut integrity, step_counts) =
                        verify_books(shared, &books, warnings).await?;
                    let mut all = checks;
                    all.extend(step_counts);
                    let more = run_checks(shared, all).await?;
                    integrity.checked += more.checked;
                    integrity.lost_writes += more.lost_writes;
                    integrity.details.extend(more.details);
                    integrity.details.truncate(10);
                    Ok(integrity)
                })
            })
        }
        Workload::Burst { count } => {
            let created: Vec<ExecId> = outs
                .iter()
                .flat_map(|o| o.created.iter().cloned())
                .collect();
            extra.insert("requested".into(), (*count).into());
            extra.insert("created".into(), created.len().into());
            read_back(shared, created.len() as u64, warnings, |warnings| {
                local.block_on(&rt, verify_listed(shared, &created, warnings))
            })
        }
        Workload::Flow(plan) => {
            let flows: Vec<&FlowRecord> = outs.iter().flat_map(|o| o.flows.iter()).collect();
            extra.insert("executions_planned".into(), plan.executions.into());
            extra.insert(
                "executions_completed".into(),
                flows.iter().filter(|f| f.completed).count().into(),
            );
            let mut t = shared.transport();
            read_back(shared, flows.len() as u64, warnings, |warnings| {
                rt.block_on(verify_flows(&mut t, plan, &flows, warnings))
            })
        }
        Workload::PerEndpoint(_) => None,
    }
}

/// Reads back what `executions` executions were acknowledged to hold, with `check`; the
/// progress line shows it meanwhile. A read-back that could not reach the target proves
/// nothing either way: the writes are reported as unverified (a warning, and the run is
/// aborted so it cannot pass), never as lost — the monitor keeps every acknowledged write
/// across a crash.
pub(super) fn read_back(
    shared: &Shared,
    executions: u64,
    warnings: &mut Vec<String>,
    check: impl FnOnce(&mut Vec<String>) -> Result<Integrity, CallError>,
) -> Option<Integrity> {
    set_phase(shared, |p| p.verifying = Some((Instant::now(), executions)));
    match check(warnings) {
        Ok(integrity) => Some(integrity),
        Err(e) => {
            let why = format!(
                "integrity not checked: the acknowledged writes to {executions} executions could \
                 not be read back ({e})"
            );
            warnings.push(why.clone());
            shared.control.abort(why);
            None
        }
    }
}

/// Page size asked of the execution list during read-back (the contract's largest), and the
/// one tried when a service refuses that.
pub(super) const PAGE_LIMIT: u32 = 1000;
pub(super) const SMALL_PAGE_LIMIT: u32 = 100;

/// What the service stores of the executions wanted.
#[derive(Debug, Default)]
pub(super) struct Stored {
    pub(super) rows: HashMap<ExecId, ExecutionRow>,
    /// Found by id but not in the list.
    pub(super) unlisted: u64,
}

/// Reads what the service stores of `wanted`: the execution list page by page until every
/// wanted id has been seen or the list ends, then each id the list did not show on its own.
/// Neither ids nor the list's order are assumed to mean anything (a list sorted by a
/// coarse `created_at` can even shift between pages), so only an answer for the id itself
/// can say an execution is missing.
pub(super) async fn stored_rows(
    shared: &Shared,
    wanted: &HashSet<ExecId>,
) -> Result<Stored, CallError> {
    let mut t = shared.transport();
    let mut stored = Stored::default();
    let mut limit = PAGE_LIMIT;
    let mut offset = 0u64;
    // Every id listed so far: a page with none new means the service ignores `offset`,
    // and paging on would never end.
    let mut listed: HashSet<ExecId> = HashSet::new();
    while stored.rows.len() < wanted.len() {
        let page = match answered(t.page(limit, offset).await)? {
            Ok(page) => page,
            // A service with a smaller cap on `limit` may refuse the contract's largest.
            Err(CallError::Status {
                status: 400 | 422, ..
            }) if limit == PAGE_LIMIT && offset == 0 => {
                limit = SMALL_PAGE_LIMIT;
                continue;
            }
            // A list that cannot be read leaves every id to be looked up on its own.
            Err(_) => break,
        };
        let n = page.executions.len() as u64;
        offset += n;
        let mut new = false;
        for row in page.executions {
            new |= listed.insert(row.id.clone());
            if wanted.contains(&row.id) {
                stored.rows.insert(row.id.clone(), row);
            }
        }
        if !new {
            break;
        }
        let ended = match page.total {
            Some(total) => offset >= total,
            // Without a total, a short page is the last (or the service caps page sizes,
            // and the lookups below make up for it).
            None => n < u64::from(limit),
        };
        if n == 0 || ended {
            break;
        }
    }
    let unseen: Vec<ExecId> = wanted
        .iter()
        .filter(|id| !stored.rows.contains_key(*id))
        .cloned()
        .collect();
    let found = look_up(shared, unseen).await?;
    stored.unlisted = found.len() as u64;
    stored
        .rows
        .extend(found.into_iter().map(|r| (r.id.clone(), r)));
    Ok(stored)
}

/// Reads each execution on its own, a few connections at once; returns those that exist.
pub(super) async fn look_up(
    shared: &Shared,
    ids: Vec<ExecId>,
) -> Result<Vec<ExecutionRow>, CallError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let queue = Rc::new(RefCell::new(ids));
    let tasks: Vec<_> = (0..CHECK_CONNECTIONS)
        .map(|_| {
            let (queue, mut t) = (Rc::clone(&queue), shared.transport());
            tokio::task::spawn_local(async move {
                let mut found = Vec::new();
                loop {
                    let next = queue.borrow_mut().pop();
                    let Some(id) = next else { break };
                    // A 404, or an answer that is no execution, leaves it missing.
                    if let Ok(detail) = answered(t.execution(&id).await)? {
                        found.push(detail.row(id));
                    }
                }
                Ok::<_, CallError>(found)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("read-back task")?);
    }
    Ok(all)
}

pub(super) fn note_unlisted(stored: &Stored, warnings: &mut Vec<String>) {
    if stored.unlisted > 0 {
        warnings.push(format!(
            "{} acknowledged executions were not in GET /api/executions but were found by id \
             (an unstable list order or a capped page size); they count as stored",
            stored.unlisted
        ));
    }
}

/// The executions' rows against every book; step counts the rows do not show come back as
/// checks to read from the executions.
pub(super) async fn verify_books(
    shared: &Shared,
    books: &[&Book],
    warnings: &mut Vec<String>,
) -> Result<(Integrity, Vec<Check>), CallError> {
    let wanted: HashSet<ExecId> = books.iter().flat_map(|b| b.ids()).cloned().collect();
    if wanted.is_empty() {
        return Ok((Integrity::default(), Vec::new()));
    }
    let stored = stored_rows(shared, &wanted).await?;
    note_unlisted(&stored, warnings);
    let mut integrity = Integrity::default();
    let mut step_counts = Vec::new();
    for b in books {
        let v = b.verify(&stored.rows);
        integrity.checked += v.checked;
        integrity.lost_writes += v.lost;
        integrity.details.extend(v.notes);
        step_counts.extend(v.step_counts);
    }
    integrity.details.truncate(10);
    Ok((integrity, step_counts))
}

/// Connections the read-back of log lines, artifacts and step statuses uses at once.
pub(super) const CHECK_CONNECTIONS: usize = 8;

/// Carries out the per-step and per-execution read-backs over a few connections at once.
pub(super) async fn run_checks(
    shared: &Shared,
    checks: Vec<Check>,
) -> Result<Integrity, CallError> {
    let queue = Rc::new(RefCell::new(checks));
    let tasks: Vec<_> = (0..CHECK_CONNECTIONS)
        .map(|_| {
            let (queue, mut t) = (Rc::clone(&queue), shared.transport());
            tokio::task::spawn_local(async move {
                let mut integrity = Integrity::default();
                loop {
                    let next = queue.borrow_mut().pop();
                    let Some(check) = next else { break };
                    integrity.checked += check.writes();
                    if let Some(problem) = run_check(&mut t, &check).await? {
                        integrity.lost_writes += 1;
                        if integrity.details.len() < 10 {
                            integrity.details.push(problem);
                        }
                    }
                }
                Ok::<_, CallError>(integrity)
            })
        })
        .collect();
    let mut all = Integrity::default();
    for task in tasks {
        let part = task.await.expect("read-back task")?;
        all.checked += part.checked;
        all.lost_writes += part.lost_writes;
        all.details.extend(part.details);
    }
    Ok(all)
}

/// An answer that arrived (404, wrong content) is evidence; no answer is not.
pub(super) fn answered<T>(r: Result<T, CallError>) -> Result<Result<T, CallError>, CallError> {
    match r {
        Err(e @ (CallError::Client(_) | CallError::Stopped)) => Err(e),
        other => Ok(other),
    }
}

/// One read-back; `Some(description)` when the stored data falls short of what was
/// acknowledged. Connection failures are errors (unverified), never losses.
pub(super) async fn run_check(
    t: &mut RunTransport,
    check: &Check,
) -> Result<Option<String>, CallError> {
    let short = |stored: u64, wanted: u64, at_least: bool| {
        if at_least {
            stored < wanted
        } else {
            stored != wanted
        }
    };
    Ok(match check {
        Check::Logs {
            id,
            index,
            lines,
            at_least,
        } => match answered(t.logs(id, *index).await)? {
            Ok(read) if !short(read.len() as u64, *lines, *at_least) => None,
            Ok(read) => Some(format!(
                "execution {id} step {index}: {lines} log lines acknowledged, {} stored",
                read.len()
            )),
            Err(e) => Some(format!("execution {id} step {index} logs: {e}")),
        },
        Check::Artifacts {
            id,
            count,
            at_least,
        } => match answered(t.artifacts(id).await)? {
            Ok(read) if !short(read.len() as u64, *count, *at_least) => None,
            Ok(read) => Some(format!(
                "execution {id}: {count} artifacts acknowledged, {} stored",
                read.len()
            )),
            Err(e) => Some(format!("execution {id} artifacts: {e}")),
        },
        Check::StepStatuses { id, steps } => match answered(t.execution(id).await)? {
            Ok(detail) => steps.iter().find_map(|(index, track)| {
                let stored = detail.steps.iter().find(|s| s.index == *index);
                match stored {
                    Some(s) if track.accepts(&s.status) => None,
                    Some(s) => Some(format!(
                        "execution {id} step {index}: status {:?} acknowledged, {:?} stored",
                        track.expected().as_str(),
                        s.status
                    )),
                    None => Some(format!("execution {id} step {index} missing")),
                }
            }),
            Err(e) => Some(format!("execution {id}: {e}")),
        },
        Check::StepCount { id, count } => match answered(t.execution(id).await)? {
            Ok(detail) if detail.steps.len() as u64 >= *count => None,
            Ok(detail) => Some(format!(
                "execution {id}: {count} steps acknowledged, {} stored",
                detail.steps.len()
            )),
            Err(e) => Some(format!("execution {id}: {e}")),
        },
    })
}

pub(super) async fn verify_listed(
    shared: &Shared,
    created: &[ExecId],
    warnings: &mut Vec<String>,
) -> Result<Integrity, CallError> {
    let wanted: HashSet<ExecId> = created.iter().cloned().collect();
    if wanted.is_empty() {
        return Ok(Integrity::default());
    }
    let stored = stored_rows(shared, &wanted).await?;
    note_unlisted(&stored, warnings);
    let missing: Vec<&ExecId> = created
        .iter()
        .filter(|id| !stored.rows.contains_key(*id))
        .collect();
    Ok(Integrity {
        checked: created.len() as u64,
        lost_writes: missing.len() as u64,
        details: missing
            .iter()
            .take(10)
            .map(|id| format!("execution {id} acknowledged but not stored"))
            .collect(),
    })
}

pub(super) async fn verify_flows(
    t: &mut RunTransport,
    plan: &FlowPlan,
    flows: &[&FlowRecord],
    warnings: &mut Vec<String>,
) -> Result<Integrity, CallError> {
    let mut integrity = Integrity::default();
    let lost = |what: String, integrity: &mut Integrity| {
        integrity.lost_writes += 1;
        if integrity.details.len() < 10 {
            integrity.details.push(what);
        }
    };
    for f in flows {
        integrity.checked += 1;
        let detail = match answered(t.execution(&f.id).await)? {
            Ok(d) => d,
            Err(e) => {
                lost(format!("execution {}: {e}", f.id), &mut integrity);
                continue;
            }
        };
        if f.completed && detail.status != "completed" {
            lost(
                format!(
                    "execution {}: status {} instead of completed",
                    f.id, detail.status
                ),
                &mut integrity,
            );
        }
        for step in 0..f.steps {
            let index = step as usize;
            let acknowledged = !f.logs_unacknowledged.contains(&step);
            let lines = flow_log_lines(&f.id, step, plan.log_lines);
            let finished = !f.steps_unfinished.contains(&step);
            integrity.checked +=
                1 + u64::from(finished) + if acknowledged { lines.len() as u64 } else { 0 };
            match detail.steps.get(index) {
                Some(s) if s.name == flow_step_name(step) => {
                    if finished && s.status != "completed" {
                        lost(
                            format!(
                                "execution {} step {index}: status completed acknowledged, {} \
                                 stored",
                                f.id, s.status
                            ),
                            &mut integrity,
                        );
                    }
                }
                _ => {
                    lost(
                        format!("execution {}: step {index} missing", f.id),
                        &mut integrity,
                    );
                    continue;
                }
            }
            match answered(t.logs(&f.id, i64::from(step)).await)? {
                Ok(read) if read == lines => {}
                // An append that failed may or may not have been applied.
                Ok(read) if !acknowledged && read.is_empty() => {}
                Ok(read) => lost(
                    format!(
                        "execution {} step {index}: {} log lines stored, {} acknowledged",
                        f.id,
                        read.len(),
                        lines.len()
                    ),
                    &mut integrity,
                ),
                Err(e) => lost(
                    format!("execution {} step {index} logs: {e}", f.id),
                    &mut integrity,
                ),
            }
        }
        let artifacts: Vec<u32> = (0..f.artifacts)
            .filter(|a| !f.artifacts_unacknowledged.contains(a))
            .collect();
        integrity.checked += artifacts.len() as u64;
        match answered(t.artifacts(&f.id).await)? {
            Ok(read) => {
                for a in artifacts {
                    let (name, content) = flow_artifact(&f.id, a);
                    // A list that leaves contents out is matched by name.
                    let stored = read.iter().any(|a| {
                        a.name == name && a.content.as_ref().is_none_or(|c| *c == content)
                    });
                    if !stored {
                        lost(
                            format!("execution {}: artifact {name} missing", f.id),
                            &mut integrity,
                        );
                    }
                }
            }
            Err(e) => lost(format!("execution {} artifacts: {e}", f.id), &mut integrity),
        }
    }
    if integrity.lost_writes > 0 {
        warnings.push(format!(
            "{} acknowledged writes were not read back",
            integrity.lost_writes
        ));
    }
    Ok(integrity)
}
