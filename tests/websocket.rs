//! `GET /api/ws` over real loopback sockets: committed-write events in sequence with the REST
//! API's shapes, subscriptions to given executions, a deliberately slow subscriber dropped
//! (4001) while another misses nothing, pings, and shutdown closing subscribers (1001).
//!
//! No timing thresholds: every wait is bounded only so that a failing test cannot hang.

mod common;

use common::{expect, Monitor};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Bounds every wait for a message, so that a missing one fails instead of hanging.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

async fn connect(addr: SocketAddr, query: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws{query}"))
        .await
        .expect("WebSocket handshake");
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    (ws, hello)
}

/// The next text message, as JSON (pings and pongs skipped).
async fn next_json<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let msg = tokio::time::timeout(MESSAGE_TIMEOUT, ws.next())
            .await
            .expect("a message within the timeout")
            .expect("the stream is open")
            .expect("a good frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON message"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Blocking HTTP from async code.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (method, path) = (method.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || expect(addr, &method, &path, body.as_ref(), status))
        .await
        .expect("request thread")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn events_follow_commits(profile: &str) {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(profile, dir.path());
    let addr = monitor.addr;
    rt().block_on(async {
        let (mut all, hello) = connect(addr, "").await;
        assert_eq!(hello["subscription"], "all");
        let start = hello["seq"].as_u64().expect("hello seq");
        // Subscribed to an execution that does not exist: none of the writes below reach it.
        let (mut other, hello_other) = connect(addr, "?executions=999999").await;
        assert_eq!(hello_other["subscription"], json!([999999]));

        let stats = http(addr, "GET", "/performance/stats", None, 200).await;
        assert_eq!(stats["websocket"]["connections"], 2, "{stats}");

        let created = http(
            addr,
            "POST",
            "/api/executions",
            Some(json!({"name": "ws-1", "metadata": {"a": 1}})),
            201,
        )
        .await;
        let id = created["id"].as_i64().unwrap();
        let running = http(
            addr,
            "PATCH",
            &format!("/api/executions/{id}"),
            Some(json!({"status": "running"})),
            200,
        )
        .await;
        let step = http(
            addr,
            "POST",
            &format!("/api/executions/{id}/steps"),
            Some(json!({"name": "build"})),
            201,
        )
        .await;
        let step_done = http(
            addr,
            "PATCH",
            &format!("/api/executions/{id}/steps/0"),
            Some(json!({"status": "completed"})),
            200,
        )
        .await;
        http(
            addr,
            "POST",
            &format!("/api/executions/{id}/steps/0/logs"),
            Some(json!({"lines": ["one", "two"]})),
            201,
        )
        .await;
        let artifact = http(
            addr,
            "POST",
            &format!("/api/executions/{id}/artifacts"),
            Some(json!({"name": "a.txt", "content": "hi"})),
            201,
        )
        .await;
        let logs = http(
            addr,
            "GET",
            &format!("/api/executions/{id}/steps/0/logs"),
            None,
            200,
        )
        .await;

        let expected = [
            ("execution.created", created),
            ("execution.status_changed", running),
            ("step.added", step),
            ("step.status_changed", step_done),
            (
                "logs.appended",
                json!({"execution_id": id, "index": 0, "lines": logs["lines"]}),
            ),
            ("artifact.added", artifact),
        ];
        for (i, (kind, data)) in expected.iter().enumerate() {
            let ev = next_json(&mut all).await;
            assert_eq!(ev["type"], "event", "{ev}");
            assert_eq!(
                ev["seq"],
                start + 1 + i as u64,
                "sequence numbers follow on: {ev}"
            );
            assert_eq!(ev["event"], *kind, "{ev}");
            assert_eq!(ev["execution_id"], id, "{ev}");
            assert_eq!(&ev["data"], data, "the REST API's shape: {ev}");
            let at = ev["committed_at"].as_str().expect("committed_at");
            chrono::DateTime::parse_from_rfc3339(at).expect("committed_at is RFC 3339");
        }

        // The filtered subscriber got none of them: its first message is the answer to its
        // change of subscription, which starts after the last event so far.
        other
            .send(Message::Text(json!({"subscribe": [id]}).to_string().into()))
            .await
            .unwrap();
        let answer = next_json(&mut other).await;
        assert_eq!(answer["type"], "subscribed", "{answer}");
        assert_eq!(answer["subscription"], json!([id]));
        assert_eq!(answer["seq"], start + 6, "{answer}");
        // An unrelated execution's event is not sent to it; this one's is.
        http(
            addr,
            "POST",
            "/api/executions",
            Some(json!({"name": "unrelated"})),
            201,
        )
        .await;
        let done = http(
            addr,
            "PATCH",
            &format!("/api/executions/{id}"),
            Some(json!({"status": "completed"})),
            200,
        )
        .await;
        let ev = next_json(&mut other).await;
        assert_eq!(ev["seq"], start + 8, "{ev}");
        assert_eq!(ev["data"], done);
        // A bad command is answered, and the connection stays.
        other
            .send(Message::Text("{\"subscribe\": 5}".into()))
            .await
            .unwrap();
        assert_eq!(next_json(&mut other).await["type"], "error");

        let stats = http(addr, "GET", "/performance/stats", None, 200).await;
        let ws = &stats["websocket"];
        assert_eq!(ws["events"], start + 8, "{stats}");
        assert_eq!(ws["last_seq"], start + 8, "{stats}");
        // `all` got 6 so far (2 more are queued for it), `other` 1.
        assert!(ws["deliveries"].as_u64().unwrap() >= 7, "{stats}");
        assert_eq!(ws["dropped_slow"], 0);
    });
}

#[test]
fn events_follow_commits_in_sequence_with_rest_shapes_optimized() {
    events_follow_commits("optimized");
}

#[test]
fn events_follow_commits_in_sequence_with_rest_shapes_legacy() {
    events_follow_commits("legacy");
}

#[test]
fn bad_subscription_queries_get_400_before_any_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    for q in ["?executions=", "?executions=x", "?nosuch=1", ""] {
        let body = expect(monitor.addr, "GET", &format!("/api/ws{q}"), None, 400);
        assert!(body["error"].is_string(), "{body}");
    }
}

/// A subscriber that stops reading (with a small receive buffer, so that the server's socket
/// fills soon) is closed as too slow and counted, while one that reads gets every event.
#[test]
fn a_slow_subscriber_is_dropped_while_the_others_miss_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start_with("optimized", dir.path(), &["--ws-buffer", "256"]);
    let addr = monitor.addr;
    rt().block_on(async {
        let (mut fast, hello) = connect(addr, "").await;
        let start = hello["seq"].as_u64().unwrap();
        // The slow one: connected and subscribed, then never reads again.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (mut slow, _) = tokio_tungstenite::client_async(format!("ws://{addr}/api/ws"), stream)
            .await
            .expect("slow subscriber's handshake");
        let slow_hello = next_json(&mut slow).await;
        assert_eq!(slow_hello["type"], "hello");

        // The fast subscriber reads everything, checking the sequence as it goes.
        let reader = tokio::spawn(async move {
            let mut next = start + 1;
            loop {
                let ev = next_json(&mut fast).await;
                if ev["type"] != "event" {
                    continue;
                }
                let seq = ev["seq"].as_u64().unwrap();
                assert_eq!(seq, next, "the fast subscriber got every event, in order");
                next += 1;
                // The writer's last event is named "last".
                if ev["data"]["name"] == "last" {
                    return (seq, fast);
                }
            }
        });

        // Write until the server reports the slow subscriber dropped, 4 writers at a time.
        let mut written = 0u64;
        loop {
            let batch: Vec<_> = (0..4)
                .map(|_| {
                    tokio::task::spawn_blocking(move || {
                        for _ in 0..25 {
                            expect(
                                addr,
                                "POST",
                                "/api/executions",
                                Some(&json!({"name": "e"})),
                                201,
                            );
                        }
                    })
                })
                .collect();
            for b in batch {
                b.await.unwrap();
            }
            written += 100;
            let stats = http(addr, "GET", "/performance/stats", None, 200).await;
            if stats["websocket"]["dropped_slow"] == 1 {
                break;
            }
            assert!(
                written < 200_000,
                "the slow subscriber was never dropped: {stats}"
            );
        }
        http(
            addr,
            "POST",
            "/api/executions",
            Some(json!({"name": "last"})),
            201,
        )
        .await;
        let (last, _fast) = tokio::time::timeout(Duration::from_secs(120), reader)
            .await
            .expect("the fast subscriber reached the last event")
            .expect("fast reader");
        assert_eq!(
            last,
            start + written + 1,
            "every event reached the fast subscriber"
        );

        // The slow one, reading at last, finds its connection closed; when the close frame
        // made it out before the server gave up on the socket, it says why.
        let mut code = None;
        while let Ok(Some(msg)) = tokio::time::timeout(MESSAGE_TIMEOUT, slow.next())
            .await
            .expect("the slow connection ends")
            .transpose()
        {
            if let Message::Close(frame) = msg {
                code = frame.map(|f| u16::from(f.code));
                break;
            }
        }
        if let Some(code) = code {
            assert_eq!(code, 4001, "closed as too slow");
        }
        let stats = http(addr, "GET", "/performance/stats", None, 200).await;
        assert_eq!(stats["websocket"]["dropped_slow"], 1, "{stats}");
        // Its connection is gone; the fast one's is still open.
        let mut connections = stats["websocket"]["connections"].clone();
        for _ in 0..600 {
            if connections == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            connections = http(addr, "GET", "/performance/stats", None, 200).await["websocket"]
                ["connections"]
                .clone();
        }
        assert_eq!(connections, 1);
    });
}

#[test]
fn idle_subscribers_are_pinged() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start_with("optimized", dir.path(), &["--ws-ping-interval", "100ms"]);
    rt().block_on(async {
        let (mut ws, _) = connect(monitor.addr, "").await;
        let mut pings = 0;
        while pings < 3 {
            let msg = tokio::time::timeout(MESSAGE_TIMEOUT, ws.next())
                .await
                .expect("a ping within the timeout")
                .unwrap()
                .unwrap();
            if matches!(msg, Message::Ping(_)) {
                pings += 1;
            }
        }
        // Reading answered them (tungstenite pongs), so the connection is still open.
        let stats = http(monitor.addr, "GET", "/performance/stats", None, 200).await;
        assert_eq!(stats["websocket"]["connections"], 1, "{stats}");
        assert_eq!(stats["websocket"]["ping_timeouts"], 0, "{stats}");
    });
}

#[test]
fn shutdown_closes_subscribers_with_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut monitor = Monitor::start("optimized", dir.path());
    let addr = monitor.addr;
    let runtime = rt();
    let (mut a, mut b) = runtime.block_on(async {
        (
            connect(addr, "").await.0,
            connect(addr, "?executions=1").await.0,
        )
    });
    monitor.signal(libc::SIGTERM);
    runtime.block_on(async {
        for ws in [&mut a, &mut b] {
            loop {
                let msg = tokio::time::timeout(MESSAGE_TIMEOUT, ws.next())
                    .await
                    .expect("a close within the timeout")
                    .expect("a close frame before the end")
                    .expect("a good frame");
                if let Message::Close(frame) = msg {
                    let frame = frame.expect("a close code");
                    assert_eq!(u16::from(frame.code), 1001, "going away: {frame:?}");
                    break;
                }
            }
        }
    });
    let status = monitor.wait();
    assert!(
        status.success(),
        "graceful exit: {status}; {}",
        monitor.stderr()
    );
    assert!(
        !monitor.stderr().contains("did not close"),
        "{}",
        monitor.stderr()
    );
}
