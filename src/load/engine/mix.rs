//! The mix and per-endpoint executors: weighted picks (or one operation per phase) under the
//! closed model (workers) or the open model (a pacer's schedule), after seeding executions.

use super::*;

/// Cumulative weights for picking operations.
pub(super) struct Picker {
    pub(super) cumulative: Vec<u64>,
}

impl Picker {
    pub(super) fn new(ops: &[Operation]) -> Picker {
        let mut total = 0;
        Picker {
            cumulative: ops
                .iter()
                .map(|o| {
                    total += u64::from(o.weight.max(1));
                    total
                })
                .collect(),
        }
    }

    pub(super) fn pick(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("at least one operation");
        let x = rng.next_u64() % total;
        self.cumulative.partition_point(|&c| c <= x)
    }
}

pub(super) fn prepare(op: &Operation, book: &mut Book, rng: &mut Rng) -> (Call, Intent) {
    match &op.spec {
        OperationSpec::BuiltIn { kind, params } => book.prepare(*kind, params, rng),
        OperationSpec::Request(request) => (Call::Raw(Arc::clone(request)), Intent::None),
    }
}

pub(super) fn needs_executions(ops: &[Operation]) -> bool {
    ops.iter()
        .any(|o| matches!(&o.spec, OperationSpec::BuiltIn { kind, .. } if kind.needs_execution()))
}

/// Whether any operation uses the StepFlow executions API (so seeding has a purpose).
pub(super) fn uses_executions(ops: &[Operation]) -> bool {
    ops.iter()
        .any(|o| matches!(&o.spec, OperationSpec::BuiltIn { kind, .. } if *kind != OpKind::Health))
}

/// Creates this thread's share of seed executions (each with one step) before measuring,
/// so reads and updates have targets from the first request. Scenarios of plain requests
/// (and health checks) seed nothing: the target need not be a StepFlow service.
pub(super) async fn seed(
    i: usize,
    threads: usize,
    shared: &Shared,
    book: &mut Book,
    ops: &[Operation],
) {
    if !uses_executions(ops) {
        return;
    }
    let wanted = share(u64::from(shared.config.seed), threads, i).max(if needs_executions(ops) {
        2
    } else {
        0
    });
    if wanted == 0 {
        return;
    }
    let mut t = shared.transport();
    for n in 0..wanted {
        if shared.control.stopped() {
            return;
        }
        let (call, intent) = book.create_call();
        let r = t.call(&call).await;
        shared.control.note(&r);
        if matches!(r, Err(CallError::Stopped)) {
            return;
        }
        if let Err(e) = &r {
            let request = shared.config.transport.describe("POST", "/api/executions");
            shared.control.abort(format!(
                "set-up could not create an execution: {request} answered {e}"
            ));
            return;
        }
        book.complete(intent, &r);
        // One step on the first executions is enough for step operations to start from.
        if n < 8 {
            let (call, intent) = book.step_call(book.executions() - 1);
            let r = t.call(&call).await;
            book.complete(intent, &r);
        }
    }
}

/// Which operation each request of a phase performs.
#[derive(Clone)]
pub(super) enum Choice {
    /// Picked at random by weight (a mix).
    Weighted(Rc<Picker>),
    /// Always this one (a per-endpoint phase).
    Only(usize),
}

impl Choice {
    pub(super) fn pick(&self, rng: &mut Rng) -> usize {
        match self {
            Choice::Weighted(p) => p.pick(rng),
            Choice::Only(op) => *op,
        }
    }
}

/// One phase on this thread: its timing and where its samples go.
pub(super) struct PhaseCtx {
    pub(super) ops: Rc<Vec<Operation>>,
    pub(super) choice: Choice,
    pub(super) book: Rc<RefCell<Book>>,
    pub(super) rec: Rc<RefCell<Rec>>,
    /// When load starts (warm-up included).
    pub(super) start: Instant,
    pub(super) measure_start: Instant,
    /// None in count mode: the shared request budget ends the phase.
    pub(super) end: Option<Instant>,
}

impl PhaseCtx {
    pub(super) fn new(
        shared: &Shared,
        ops: &Rc<Vec<Operation>>,
        choice: Choice,
        book: &Rc<RefCell<Book>>,
        start: Instant,
    ) -> PhaseCtx {
        let measure_start = later(start, shared.config.warmup);
        PhaseCtx {
            ops: Rc::clone(ops),
            choice,
            book: Rc::clone(book),
            rec: Rc::new(RefCell::new(
                Rec::new(ops.len(), measure_start, Arc::clone(&shared.control))
                    .with_shape(shared.config.shape.as_ref(), start),
            )),
            start,
            measure_start,
            end: match shared.config.length {
                Length::Duration(d) => Some(later(measure_start, d)),
                Length::Requests(_) => None,
            },
        }
    }

    /// Carries out one request and records it; `intended` is when it was due.
    pub(super) async fn request(
        &self,
        shared: &Shared,
        t: &mut RunTransport,
        op: usize,
        call: Call,
        intent: Intent,
        intended: Option<Instant>,
    ) {
        let sent = Instant::now();
        let live = &shared.control.live;
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        let r = t.call(&call).await;
        live.in_flight.fetch_sub(1, Ordering::Relaxed);
        let done = Instant::now();
        shared.control.note(&r);
        self.book.borrow_mut().complete(intent, &r);
        self.rec
            .borrow_mut()
            .record(op, intended.unwrap_or(sent), sent, done, &r);
    }
}

/// Runs one phase under the configured load model; returns how far the open model's
/// sends fell behind their schedule at worst.
pub(super) async fn drive(
    i: usize,
    threads: usize,
    shared: &Arc<Shared>,
    ctx: &Rc<PhaseCtx>,
) -> Duration {
    tokio::time::sleep_until(ctx.start.into()).await;
    match shared.config.load {
        Load::Closed { concurrency } => {
            let workers = share(u64::from(concurrency), threads, i);
            let tasks: Vec<_> = (0..workers)
                .map(|w| {
                    let (shared, ctx) = (Arc::clone(shared), Rc::clone(ctx));
                    tokio::task::spawn_local(async move {
                        let mut t = shared.transport();
                        let mut rng = Rng::new((i as u64) << 32 | w);
                        // Workers are numbered across threads (0, 1, ... on threads 0, 1,
                        // ...), so that a shape's level spreads over every thread.
                        let k = (w * threads as u64 + i as u64) as f64;
                        let shape = shared.config.shape.clone();
                        let active = &shared.control.live.active_workers;
                        let mut running = false;
                        loop {
                            let now = Instant::now();
                            if shared.control.stopped() || ctx.end.is_some_and(|e| now >= e) {
                                break;
                            }
                            if let Some(shape) = &shape {
                                // Worker k runs while the planned level is above k; a retired
                                // worker finishes its request, then waits until wanted again.
                                let t = now.saturating_duration_since(ctx.start);
                                if shape.level_at(t) <= k {
                                    if running {
                                        running = false;
                                        active.fetch_sub(1, Ordering::Relaxed);
                                    }
                                    let Some(at) = shape.next_above(k, t) else {
                                        break;
                                    };
                                    let at = later(ctx.start, at);
                                    if ctx.end.is_some_and(|e| at >= e) {
                                        break;
                                    }
                                    tokio::select! {
                                        _ = tokio::time::sleep_until(at.into()) => {}
                                        _ = shared.control.until_stopped() => break,
                                    }
                                    continue;
                                }
                            }
                            if !running {
                                running = true;
                                active.fetch_add(1, Ordering::Relaxed);
                            }
                            // Count mode counts measured requests only.
                            if now >= ctx.measure_start && !shared.take_request() {
                                break;
                            }
                            let op = ctx.choice.pick(&mut rng);
                            let (call, intent) =
                                prepare(&ctx.ops[op], &mut ctx.book.borrow_mut(), &mut rng);
                            ctx.request(&shared, &mut t, op, call, intent, None).await;
                        }
                        if running {
                            active.fetch_sub(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
            Duration::ZERO
        }
        Load::Open {
            rate_per_s,
            max_in_flight,
        } => {
            let (pacer, t0): (Arc<dyn Pacer>, Instant) = match &shared.config.shape {
                // Thread i sends every `threads`-th request of the shape's schedule.
                Some(shape) => (
                    Arc::new(Strided {
                        inner: StagedPacer {
                            shape: Shape::clone(shape),
                        },
                        stride: threads as u64,
                        offset: i as u64,
                    }),
                    ctx.start,
                ),
                None => {
                    // Thread i's schedule is shifted by i requests, so that together the
                    // threads send evenly spaced requests rather than `threads` at once.
                    let shift =
                        Duration::try_from_secs_f64(i as f64 / rate_per_s).unwrap_or_default();
                    (
                        Arc::new(ConstantPacer {
                            rate_per_s: rate_per_s / threads as f64,
                        }),
                        later(ctx.start, shift),
                    )
                }
            };
            let cap = share(u64::from(max_in_flight), threads, i).max(1) as usize;
            let slots = Rc::new(tokio::sync::Semaphore::new(cap));
            // Requests due and waiting for a slot are tasks too. At most `cap` of them wait:
            // past that the dispatcher waits (its send clock with it), so that a target
            // that stops answering costs the generator what it has in
            // flight, not a task per request scheduled. The schedule does not move: a
            // request sent late counts its latency from when it was due.
            let queue = Arc::new(tokio::sync::Semaphore::new(cap.saturating_mul(2)));
            // Requests due before this instant were held back by a full queue: their
            // lateness is the target's, not the generator's.
            let mut backlog_until: Option<Instant> = None;
            let pool: Rc<RefCell<Vec<RunTransport>>> = Rc::new(RefCell::new(Vec::new()));
            let mut rng = Rng::new(i as u64 ^ 0xA5A5);
            let mut max_lag = Duration::ZERO;
            let clock = match SendClock::new() {
                Ok(clock) => clock,
                Err(e) => {
                    shared
                        .control
                        .abort(format!("cannot create the send clock (a timerfd): {e}"));
                    return Duration::ZERO;
                }
            };
            let mut next = 0u64;
            // Requests sent since the dispatcher last let the others run.
            let mut burst = 0u32;
            // Spawned requests, joined before the recorders are taken back: the semaphore
            // alone cannot wait for a task spawned but not yet polled.
            let mut in_flight = tokio::task::JoinSet::new();
            loop {
                if shared.control.stopped() {
                    break;
                }
                // The next request when it is due. One due after the phase ends is never
                // sent: stop now rather than wait for it (at a low rate, a thread's first
                // request may be due long after the window). Waits are at most 50 ms so that
                // a stop is noticed promptly.
                let n = match pacer.pace(t0.elapsed(), next) {
                    Pace::Stop => break,
                    Pace::Wait(d) if ctx.end.is_some_and(|e| Instant::now() + d >= e) => break,
                    Pace::Wait(d) => {
                        burst = 0;
                        if let Err(e) = clock.sleep(d.min(Duration::from_millis(50))).await {
                            shared.control.abort(format!("the send clock failed: {e}"));
                            break;
                        }
                        continue;
                    }
                    Pace::SendNow => {
                        let due = t0.checked_add(pacer.intended_send_time(next));
                        if due.is_none_or(|due| ctx.end.is_some_and(|e| due >= e)) {
                            break;
                        }
                        next += 1;
                        next - 1
                    }
                };
                // Behind schedule, many requests are due at once: let the ones spawned run
                // now and then rather than spawn them all first.
                burst += 1;
                if burst % 32 == 0 {
                    tokio::task::yield_now().await;
                }
                // A schedule past what an Instant holds has no request due in this run.
                let Some(intended) = t0.checked_add(pacer.intended_send_time(n)) else {
                    break;
                };
                if intended >= ctx.measure_start && !shared.take_request() {
                    break;
                }
                let ticket = match Arc::clone(&queue).try_acquire_owned() {
                    Ok(ticket) => ticket,
                    Err(_) => {
                        let ticket = Arc::clone(&queue)
                            .acquire_owned()
                            .await
                            .expect("semaphore open");
                        backlog_until = Some(Instant::now());
                        ticket
                    }
                };
                if backlog_until.is_none_or(|b| intended >= b) {
                    max_lag = max_lag.max(Instant::now().saturating_duration_since(intended));
                }
                let op = ctx.choice.pick(&mut rng);
                let (call, intent) = prepare(&ctx.ops[op], &mut ctx.book.borrow_mut(), &mut rng);
                let (shared, ctx, slots, pool) = (
                    Arc::clone(shared),
                    Rc::clone(ctx),
                    Rc::clone(&slots),
                    Rc::clone(&pool),
                );
                while in_flight.try_join_next().is_some() {}
                in_flight.spawn_local(async move {
                    let _ticket = ticket;
                    // Waiting for a free slot is part of the latency: it is measured from
                    // the intended send time.
                    let _permit = slots.acquire().await.expect("semaphore open");
                    let popped = pool.borrow_mut().pop();
                    let mut t = popped.unwrap_or_else(|| shared.transport());
                    ctx.request(&shared, &mut t, op, call, intent, Some(intended))
                        .await;
                    pool.borrow_mut().push(t);
                });
            }
            // Wait for everything in flight.
            while in_flight.join_next().await.is_some() {}
            max_lag
        }
    }
}

/// The phase's recorder once every task of it has finished.
pub(super) fn take_rec(ctx: Rc<PhaseCtx>) -> Rec {
    match Rc::try_unwrap(ctx) {
        Ok(ctx) => take_rc(ctx.rec),
        Err(_) => unreachable!("every task holding the phase has finished"),
    }
}

pub(super) fn set_phase(shared: &Shared, f: impl FnOnce(&mut Phase)) {
    f(&mut shared
        .control
        .phase
        .lock()
        .unwrap_or_else(|e| e.into_inner()));
}

pub(super) async fn run_mix(
    i: usize,
    threads: usize,
    shared: &Arc<Shared>,
    ops: &[Operation],
) -> ThreadOut {
    let mut seeded = Book::new(format!("run-t{i}"));
    seed(i, threads, shared, &mut seeded, ops).await;
    // Stopped during set-up (on any thread): no warm-up, nothing measured.
    let Some(start) = shared.sync_start() else {
        return ThreadOut::nothing(ops.len(), seeded);
    };
    let book = Rc::new(RefCell::new(seeded));
    let ops = Rc::new(ops.to_vec());
    let choice = Choice::Weighted(Rc::new(Picker::new(&ops)));
    let ctx = Rc::new(PhaseCtx::new(shared, &ops, choice, &book, start));
    if i == 0 {
        set_phase(shared, |p| {
            p.warmup_until = Some(ctx.measure_start);
            p.measure_start = Some(ctx.measure_start);
            if let Length::Duration(d) = shared.config.length {
                p.planned = Some(d);
            }
        });
    }
    let max_lag = drive(i, threads, shared, &ctx).await;
    let rec = take_rec(ctx);
    ThreadOut {
        ops: rec.ops,
        error_kinds: rec.error_kinds,
        series: rec.series,
        book: take_rc(book),
        created: Vec::new(),
        flows: Vec::new(),
        max_lag,
        stages: rec.stages,
        lateness: rec.lateness,
        sends: rec.sends,
    }
}

/// Each operation on its own: warm-up, then its measured window; phases are synchronised
/// across threads so only one endpoint is loaded at a time.
pub(super) async fn run_per_endpoint(
    i: usize,
    threads: usize,
    shared: &Arc<Shared>,
    ops: &[Operation],
) -> ThreadOut {
    let cfg = &shared.config;
    let mut seeded = Book::new(format!("api-t{i}"));
    seed(i, threads, shared, &mut seeded, ops).await;
    let book = Rc::new(RefCell::new(seeded));
    let ops = Rc::new(ops.to_vec());
    let mut all = Rec::new(ops.len(), Instant::now(), Arc::clone(&shared.control));
    let mut max_lag = Duration::ZERO;
    for op in 0..ops.len() {
        let Some(start) = shared.sync_start() else {
            break;
        };
        // Every thread has finished the earlier phases (sync_start waits for all), so their
        // windows are final: this phase's seconds in the time series follow them, whole
        // seconds each so that no two phases share one.
        let offset_s: u64 = shared
            .control
            .phase
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .windows
            .iter()
            .map(|w| w.as_secs_f64().ceil() as u64)
            .sum();
        if i == 0 {
            if let Length::Requests(n) = cfg.length {
                shared.remaining.store(n, Ordering::Relaxed);
            }
        }
        // Nobody takes from the budget before it is refilled.
        shared.barrier.wait();
        let ctx = Rc::new(PhaseCtx::new(shared, &ops, Choice::Only(op), &book, start));
        if i == 0 {
            set_phase(shared, |p| {
                p.warmup_until = Some(ctx.measure_start);
                p.measure_start.get_or_insert(ctx.measure_start);
            });
        }
        max_lag = max_lag.max(drive(i, threads, shared, &ctx).await);
        let cut_short = shared.control.abort_reason().is_some();
        let window = match cfg.length {
            Length::Duration(d) => {
                measured_window(cfg.load, d, ctx.measure_start.elapsed(), cut_short)
            }
            Length::Requests(_) => ctx.measure_start.elapsed(),
        };
        let rec = take_rec(ctx);
        all.ops[op].merge(&rec.ops[op]);
        for (msg, n) in rec.error_kinds {
            *all.error_kinds.entry(msg).or_default() += n;
        }
        // Phases are laid end to end in the time series.
        all.series.merge(&rec.series.shifted(offset_s));
        let _ = all.lateness.add(&rec.lateness);
        // The phase lasted until its last thread was done.
        set_phase(shared, |p| {
            if p.windows.len() <= op {
                p.windows.resize(op + 1, Duration::ZERO);
            }
            p.windows[op] = p.windows[op].max(window);
            p.planned = Some(p.windows.iter().sum());
        });
    }
    ThreadOut {
        ops: all.ops,
        error_kinds: all.error_kinds,
        series: all.series,
        book: take_rc(book),
        created: Vec::new(),
        flows: Vec::new(),
        max_lag,
        stages: all.stages,
        lateness: all.lateness,
        sends: all.sends,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::scenario::OpParams;

    #[test]
    fn picker_follows_weights() {
        let op = |name: &str, weight| Operation {
            name: name.into(),
            weight,
            spec: OperationSpec::BuiltIn {
                kind: OpKind::Health,
                params: OpParams::default(),
            },
        };
        let picker = Picker::new(&[op("a", 1), op("b", 3)]);
        let mut rng = Rng::new(42);
        let mut counts = [0u32; 2];
        for _ in 0..40_000 {
            counts[picker.pick(&mut rng)] += 1;
        }
        let share_b = f64::from(counts[1]) / 40_000.0;
        assert!((0.72..0.78).contains(&share_b), "{counts:?}");
    }
}
