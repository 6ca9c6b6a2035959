//! `GET /api/ws`: committed-write events over a WebSocket (events themselves: `events.rs`).
//!
//! Protocol (README.md, "Events over WebSocket"):
//! - `GET /api/ws` subscribes to every event; `GET /api/ws?executions=1,2` to those of
//!   executions 1 and 2 only. The first message is
//!   `{"type":"hello","seq":S,"buffer":N,"subscription":"all"|[ids]}`: every event after
//!   sequence number `S` that matches the subscription follows, in sequence order.
//! - A text message `{"subscribe":"all"}` or `{"subscribe":[ids]}` changes the
//!   subscription; the answer is `{"type":"subscribed","seq":S,"subscription":...}`, from
//!   after which event `S` the new subscription applies.
//! - Events: `{"type":"event","seq","event","execution_id","committed_at","data"}`.
//! - A subscriber more than the buffer behind is closed with 4001 (too slow); one that has
//!   not answered a ping when the next is due, with 4002; at shutdown every connection is
//!   closed with 1001 (going away).

use super::api::AppState;
use super::error::ApiError;
use super::events::{Event, EventHub, CLOSE_PING_TIMEOUT, CLOSE_TOO_SLOW};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Most execution ids one subscription may name.
pub const MAX_SUBSCRIBED_IDS: usize = 10_000;
/// How often a connection blocked on a full socket checks whether it has fallen too far behind.
const LAG_CHECK: Duration = Duration::from_millis(50);
/// Events written to the socket's buffer before it is flushed, at most.
const MAX_UNFLUSHED: usize = 256;
/// How long a closing handshake may take before the connection is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Which events a connection is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    /// Sorted, deduplicated execution ids.
    Executions(Vec<i64>),
}

impl Filter {
    fn matches(&self, event: &Event) -> bool {
        match self {
            Filter::All => true,
            Filter::Executions(ids) => ids.binary_search(&event.execution_id).is_ok(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Filter::All => serde_json::json!("all"),
            Filter::Executions(ids) => serde_json::json!(ids),
        }
    }

    fn from_ids(mut ids: Vec<i64>) -> Result<Filter, String> {
        if ids.len() > MAX_SUBSCRIBED_IDS {
            return Err(format!(
                "at most {MAX_SUBSCRIBED_IDS} execution ids may be subscribed to, got {}",
                ids.len()
            ));
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(Filter::Executions(ids))
    }
}

/// `executions=1,2,3` (repeatable) or nothing.
pub fn parse_query(query: Option<&str>) -> Result<Filter, String> {
    let Some(query) = query else {
        return Ok(Filter::All);
    };
    let mut ids = Vec::new();
    let mut named = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "executions" {
            return Err(format!(
                "unknown query parameter {key:?}; /api/ws takes executions=ID,ID,..."
            ));
        }
        named = true;
        for part in value.split(',').filter(|p| !p.trim().is_empty()) {
            let id: i64 = part.trim().parse().map_err(|_| {
                format!("executions: {part:?} is not an execution id (a whole number)")
            })?;
            ids.push(id);
        }
    }
    if !named {
        return Ok(Filter::All);
    }
    if ids.is_empty() {
        return Err("executions= names no execution id".into());
    }
    Filter::from_ids(ids)
}

/// A subscription change sent by the client.
fn parse_command(text: &str) -> Result<Filter, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let sub = v
        .get("subscribe")
        .ok_or("expected {\"subscribe\": \"all\"} or {\"subscribe\": [execution ids]}")?;
    match sub {
        serde_json::Value::String(s) if s == "all" => Ok(Filter::All),
        serde_json::Value::Array(items) => {
            let ids = items
                .iter()
                .map(|i| i.as_i64().ok_or(format!("{i} is not an execution id")))
                .collect::<Result<Vec<_>, _>>()?;
            Filter::from_ids(ids)
        }
        other => Err(format!(
            "subscribe must be \"all\" or an array of execution ids, got {other}"
        )),
    }
}

pub async fn handler(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let filter = match parse_query(query.as_deref()) {
        Ok(f) => f,
        Err(e) => return ApiError::BadRequest(e).into_response(),
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(why) => {
            return ApiError::BadRequest(format!(
                "GET /api/ws is a WebSocket endpoint and this request is not a WebSocket \
                 upgrade: {why}"
            ))
            .into_response()
        }
    };
    // During shutdown the connection is closed (1001) as soon as it is upgraded.
    let hub = state.storage.events().clone();
    upgrade
        // Small buffers: 10,000 idle subscribers must not cost 10,000 x 128 KiB. Writes
        // are flushed per batch of events; a socket that accepts nothing blocks the
        // connection (which is then dropped as too slow), it never grows a buffer.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| connection(socket, hub, filter))
}

enum End {
    /// Close with this code and reason.
    Close(u16, String),
    /// The peer went away or the socket failed: nothing more to send.
    Gone,
}

async fn connection(mut socket: WebSocket, hub: EventHub, mut filter: Filter) {
    let _guard = hub.connection();
    let mut shutdown = hub.shutdown_signal();
    let (mut rx, start) = hub.subscribe();
    let hello = serde_json::json!({
        "type": "hello",
        "seq": start,
        "buffer": hub.config().buffer,
        "subscription": filter.to_json(),
    });
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    // The last sequence number taken from the ring (delivered or filtered out).
    let mut taken = start;
    let period = hub.config().ping_interval;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut awaiting_pong = false;
    // Not biased: a steady stream of events must not starve the client's messages (its
    // pongs, its closing frame) or the ping timer.
    // Made once: a new watch future per event showed in profiles.
    let mut shutting_down = pin!(until_true(&mut shutdown));
    let end = loop {
        tokio::select! {
            () = &mut shutting_down => {
                break End::Close(axum::extract::ws::close_code::AWAY, "server shutting down".into());
            }
            received = rx.recv() => {
                let first = match received {
                    Ok(ev) => ev,
                    Err(RecvError::Lagged(n)) => break too_slow(&hub, n),
                    Err(RecvError::Closed) => break End::Close(axum::extract::ws::close_code::AWAY, "server shutting down".into()),
                };
                match deliver(&mut socket, &hub, &mut rx, &filter, first, &mut taken).await {
                    Ok(()) => {}
                    Err(end) => break end,
                }
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) => break End::Gone,
                Some(Ok(Message::Close(_))) => break End::Gone,
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                Some(Ok(Message::Text(text))) => {
                    awaiting_pong = false;
                    let answer = match parse_command(text.as_str()) {
                        Ok(f) => {
                            filter = f;
                            serde_json::json!({
                                "type": "subscribed",
                                "seq": taken,
                                "subscription": filter.to_json(),
                            })
                        }
                        Err(e) => serde_json::json!({"type": "error", "error": e}),
                    };
                    if socket.send(Message::Text(answer.to_string().into())).await.is_err() {
                        break End::Gone;
                    }
                }
                // Pings are answered by the protocol layer; binary messages mean nothing here.
                Some(Ok(_)) => awaiting_pong = false,
            },
            _ = ping.tick() => {
                if awaiting_pong {
                    hub.ping_timed_out();
                    break End::Close(CLOSE_PING_TIMEOUT, "no pong to the last ping".into());
                }
                awaiting_pong = true;
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break End::Gone;
                }
            }
        }
    };
    if let End::Close(code, reason) = end {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        // The client's closing frame is awaited (briefly) so that the close is clean.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            socket.send(Message::Close(Some(frame))).await?;
            while let Some(msg) = socket.recv().await {
                if matches!(msg?, Message::Close(_)) {
                    break;
                }
            }
            Ok::<(), axum::Error>(())
        })
        .await;
    }
}

async fn until_true(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn too_slow(hub: &EventHub, behind: u64) -> End {
    hub.dropped_slow();
    End::Close(
        CLOSE_TOO_SLOW,
        format!(
            "too slow: fell {behind} events past the buffer of {}",
            hub.config().buffer
        ),
    )
}

/// Writes `first` and whatever else is already in the ring (up to MAX_UNFLUSHED), then
/// flushes. A socket that will not take them is waited for only while the connection is
/// within the buffer of the newest event.
async fn deliver(
    socket: &mut WebSocket,
    hub: &EventHub,
    rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    filter: &Filter,
    first: Arc<Event>,
    taken: &mut u64,
) -> Result<(), End> {
    let mut next = Some(first);
    let mut written = 0u64;
    let mut unflushed = 0usize;
    while let Some(ev) = next.take() {
        *taken = ev.seq;
        if filter.matches(&ev) {
            let text = ev.text.clone();
            drop(ev);
            watching_lag(hub, *taken, socket.feed(Message::Text(text))).await?;
            written += 1;
            unflushed += 1;
        }
        if unflushed < MAX_UNFLUSHED {
            match rx.try_recv() {
                Ok(ev) => next = Some(ev),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                    hub.delivered(written);
                    return Err(too_slow(hub, n));
                }
                Err(_) => {}
            }
        }
    }
    let flushed = watching_lag(hub, *taken, socket.flush()).await;
    hub.delivered(written);
    flushed
}

/// Awaits a socket write; while it is blocked, checks every LAG_CHECK whether the connection
/// has fallen more than the buffer behind the newest event, and gives up (too slow) if so.
async fn watching_lag<F>(hub: &EventHub, taken: u64, write: F) -> Result<(), End>
where
    F: Future<Output = Result<(), axum::Error>>,
{
    let mut write = pin!(write);
    // Most writes complete at once: no timer for them.
    let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    if let Poll::Ready(r) = first {
        return r.map_err(|_| End::Gone);
    }
    let buffer = hub.config().buffer as u64;
    loop {
        match tokio::time::timeout(LAG_CHECK, write.as_mut()).await {
            Ok(r) => return r.map_err(|_| End::Gone),
            Err(_) => {
                let behind = hub.last_seq().saturating_sub(taken);
                if behind > buffer {
                    return Err(too_slow(hub, behind - buffer));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_executions_or_nothing() {
        assert_eq!(parse_query(None).unwrap(), Filter::All);
        assert_eq!(parse_query(Some("")).unwrap(), Filter::All);
        assert_eq!(
            parse_query(Some("executions=3,1&executions=2,3")).unwrap(),
            Filter::Executions(vec![1, 2, 3])
        );
        for bad in [
            "executions=",
            "executions=a",
            "execution=1",
            "executions=1.5",
        ] {
            assert!(parse_query(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_change_the_subscription() {
        assert_eq!(
            parse_command(r#"{"subscribe":"all"}"#).unwrap(),
            Filter::All
        );
        assert_eq!(
            parse_command(r#"{"subscribe":[5,4,5]}"#).unwrap(),
            Filter::Executions(vec![4, 5])
        );
        for bad in [
            "x",
            "{}",
            r#"{"subscribe":"some"}"#,
            r#"{"subscribe":["a"]}"#,
        ] {
            assert!(parse_command(bad).is_err(), "{bad}");
        }
    }
}
