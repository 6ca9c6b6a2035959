//! Committed-write events for WebSocket subscribers (`GET /api/ws`, see `ws.rs`).
//!
//! The storage publishes an event only after the write it describes has committed (the
//! optimized profile's writer thread right after its group COMMIT, the legacy profile after
//! its own COMMIT, a log append after the file write). Each event gets the next per-server
//! sequence number and is serialised once, into the text every subscriber is sent.
//!
//! Fan-out is one shared ring (a tokio broadcast channel of `buffer` events): a subscriber
//! costs its position in the ring, not a queue of its own, so the server's memory does not
//! grow with a slow client. A subscriber that falls more than `buffer` events behind is
//! disconnected with close code [`CLOSE_TOO_SLOW`] and counted.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch, Notify};

/// Close code sent to a subscriber that fell more than the buffer behind (private-use range
/// of RFC 6455 §7.4.2).
pub const CLOSE_TOO_SLOW: u16 = 4001;
/// Close code sent to a subscriber that did not answer a ping before the next one was due.
pub const CLOSE_PING_TIMEOUT: u16 = 4002;

/// Range of `--ws-buffer`, events.
pub const BUFFER_MIN: usize = 16;
pub const BUFFER_MAX: usize = 1 << 20;

/// How the event fan-out is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsConfig {
    /// Events a subscriber may fall behind before it is disconnected as too slow; also the
    /// size of the shared ring. Larger than the biggest group-commit batch (1,024 writes), so
    /// that one batch published at once never drops a subscriber that keeps up.
    pub buffer: usize,
    /// How often an idle connection is pinged; one that has not answered the previous ping
    /// when the next is due is closed.
    pub ping_interval: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            buffer: 8192,
            ping_interval: Duration::from_secs(30),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ExecutionCreated,
    ExecutionStatusChanged,
    StepAdded,
    StepStatusChanged,
    LogsAppended,
    ArtifactAdded,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ExecutionCreated => "execution.created",
            EventKind::ExecutionStatusChanged => "execution.status_changed",
            EventKind::StepAdded => "step.added",
            EventKind::StepStatusChanged => "step.status_changed",
            EventKind::LogsAppended => "logs.appended",
            EventKind::ArtifactAdded => "artifact.added",
        }
    }
}

/// One published event, as every subscriber is sent it.
#[derive(Debug)]
pub struct Event {
    pub seq: u64,
    pub execution_id: i64,
    /// `{"type":"event","seq":..,"event":..,"execution_id":..,"committed_at":..,"data":..}`.
    pub text: Utf8Bytes,
}

/// An event before it has a sequence number: its kind, execution and `data` (the REST
/// API's JSON shape of what was written).
pub struct Pending {
    pub kind: EventKind,
    pub execution_id: i64,
    pub data: String,
}

impl Pending {
    pub fn new(kind: EventKind, execution_id: i64, data: &impl Serialize) -> Pending {
        Pending {
            kind,
            execution_id,
            // The API's own types always serialise.
            data: serde_json::to_string(data).unwrap_or_else(|_| "null".into()),
        }
    }
}

/// Counters shown under `websocket` in `/performance/stats`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventStats {
    /// Subscriber connections open now.
    pub connections: i64,
    /// Subscriber connections accepted since start.
    pub connections_total: u64,
    /// Events published since start (committed writes and log appends).
    pub events: u64,
    /// Event messages written to subscribers since start.
    pub deliveries: u64,
    /// Subscribers disconnected for falling more than `buffer` events behind.
    pub dropped_slow: u64,
    /// Subscribers closed for not answering a ping.
    pub ping_timeouts: u64,
    /// Events per second and deliveries per second over the interval since the previous
    /// reading of the stats (at least a second; the first reading: since start).
    pub events_per_s: f64,
    pub deliveries_per_s: f64,
    /// The last sequence number given out.
    pub last_seq: u64,
    /// The ring size (`--ws-buffer`), events.
    pub buffer: usize,
}

struct RateState {
    at: Instant,
    events: u64,
    deliveries: u64,
    events_per_s: f64,
    deliveries_per_s: f64,
}

struct HubInner {
    tx: broadcast::Sender<Arc<Event>>,
    /// Publication lock and the last sequence number given out: sequence order is the order
    /// events enter the ring, and a subscription starts at a definite sequence number.
    seq: Mutex<u64>,
    last_seq: AtomicU64,
    config: EventsConfig,
    connections: AtomicI64,
    connections_total: AtomicU64,
    events: AtomicU64,
    deliveries: AtomicU64,
    dropped_slow: AtomicU64,
    ping_timeouts: AtomicU64,
    rate: Mutex<RateState>,
    shutdown: watch::Sender<bool>,
    all_closed: Notify,
}

/// Cheap to clone; every clone is the same hub.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<HubInner>,
}

impl EventHub {
    pub fn new(config: EventsConfig) -> EventHub {
        let config = EventsConfig {
            buffer: config.buffer.clamp(BUFFER_MIN, BUFFER_MAX),
            ..config
        };
        let (tx, _) = broadcast::channel(config.buffer);
        let (shutdown, _) = watch::channel(false);
        EventHub {
            inner: Arc::new(HubInner {
                tx,
                seq: Mutex::new(0),
                last_seq: AtomicU64::new(0),
                config,
                connections: AtomicI64::new(0),
                connections_total: AtomicU64::new(0),
                events: AtomicU64::new(0),
                deliveries: AtomicU64::new(0),
                dropped_slow: AtomicU64::new(0),
                ping_timeouts: AtomicU64::new(0),
                rate: Mutex::new(RateState {
                    at: Instant::now(),
                    events: 0,
                    deliveries: 0,
                    events_per_s: 0.0,
                    deliveries_per_s: 0.0,
                }),
                shutdown,
                all_closed: Notify::new(),
            }),
        }
    }

    pub fn config(&self) -> EventsConfig {
        self.inner.config
    }

    /// Publishes `count` events made by `make`, which runs only when someone subscribes
    /// (with no subscriber the sequence numbers are still used up, and nothing is built).
    pub fn publish(&self, count: usize, committed_at: &str, make: impl FnOnce() -> Vec<Pending>) {
        if count == 0 {
            return;
        }
        let inner = &self.inner;
        let mut seq = inner.seq.lock().unwrap_or_else(|e| e.into_inner());
        if inner.tx.receiver_count() == 0 {
            *seq += count as u64;
        } else {
            for p in make() {
                *seq += 1;
                let text = format!(
                    "{{\"type\":\"event\",\"seq\":{},\"event\":\"{}\",\"execution_id\":{},\
                     \"committed_at\":\"{}\",\"data\":{}}}",
                    *seq,
                    p.kind.as_str(),
                    p.execution_id,
                    committed_at,
                    p.data
                );
                let _ = inner.tx.send(Arc::new(Event {
                    seq: *seq,
                    execution_id: p.execution_id,
                    text: text.into(),
                }));
            }
        }
        inner.last_seq.store(*seq, Ordering::Release);
        inner.events.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// A new subscription: the receiver and the last sequence number before it, so the
    /// subscriber gets exactly the events after that one.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Event>>, u64) {
        let seq = self.inner.seq.lock().unwrap_or_else(|e| e.into_inner());
        (self.inner.tx.subscribe(), *seq)
    }

    /// The last sequence number given out.
    pub fn last_seq(&self) -> u64 {
        self.inner.last_seq.load(Ordering::Acquire)
    }

    /// Counts an open connection until the guard is dropped.
    pub fn connection(&self) -> ConnectionGuard {
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        self.inner.connections_total.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard { hub: self.clone() }
    }

    pub fn delivered(&self, n: u64) {
        if n > 0 {
            self.inner.deliveries.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn dropped_slow(&self) {
        self.inner.dropped_slow.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ping_timed_out(&self) {
        self.inner.ping_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves (true) once shutdown has begun.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Tells every connection to close (1001, going away), then waits until they all have,
    /// for at most `deadline`; returns how many were still open then.
    pub async fn shut_down(&self, deadline: Duration) -> i64 {
        self.inner.shutdown.send_replace(true);
        let wait = async {
            loop {
                let notified = self.inner.all_closed.notified();
                if self.inner.connections.load(Ordering::Acquire) <= 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(deadline, wait).await;
        self.inner.connections.load(Ordering::Acquire).max(0)
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    pub fn stats(&self) -> EventStats {
        let inner = &self.inner;
        let events = inner.events.load(Ordering::Relaxed);
        let deliveries = inner.deliveries.load(Ordering::Relaxed);
        let (events_per_s, deliveries_per_s) = {
            let mut rate = inner.rate.lock().unwrap_or_else(|e| e.into_inner());
            let elapsed = rate.at.elapsed().as_secs_f64();
            if elapsed >= 1.0 || (rate.events == 0 && rate.deliveries == 0) {
                rate.events_per_s = (events - rate.events) as f64 / elapsed.max(1e-9);
                rate.deliveries_per_s = (deliveries - rate.deliveries) as f64 / elapsed.max(1e-9);
                rate.at = Instant::now();
                rate.events = events;
                rate.deliveries = deliveries;
            }
            (rate.events_per_s, rate.deliveries_per_s)
        };
        EventStats {
            connections: inner.connections.load(Ordering::Relaxed),
            connections_total: inner.connections_total.load(Ordering::Relaxed),
            events,
            deliveries,
            dropped_slow: inner.dropped_slow.load(Ordering::Relaxed),
            ping_timeouts: inner.ping_timeouts.load(Ordering::Relaxed),
            events_per_s,
            deliveries_per_s,
            last_seq: self.last_seq(),
            buffer: inner.config.buffer,
        }
    }
}

/// One open subscriber connection, counted while it lives.
pub struct ConnectionGuard {
    hub: EventHub,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.hub.inner.connections.fetch_sub(1, Ordering::AcqRel) <= 1 {
            self.hub.inner.all_closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_run_on_with_and_without_subscribers() {
        let hub = EventHub::new(EventsConfig::default());
        let mut built = false;
        hub.publish(3, "t", || {
            built = true;
            vec![]
        });
        assert!(!built, "nothing is built without a subscriber");
        assert_eq!(hub.last_seq(), 3);
        let (mut rx, start) = hub.subscribe();
        assert_eq!(start, 3);
        hub.publish(2, "2026-01-01T00:00:00.000000Z", || {
            vec![
                Pending::new(
                    EventKind::ExecutionCreated,
                    7,
                    &serde_json::json!({"id": 7}),
                ),
                Pending::new(EventKind::StepAdded, 7, &serde_json::json!({"index": 0})),
            ]
        });
        let a = rx.try_recv().unwrap();
        let b = rx.try_recv().unwrap();
        assert_eq!((a.seq, b.seq), (4, 5));
        let v: serde_json::Value = serde_json::from_str(a.text.as_str()).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["seq"], 4);
        assert_eq!(v["event"], "execution.created");
        assert_eq!(v["execution_id"], 7);
        assert_eq!(v["committed_at"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(v["data"]["id"], 7);
        assert_eq!(hub.stats().events, 5);
    }

    #[test]
    fn a_receiver_past_the_buffer_lags() {
        let hub = EventHub::new(EventsConfig {
            buffer: 16,
            ..EventsConfig::default()
        });
        let (mut rx, _) = hub.subscribe();
        hub.publish(20, "t", || {
            (0..20)
                .map(|i| Pending::new(EventKind::ExecutionCreated, i, &i))
                .collect()
        });
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
