//! The burst executor: every create request in flight at once.

use super::*;

/// All `count` create requests in flight together: connections are opened first, then every
/// request is released at one instant; latency counts from that instant.
pub(super) async fn run_burst(
    i: usize,
    threads: usize,
    shared: &Arc<Shared>,
    count: u32,
) -> ThreadOut {
    let mine = share(u64::from(count), threads, i) as usize;
    // Connections are opened a few hundred at a time: the burst is about requests in flight
    // together, and a flood of SYNs would only measure the server's listen queue.
    let slots = Rc::new(tokio::sync::Semaphore::new(256));
    let connects: Vec<_> = (0..mine)
        .map(|_| {
            let mut t = shared.transport();
            let slots = Rc::clone(&slots);
            tokio::task::spawn_local(async move {
                let _slot = slots.acquire().await.expect("semaphore open");
                let r = t.connect().await;
                (t, r)
            })
        })
        .collect();
    let mut transports = Vec::with_capacity(mine);
    for c in connects {
        let (t, r) = c.await.expect("connect task");
        shared.control.note(&r);
        transports.push(t);
    }
    let Some(start) = shared.sync_start() else {
        return ThreadOut::nothing(1, Book::default());
    };
    if i == 0 {
        set_phase(shared, |p| p.measure_start = Some(start));
    }
    let rec = Rc::new(RefCell::new(Rec::new(
        1,
        start,
        Arc::clone(&shared.control),
    )));
    let created = Rc::new(RefCell::new(Vec::with_capacity(mine)));
    tokio::time::sleep_until(start.into()).await;
    let tasks: Vec<_> = transports
        .into_iter()
        .enumerate()
        .map(|(n, mut t)| {
            let (rec, created, shared) = (Rc::clone(&rec), Rc::clone(&created), Arc::clone(shared));
            tokio::task::spawn_local(async move {
                let call = Call::Create {
                    name: format!("burst-t{i}-{n}"),
                };
                let sent = Instant::now();
                let r = t.call(&call).await;
                let done = Instant::now();
                shared.control.note(&r);
                if let Ok(Reply::Created { id }) = &r {
                    created.borrow_mut().push(id.clone());
                }
                rec.borrow_mut().record(0, start, sent, done, &r);
                done
            })
        })
        .collect();
    let mut last = start;
    for t in tasks {
        if let Ok(done) = t.await {
            last = last.max(done);
        }
    }
    ThreadOut::finished(shared, last - start, rec, take_rc(created), Vec::new())
}
