//! `stepflow-bench fanout` as a user runs it, over real loopback sockets: against the bundled
//! monitor every subscriber gets every event; bad numbers are refused before any load; and
//! against a faulty service (one event dropped, one sent twice) the checker finds both and
//! fails the run. No timing thresholds.

mod common;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_stepflow-bench");

fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run stepflow-bench")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scenario without timing targets: a loaded test machine must not fail the run.
const NO_TIMING: &str = r#"
name = "fanout-test"
kind = "fanout"
duration = "2s"
[fanout]
subscribers = 20
rate = 100
writers = 8
[targets]
"write.error_rate" = "<= 0%"
"#;

#[test]
fn every_subscriber_gets_every_event_from_the_bundled_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("f.toml");
    std::fs::write(&scenario, NO_TIMING).unwrap();
    let out = run(
        dir.path(),
        &[
            "fanout",
            "--scenario",
            scenario.to_str().unwrap(),
            "--subscribers",
            "25",
            "--out",
            "r.json",
            "--no-progress",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let results = common::parse_results(
        &std::fs::read_to_string(dir.path().join("r.json")).unwrap(),
        "fanout results",
    );
    assert_eq!(results["kind"], "fanout");
    let d = &results["delivery"];
    assert_eq!(d["subscribers"], 25, "{d}");
    assert_eq!(d["events"], 200, "{d}");
    assert_eq!(d["expected"], 25 * 200, "{d}");
    assert_eq!(d["received"], 25 * 200, "{d}");
    for zero in [
        "missed",
        "duplicated",
        "reordered",
        "seq_gaps",
        "dropped_slow",
    ] {
        assert_eq!(d[zero], 0, "{zero}: {d}");
    }
    let ops = &results["operations"];
    assert_eq!(ops["connect"]["count"], 25);
    assert_eq!(ops["write"]["count"], 200);
    assert_eq!(ops["delivery"]["count"], 25 * 200);
    assert_eq!(ops["delivery_from_ack"]["count"], 25 * 200);
    assert_eq!(results["load"]["model"], "open");
    let server = &results["server"]["stats"]["websocket"];
    assert_eq!(server["events"], 200, "{server}");
    assert_eq!(server["dropped_slow"], 0, "{server}");
}

#[test]
fn bad_numbers_are_refused_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["--subscribers", "0"], "--subscribers"),
        (&["--subscribers", "100001"], "--subscribers"),
        (&["--subscribers", "many"], "--subscribers"),
        (&["--rate", "0"], "--rate"),
        (&["--rate", "2000000"], "--rate"),
        (&["--writers", "0"], "--writers"),
        (&["--duration", "0s"], "--duration"),
        (&["--concurrency", "4"], "--concurrency"),
        (&["--target", "https://127.0.0.1:1"], "http:// targets only"),
    ];
    for (args, names) in cases {
        let mut all = vec!["fanout", "--no-progress", "--out", "r.json"];
        all.extend_from_slice(args);
        let out = run(dir.path(), &all);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?} names {names}: {stderr}");
        assert!(
            !dir.path().join("r.json").exists(),
            "{args:?} wrote results"
        );
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nkind = \"fanout\"\n[fanout]\nsubscribers = -1\n",
    )
    .unwrap();
    let out = run(dir.path(), &["fanout", "--scenario", bad.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml:4: key \"subscribers\""),
        "{stderr}"
    );
}

/// A StepFlow-shaped service whose event stream is wrong on purpose: event `drop` is never
/// sent, event `dup` is sent twice.
#[derive(Default)]
struct Faulty {
    seq: AtomicU64,
    subscribers: Mutex<Vec<tokio::sync::mpsc::UnboundedSender<String>>>,
    drop: u64,
    dup: u64,
    /// The first subscriber is closed as the monitor closes a too-slow one (4001), once the
    /// writes have begun.
    close_first_as_slow: bool,
    connected: AtomicU64,
}

async fn create(State(s): State<Arc<Faulty>>, Json(body): Json<Value>) -> impl IntoResponse {
    let seq = s.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let execution = json!({"id": seq, "name": body["name"], "status": "pending"});
    let event = json!({"type": "event", "seq": seq, "event": "execution.created",
                       "execution_id": seq, "committed_at": "2026-01-01T00:00:00Z",
                       "data": execution})
    .to_string();
    let times = if seq == s.drop {
        0
    } else if seq == s.dup {
        2
    } else {
        1
    };
    for tx in s.subscribers.lock().unwrap().iter() {
        for _ in 0..times {
            let _ = tx.send(event.clone());
        }
    }
    (axum::http::StatusCode::CREATED, Json(execution))
}

async fn ws(State(s): State<Arc<Faulty>>, upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(move |socket| subscriber(socket, s))
}

async fn subscriber(mut socket: WebSocket, s: Arc<Faulty>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = {
        let mut subs = s.subscribers.lock().unwrap();
        subs.push(tx);
        s.seq.load(Ordering::SeqCst)
    };
    let hello = json!({"type": "hello", "seq": start, "subscription": "all"}).to_string();
    if socket.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    let first = s.connected.fetch_add(1, Ordering::SeqCst) == 0;
    if first && s.close_first_as_slow {
        // When the first event is due, instead of it: as if it had fallen behind.
        let _ = rx.recv().await;
        let frame = axum::extract::ws::CloseFrame {
            code: 4001,
            reason: "too slow".into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
        return;
    }
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(text) => if socket.send(Message::Text(text.into())).await.is_err() { return },
                None => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
        }
    }
}

/// Serves `faulty` on a loopback port for the rest of the test.
fn serve(runtime: &tokio::runtime::Runtime, faulty: &Arc<Faulty>) -> String {
    let app = Router::new()
        .route("/api/executions", post(create))
        .route("/api/ws", get(ws))
        .with_state(Arc::clone(faulty));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A 1 s fan-out of 20 events to 3 subscribers through a server that misbehaves as
/// `faulty` says: (exit code, stderr, results).
fn fanout_against(faulty: Faulty) -> (Option<i32>, String, Value) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target = serve(&runtime, &Arc::new(faulty));
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("f.toml");
    std::fs::write(&scenario, NO_TIMING).unwrap();
    let out = run(
        dir.path(),
        &[
            "fanout",
            "--target",
            &target,
            "--scenario",
            scenario.to_str().unwrap(),
            "--subscribers",
            "3",
            "--rate",
            "20",
            "--duration",
            "1s",
            "--writers",
            "1",
            "--out",
            "r.json",
            "--no-progress",
        ],
    );
    let stderr = text(&out.stderr);
    let written = std::fs::read_to_string(dir.path().join("r.json"))
        .unwrap_or_else(|e| panic!("no results (exit {:?}): {e}; {stderr}", out.status.code()));
    let results = common::parse_results(&written, "fanout results");
    (out.status.code(), stderr, results)
}

#[test]
fn a_subscriber_dropped_as_slow_is_reported_and_excused() {
    let (code, stderr, results) = fanout_against(Faulty {
        close_first_as_slow: true,
        ..Faulty::default()
    });
    assert_eq!(code, Some(0), "a slow drop alone does not fail: {stderr}");
    let d = &results["delivery"];
    assert_eq!(d["dropped_slow"], 1, "{d}");
    assert_eq!(d["missed"], 0, "{d}");
    assert_eq!(d["expected"], 3 * 20, "{d}");
    assert_eq!(d["missed_by_dropped"], 20, "it got none: {d}");
    assert_eq!(d["received"], 2 * 20, "{d}");
    let warned = results["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().is_some_and(|w| w.contains("too slow (4001)")));
    assert!(warned, "{}", results["warnings"]);
}

#[test]
fn the_checker_finds_a_dropped_and_a_duplicated_event() {
    let (code, stderr, results) = fanout_against(Faulty {
        drop: 3,
        dup: 5,
        ..Faulty::default()
    });
    assert_eq!(code, Some(1), "the faults fail the run: {stderr}");
    let d = &results["delivery"];
    assert_eq!(d["subscribers"], 3, "{d}");
    assert_eq!(d["events"], 20, "{d}");
    assert_eq!(d["expected"], 3 * 20, "{d}");
    assert_eq!(d["missed"], 3, "one event missed at each subscriber: {d}");
    assert_eq!(
        d["duplicated"], 3,
        "one event twice at each subscriber: {d}"
    );
    assert_eq!(
        d["seq_gaps"], 3,
        "the dropped event's sequence number was skipped: {d}"
    );
    assert_eq!(d["received"], 3 * 19, "{d}");
    assert_eq!(d["dropped_slow"], 0, "{d}");
    assert!(stderr.contains("missed 3"), "{stderr}");
}
