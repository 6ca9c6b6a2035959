//! The fan-out's two sides of the wire: the writers, creating executions on the open model's
//! schedule, and each subscriber, recording every event's delivery as it arrives.

use super::*;

pub(super) struct WriteOutcome {
    pub(super) late: u64,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) interrupted: bool,
}

/// Creates execution `fanout-<run>-<k>` for every k at its intended time, with at most
/// `writers` in flight (a write due while all are busy waits, and its latency counts from
/// when it was due).
pub(super) async fn write_all(
    endpoint: &Arc<Endpoint>,
    scenario: &FanoutScenario,
    shared: Arc<Shared>,
    writes: Arc<Mutex<(Recorder, TimeSeries)>>,
    timeout: Duration,
    progress: bool,
) -> WriteOutcome {
    let t0 = shared
        .t0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .expect("t0 is set before the writers start");
    let timeouts = Timeouts {
        connect: timeout.min(Duration::from_secs(5)),
        request: timeout,
    };
    let (pool_tx, mut pool_rx) = tokio::sync::mpsc::channel::<Conn>(scenario.writers as usize);
    for _ in 0..scenario.writers {
        let _ = pool_tx.try_send(Conn::new(Arc::clone(endpoint), timeouts));
    }
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let mut late = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let headers = Arc::new(headers);
    let mut last_progress = Instant::now();
    let mut was_interrupted = false;
    for k in 0..shared.events {
        let due = t0 + shared.pacer.intended_send_time(k);
        tokio::time::sleep_until(due.into()).await;
        let Some(mut conn) = pool_rx.recv().await else {
            break;
        };
        if interrupted() {
            was_interrupted = true;
            break;
        }
        if Instant::now().saturating_duration_since(due) > Duration::from_millis(10) {
            late += 1;
        }
        while tasks.try_join_next().is_some() {}
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            eprint!(
                "\r\x1b[2Kfanout: {k}/{} events written, {} deliveries",
                shared.events,
                shared.delivered.load(Ordering::Relaxed)
            );
        }
        let shared = Arc::clone(&shared);
        let writes = Arc::clone(&writes);
        let errors = Arc::clone(&errors);
        let pool = pool_tx.clone();
        let headers = Arc::clone(&headers);
        tasks.spawn(async move {
            let body = format!("{{\"name\":\"{}{k}\"}}", shared.prefix);
            let sent = Instant::now();
            let result = conn
                .send("POST", "/api/executions", &headers, Some(body.as_bytes()))
                .await;
            let done = Instant::now();
            let latency = done.saturating_duration_since(due).as_nanos() as u64;
            let service = done.saturating_duration_since(sent).as_nanos() as u64;
            let ok = match &result {
                Ok(r) if r.is_success() => {
                    shared.acks[k as usize].store(
                        done.saturating_duration_since(t0).as_nanos() as u64 + 1,
                        Ordering::Release,
                    );
                    true
                }
                Ok(r) => {
                    *errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(format!("write: HTTP {}", r.status))
                        .or_default() += 1;
                    false
                }
                Err(e) => {
                    *errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(format!("write: {e}"))
                        .or_default() += 1;
                    false
                }
            };
            {
                let mut w = writes.lock().unwrap_or_else(|e| e.into_inner());
                if ok {
                    w.0.record_ok(latency, service);
                } else {
                    w.0.record_error(latency);
                }
                w.1.record(due.saturating_duration_since(t0), latency, ok);
            }
            let _ = pool.send(conn).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|e| e.into_inner()));
    WriteOutcome {
        late,
        errors,
        interrupted: was_interrupted,
    }
}

/// One subscriber: connect (timed up to the server's hello), then receive until told to
/// stop or the connection ends.
pub(super) async fn subscriber(
    i: usize,
    url: &str,
    shared: Arc<Shared>,
    gate: Arc<tokio::sync::Semaphore>,
    ready: tokio::sync::mpsc::UnboundedSender<Result<(), String>>,
    timeout: Duration,
    connected: Arc<AtomicU64>,
) -> Option<Outcome> {
    let permit = gate.acquire_owned().await.ok()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20));
    let started = Instant::now();
    let connect = async {
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        // The hello carries the sequence number the subscription starts after.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let hello: serde_json::Value = serde_json::from_str(t.as_str())
                        .map_err(|e| std::io::Error::other(format!("bad hello: {e}")))?;
                    let seq = hello["seq"]
                        .as_u64()
                        .ok_or_else(|| std::io::Error::other(format!("bad hello: {hello}")))?;
                    return Ok::<_, anyhow::Error>((ws, seq));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(anyhow::anyhow!("closed before its hello")),
            }
        }
    };
    let (mut ws, start_seq) = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return None;
        }
        Err(_) => {
            let _ = ready.send(Err(format!("no hello within {timeout:?}")));
            return None;
        }
    };
    let connect_ns = started.elapsed().as_nanos() as u64;
    drop(permit);
    let shard = &shared.shards[i % SHARDS];
    shard
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .connect
        .record_ok(connect_ns, connect_ns);
    connected.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(Ok(()));
    drop(ready);
    let mut checker = Checker::new(shared.events, start_seq);
    let mut stop = shared.stop.subscribe();
    let live = AtomicBool::new(true);
    let mut dropped_slow = false;
    let mut close = None;
    let mut t0: Option<Instant> = None;
    // Made once: a new watch future per message showed in profiles.
    let mut stopped = std::pin::pin!(async {
        let _ = stop.wait_for(|s| *s).await;
    });
    loop {
        tokio::select! {
            biased;
            () = &mut stopped => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let now = Instant::now();
                    let Ok(m) = serde_json::from_str::<Incoming>(text.as_str()) else { continue };
                    if m.kind != "event" {
                        continue;
                    }
                    let Some(seq) = m.seq else { continue };
                    let k = m
                        .data
                        .and_then(|d| d.name)
                        .and_then(|n| n.strip_prefix(shared.prefix.as_str()))
                        .and_then(|n| n.parse::<u64>().ok())
                        .filter(|&k| k < shared.events);
                    let Some(k) = k else {
                        checker.record_other(seq);
                        continue;
                    };
                    let t0 = *t0.get_or_insert_with(|| {
                        shared.t0.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(now)
                    });
                    let first = !checker.has(k);
                    checker.record(seq, k);
                    if !first {
                        continue;
                    }
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                    let at = now.saturating_duration_since(t0).as_nanos() as u64;
                    let intended = shared.pacer.intended_send_time(k).as_nanos() as u64;
                    let from_intended = at.saturating_sub(intended);
                    let ack = shared.acks[k as usize].load(Ordering::Acquire);
                    let from_ack = if ack == 0 || ack - 1 > at {
                        shared.before_ack.fetch_add(1, Ordering::Relaxed);
                        0
                    } else {
                        at - (ack - 1)
                    };
                    let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
                    s.delivery.record_ok(from_intended, from_intended);
                    s.from_ack.record_ok(from_ack, from_ack);
                }
                Some(Ok(Message::Close(frame))) => {
                    if let Some(f) = &frame {
                        dropped_slow = u16::from(f.code) == CLOSE_TOO_SLOW;
                        close = Some(format!("{} {}", u16::from(f.code), f.reason));
                    } else {
                        close = Some("closed without a code".into());
                    }
                    live.store(false, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    close = Some(format!("{e}"));
                    live.store(false, Ordering::Relaxed);
                    break;
                }
                None => {
                    close = Some("connection closed".into());
                    live.store(false, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
    connected.fetch_sub(1, Ordering::Relaxed);
    if live.load(Ordering::Relaxed) {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.flush()).await;
    }
    Some(Outcome {
        checker,
        dropped_slow,
        disconnected: !live.load(Ordering::Relaxed) && !dropped_slow,
        close,
    })
}
