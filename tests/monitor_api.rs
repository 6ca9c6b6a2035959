//! The monitor's HTTP API over a real loopback socket, for both storage profiles, plus a few
//! handler tests without a socket (`oneshot` on the router).

mod common;

use common::{call, call_raw, expect, Monitor};
use serde_json::{json, Value};
use std::net::SocketAddr;

fn ids(list: &Value) -> Vec<i64> {
    list["executions"]
        .as_array()
        .unwrap_or_else(|| panic!("no executions array in {list}"))
        .iter()
        .map(|e| e["id"].as_i64().expect("integer id"))
        .collect()
}

fn total(list: &Value) -> i64 {
    list["total"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer total in {list}"))
}

fn list(addr: SocketAddr, query: &str) -> Value {
    expect(addr, "GET", &format!("/api/executions{query}"), None, 200)
}

fn assert_rfc3339(value: &Value, what: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{what} {text:?} is not RFC 3339: {e}"))
}

/// Create → list → get → patch → steps → logs → artifacts, checking every answer.
fn whole_api_flow(profile: &str) {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(profile, dir.path());
    let addr = monitor.addr;

    let health = expect(addr, "GET", "/api/health", None, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["profile"], profile);

    // Create three; the first with every optional field.
    let alpha = expect(
        addr,
        "POST",
        "/api/executions",
        Some(
            &json!({"name": "alpha", "command": "make test", "metadata": {"branch": "main", "n": 3}}),
        ),
        201,
    );
    assert_eq!(alpha["name"], "alpha");
    assert_eq!(alpha["status"], "pending");
    assert_eq!(alpha["command"], "make test");
    assert_eq!(alpha["metadata"], json!({"branch": "main", "n": 3}));
    assert_rfc3339(&alpha["created_at"], "created_at");
    let alpha_id = alpha["id"].as_i64().expect("integer id");
    let beta_id = common::create_execution(addr, "beta");
    let gamma_id = common::create_execution(addr, "gamma");
    assert!(alpha_id != beta_id && beta_id != gamma_id && alpha_id != gamma_id);

    // Newest first, paged, counted.
    let all = list(addr, "");
    assert_eq!(ids(&all), [gamma_id, beta_id, alpha_id]);
    assert_eq!(total(&all), 3);
    let page = list(addr, "?limit=2");
    assert_eq!(ids(&page), [gamma_id, beta_id]);
    assert_eq!(total(&page), 3, "total counts every match, not the page");
    assert_eq!(ids(&list(addr, "?limit=2&offset=2")), [alpha_id]);
    let past_end = list(addr, "?offset=3");
    assert_eq!(ids(&past_end), Vec::<i64>::new());
    assert_eq!(total(&past_end), 3);

    // The execution alone, with no steps yet.
    let got = expect(
        addr,
        "GET",
        &format!("/api/executions/{alpha_id}"),
        None,
        200,
    );
    assert_eq!(got["id"], alpha_id);
    assert_eq!(got["name"], "alpha");
    assert_eq!(got["steps"], json!([]));

    // Status update, visible in GET and in the status filter.
    let patched = expect(
        addr,
        "PATCH",
        &format!("/api/executions/{alpha_id}"),
        Some(&json!({"status": "running"})),
        200,
    );
    assert_eq!(patched["status"], "running");
    assert_eq!(patched["id"], alpha_id);
    let running = list(addr, "?status=running");
    assert_eq!(ids(&running), [alpha_id]);
    assert_eq!(total(&running), 1);
    let pending = list(addr, "?status=pending&limit=1");
    assert_eq!(ids(&pending), [gamma_id]);
    assert_eq!(total(&pending), 2);
    let completed = list(addr, "?status=completed");
    assert_eq!(ids(&completed), Vec::<i64>::new());
    assert_eq!(total(&completed), 0);

    // Steps are indexed 0, 1, ... in the order added.
    let steps_path = format!("/api/executions/{alpha_id}/steps");
    for (expected_index, name) in [(0, "build"), (1, "test")] {
        let step = expect(
            addr,
            "POST",
            &steps_path,
            Some(&json!({ "name": name })),
            201,
        );
        assert_eq!(step["index"], expected_index, "step {name}: {step}");
        assert_eq!(step["name"], name);
        assert_eq!(step["status"], "pending");
    }
    let step = expect(
        addr,
        "PATCH",
        &format!("{steps_path}/1"),
        Some(&json!({"status": "completed"})),
        200,
    );
    assert_eq!(step["index"], 1);
    assert_eq!(step["status"], "completed");
    let got = expect(
        addr,
        "GET",
        &format!("/api/executions/{alpha_id}"),
        None,
        200,
    );
    assert_eq!(got["status"], "running");
    let steps = got["steps"].as_array().expect("steps array");
    let summary: Vec<(i64, &str, &str)> = steps
        .iter()
        .map(|s| {
            (
                s["index"].as_i64().unwrap(),
                s["name"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(0, "build", "pending"), (1, "test", "completed")],
        "{got}"
    );
    assert_eq!(got["step_count"], 2);
    // Another execution's steps start at 0 again.
    let other_step = expect(
        addr,
        "POST",
        &format!("/api/executions/{beta_id}/steps"),
        Some(&json!({"name": "only"})),
        201,
    );
    assert_eq!(other_step["index"], 0);

    // Log lines come back in order, byte for byte, each with a timestamp.
    let logs_path = format!("{steps_path}/0/logs");
    let first_batch = ["first line", "two\nlines", "back\\slash and \\n literal"];
    let appended = expect(
        addr,
        "POST",
        &logs_path,
        Some(&json!({ "lines": first_batch })),
        201,
    );
    assert_eq!(appended["appended"], 3, "{appended}");
    expect(
        addr,
        "POST",
        &logs_path,
        Some(&json!({"lines": ["last line"]})),
        201,
    );
    let logs = expect(addr, "GET", &logs_path, None, 200);
    let lines = logs["lines"].as_array().expect("lines array");
    let contents: Vec<&str> = lines
        .iter()
        .map(|l| l["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "first line",
            "two\nlines",
            "back\\slash and \\n literal",
            "last line"
        ]
    );
    let stamps: Vec<_> = lines
        .iter()
        .map(|l| assert_rfc3339(&l["timestamp"], "log timestamp"))
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "timestamps go backwards: {logs}"
    );
    let empty = expect(addr, "GET", &format!("{steps_path}/1/logs"), None, 200);
    assert_eq!(empty["lines"], json!([]));

    // The log file is where the design says, one file line per log line.
    let file = dir
        .path()
        .join("logs")
        .join(alpha_id.to_string())
        .join("step_0.log");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("log file {} unreadable: {e}", file.display()));
    assert_eq!(text.lines().count(), 4, "{}: {text:?}", file.display());
    assert!(text.contains("last line"));

    // Artifacts, listed in the order added, each only under its own execution.
    let artifacts_path = format!("/api/executions/{alpha_id}/artifacts");
    let report = expect(
        addr,
        "POST",
        &artifacts_path,
        Some(&json!({"name": "report.txt", "content": "all green"})),
        201,
    );
    assert_eq!(report["name"], "report.txt");
    assert_eq!(report["content"], "all green");
    assert_eq!(report["size"], 9);
    assert_eq!(report["execution_id"], alpha_id);
    expect(
        addr,
        "POST",
        &artifacts_path,
        Some(&json!({"name": "empty.log", "content": ""})),
        201,
    );
    let artifacts = expect(addr, "GET", &artifacts_path, None, 200);
    let names: Vec<&str> = artifacts["artifacts"]
        .as_array()
        .expect("artifacts array")
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["report.txt", "empty.log"]);
    let none = expect(
        addr,
        "GET",
        &format!("/api/executions/{gamma_id}/artifacts"),
        None,
        200,
    );
    assert_eq!(none["artifacts"], json!([]));
}

#[test]
fn whole_api_flow_optimized() {
    whole_api_flow("optimized");
}

#[test]
fn whole_api_flow_legacy() {
    whole_api_flow("legacy");
}

/// One request a client gets wrong, and the status it must get.
struct Bad {
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    status: u16,
}

fn bad(method: &'static str, path: impl Into<String>, body: Option<&str>, status: u16) -> Bad {
    Bad {
        method,
        path: path.into(),
        body: body.map(|b| b.as_bytes().to_vec()),
        status,
    }
}

/// The message of an error answer that is exactly `{"error": "<non-empty>"}` served as
/// `application/json`; `None` for anything else.
fn json_error(r: &common::Response) -> Option<String> {
    let json_type = r
        .header("content-type")
        .is_some_and(|t| t.split(';').next() == Some("application/json"));
    let body: Value = serde_json::from_slice(&r.body).ok()?;
    let object = body.as_object().filter(|o| o.len() == 1)?;
    let message = object.get("error")?.as_str()?;
    (json_type && !message.trim().is_empty()).then(|| message.to_string())
}

/// Everything a client can observe about the stored data.
fn snapshot(addr: SocketAddr, id: i64) -> Vec<Value> {
    vec![
        list(addr, "?limit=1000"),
        expect(addr, "GET", &format!("/api/executions/{id}"), None, 200),
        expect(
            addr,
            "GET",
            &format!("/api/executions/{id}/steps/0/logs"),
            None,
            200,
        ),
        expect(
            addr,
            "GET",
            &format!("/api/executions/{id}/artifacts"),
            None,
            200,
        ),
    ]
}

fn bad_input_is_rejected_without_changing_data(profile: &str) {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(profile, dir.path());
    let addr = monitor.addr;
    let id = common::create_execution(addr, "kept");
    let e = format!("/api/executions/{id}");
    expect(
        addr,
        "POST",
        &format!("{e}/steps"),
        Some(&json!({"name": "s"})),
        201,
    );
    expect(
        addr,
        "POST",
        &format!("{e}/steps/0/logs"),
        Some(&json!({"lines": ["kept line"]})),
        201,
    );
    expect(
        addr,
        "POST",
        &format!("{e}/artifacts"),
        Some(&json!({"name": "a", "content": "kept"})),
        201,
    );
    let before = snapshot(addr, id);
    assert_eq!(total(&before[0]), 1);

    let missing = format!("/api/executions/{}", id + 1_000_000);
    let huge_name = format!(r#"{{"name": "{}"}}"#, "x".repeat(1024 * 1024));
    let huge_content = format!(
        r#"{{"name": "big", "content": "{}"}}"#,
        "y".repeat(2 * 1024 * 1024)
    );
    let long_name = format!(r#"{{"name": "{}"}}"#, "n".repeat(1025));
    let running = Some(r#"{"status": "running"}"#);
    let cases = vec![
        // Malformed JSON.
        bad("POST", "/api/executions", Some(r#"{"name": "#), 400),
        bad("POST", "/api/executions", Some("not json"), 400),
        bad("POST", "/api/executions", Some(""), 400),
        bad(
            "POST",
            "/api/executions",
            Some(r#"{"name": "x"} trailing"#),
            400,
        ),
        bad("PATCH", e.clone(), Some("{status: running}"), 400),
        // Wrong types and missing fields.
        bad("POST", "/api/executions", Some(r#"{"name": 5}"#), 400),
        bad("POST", "/api/executions", Some(r#"["name"]"#), 400),
        bad("POST", "/api/executions", Some("{}"), 400),
        bad(
            "POST",
            "/api/executions",
            Some(r#"{"name": "x", "metadata": [1]}"#),
            400,
        ),
        bad("PATCH", e.clone(), Some(r#"{"status": 1}"#), 400),
        bad("POST", format!("{e}/steps"), Some(r#"{"name": null}"#), 400),
        bad(
            "POST",
            format!("{e}/steps/0/logs"),
            Some(r#"{"lines": "x"}"#),
            400,
        ),
        bad(
            "POST",
            format!("{e}/steps/0/logs"),
            Some(r#"{"lines": [1]}"#),
            400,
        ),
        bad(
            "POST",
            format!("{e}/artifacts"),
            Some(r#"{"name": "a"}"#),
            400,
        ),
        // Unknown fields.
        bad(
            "POST",
            "/api/executions",
            Some(r#"{"name": "x", "colour": "red"}"#),
            400,
        ),
        bad(
            "PATCH",
            e.clone(),
            Some(r#"{"status": "running", "extra": 1}"#),
            400,
        ),
        // Valid JSON, invalid values.
        bad("POST", "/api/executions", Some(r#"{"name": ""}"#), 422),
        bad("POST", "/api/executions", Some(r#"{"name": "   "}"#), 422),
        bad("POST", "/api/executions", Some(&long_name), 422),
        bad("PATCH", e.clone(), Some(r#"{"status": "done"}"#), 422),
        bad("PATCH", e.clone(), Some(r#"{"status": "RUNNING"}"#), 422),
        bad("POST", format!("{e}/steps"), Some(r#"{"name": ""}"#), 422),
        bad(
            "PATCH",
            format!("{e}/steps/0"),
            Some(r#"{"status": "nope"}"#),
            422,
        ),
        bad(
            "POST",
            format!("{e}/steps/0/logs"),
            Some(r#"{"lines": []}"#),
            422,
        ),
        bad(
            "POST",
            format!("{e}/artifacts"),
            Some(r#"{"name": "", "content": "x"}"#),
            422,
        ),
        // Unknown execution.
        bad("GET", missing.clone(), None, 404),
        bad("PATCH", missing.clone(), running, 404),
        bad(
            "POST",
            format!("{missing}/steps"),
            Some(r#"{"name": "s"}"#),
            404,
        ),
        bad("PATCH", format!("{missing}/steps/0"), running, 404),
        bad(
            "POST",
            format!("{missing}/steps/0/logs"),
            Some(r#"{"lines": ["l"]}"#),
            404,
        ),
        bad("GET", format!("{missing}/steps/0/logs"), None, 404),
        bad(
            "POST",
            format!("{missing}/artifacts"),
            Some(r#"{"name": "a", "content": "c"}"#),
            404,
        ),
        bad("GET", format!("{missing}/artifacts"), None, 404),
        // Unknown step.
        bad("PATCH", format!("{e}/steps/5"), running, 404),
        bad(
            "POST",
            format!("{e}/steps/5/logs"),
            Some(r#"{"lines": ["l"]}"#),
            404,
        ),
        bad("GET", format!("{e}/steps/5/logs"), None, 404),
        // Ids that are not ids.
        bad("GET", "/api/executions/abc", None, 400),
        bad("GET", "/api/executions/-1", None, 400),
        bad("GET", "/api/executions/1.5", None, 400),
        bad("GET", "/api/executions/99999999999999999999", None, 400),
        bad("PATCH", "/api/executions/abc", running, 400),
        bad(
            "POST",
            "/api/executions/abc/steps",
            Some(r#"{"name": "s"}"#),
            400,
        ),
        bad("GET", format!("{e}/steps/x/logs"), None, 400),
        bad("PATCH", format!("{e}/steps/x"), running, 400),
        bad("GET", "/api/executions/abc/artifacts", None, 400),
        // Bodies over the 1 MiB limit.
        bad("POST", "/api/executions", Some(&huge_name), 413),
        bad("POST", format!("{e}/artifacts"), Some(&huge_content), 413),
        // Bad list queries.
        bad("GET", "/api/executions?limit=0", None, 400),
        bad("GET", "/api/executions?limit=1001", None, 400),
        bad("GET", "/api/executions?limit=abc", None, 400),
        bad("GET", "/api/executions?limit=", None, 400),
        bad("GET", "/api/executions?offset=-1", None, 400),
        bad("GET", "/api/executions?offset=x", None, 400),
        bad("GET", "/api/executions?status=nope", None, 400),
        // Unknown routes and methods.
        bad("GET", "/api/nope", None, 404),
        bad("GET", "/", None, 404),
        bad(
            "POST",
            "/api/executions/1/steps/0/logs/extra",
            Some("{}"),
            404,
        ),
        bad("DELETE", e.clone(), None, 405),
    ];

    let mut failures = Vec::new();
    for case in &cases {
        let r = match &case.body {
            Some(body) => call_raw(addr, case.method, &case.path, body),
            None => call(addr, case.method, &case.path, None),
        };
        let what = format!(
            "{} {} {:?}",
            case.method,
            case.path.chars().take(80).collect::<String>(),
            case.body
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(60)]).into_owned())
        );
        if r.status != case.status || json_error(&r).is_none() {
            failures.push(format!(
                "{what}: expected {} with {{\"error\": \"...\"}}, got {} {:?}",
                case.status,
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        assert!(r.status < 500, "{what} got a server error {}", r.status);
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad requests answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    let after = snapshot(addr, id);
    assert_eq!(
        total(&after[0]),
        1,
        "a rejected request created an execution"
    );
    assert_eq!(before, after, "a rejected request changed stored data");
    // The monitor is still healthy after all of that.
    expect(addr, "GET", "/api/health", None, 200);
}

#[test]
fn bad_input_is_rejected_without_changing_data_optimized() {
    bad_input_is_rejected_without_changing_data("optimized");
}

#[test]
fn bad_input_is_rejected_without_changing_data_legacy() {
    bad_input_is_rejected_without_changing_data("legacy");
}

fn count(stats: &Value, pointer: &str) -> u64 {
    stats
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no unsigned integer at {pointer} in {stats}"))
}

/// Runs a known number of inserts and updates; returns (inserts, updates).
fn some_writes(addr: SocketAddr) -> (u64, u64) {
    let mut inserts = 0;
    let mut updates = 0;
    for n in 0..5 {
        let id = common::create_execution(addr, &format!("stats {n}"));
        let e = format!("/api/executions/{id}");
        expect(
            addr,
            "PATCH",
            &e,
            Some(&json!({"status": "completed"})),
            200,
        );
        expect(
            addr,
            "POST",
            &format!("{e}/steps"),
            Some(&json!({"name": "s"})),
            201,
        );
        expect(
            addr,
            "POST",
            &format!("{e}/artifacts"),
            Some(&json!({"name": "a", "content": "c"})),
            201,
        );
        inserts += 3;
        updates += 1;
    }
    (inserts, updates)
}

#[test]
fn performance_stats_count_writes_optimized() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let (inserts, updates) = some_writes(monitor.addr);
    let stats = expect(monitor.addr, "GET", "/performance/stats", None, 200);
    assert_eq!(stats["profile"], "optimized");
    assert_eq!(count(&stats, "/db/insert/count"), inserts, "{stats}");
    assert_eq!(count(&stats, "/db/update/count"), updates, "{stats}");
    let batches = count(&stats, "/group_commit/batches");
    assert!(batches > 0, "{stats}");
    assert_eq!(
        count(&stats, "/group_commit/writes"),
        inserts + updates,
        "every write went through a group commit: {stats}"
    );
    assert_eq!(
        count(&stats, "/db/commit/count"),
        batches,
        "one commit per batch: {stats}"
    );
    assert!(count(&stats, "/rss_bytes") > 0, "{stats}");
    assert!(
        count(&stats, "/rss_anon_bytes") + count(&stats, "/rss_file_bytes")
            <= count(&stats, "/rss_bytes"),
        "{stats}"
    );
    assert!(stats["cpu_s"].as_f64().is_some_and(|s| s > 0.0), "{stats}");
}

#[test]
fn performance_stats_count_writes_legacy() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("legacy", dir.path());
    let (inserts, updates) = some_writes(monitor.addr);
    let stats = expect(monitor.addr, "GET", "/performance/stats", None, 200);
    assert_eq!(stats["profile"], "legacy");
    assert_eq!(count(&stats, "/db/insert/count"), inserts, "{stats}");
    assert_eq!(count(&stats, "/db/update/count"), updates, "{stats}");
    assert_eq!(
        count(&stats, "/db/commit/count"),
        inserts + updates,
        "one transaction per write: {stats}"
    );
    assert!(count(&stats, "/rss_bytes") > 0, "{stats}");
    assert!(stats["cpu_s"].as_f64().is_some_and(|s| s > 0.0), "{stats}");
}

#[test]
fn listing_pages_through_many_executions_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let addr = monitor.addr;
    let created: Vec<i64> = (0..25)
        .map(|n| common::create_execution(addr, &format!("e{n}")))
        .collect();
    let mut seen = Vec::new();
    for offset in (0..30).step_by(7) {
        let page = list(addr, &format!("?limit=7&offset={offset}"));
        assert_eq!(total(&page), 25);
        seen.extend(ids(&page));
    }
    let newest_first: Vec<i64> = created.into_iter().rev().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(ids(&list(addr, "?limit=1000")).len(), 25);
    // Unknown parameters are ignored.
    assert_eq!(total(&list(addr, "?cache=123")), 25);
}

/// Sends raw requests and checks each gets `status` with a JSON `{"error": ...}` body;
/// returns a line per wrong answer.
fn wrong_answers(addr: SocketAddr, cases: &[(Vec<u8>, u16)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (request, status) in cases {
        let head = String::from_utf8_lossy(&request[..request.len().min(200)]).into_owned();
        let head = head.lines().next().unwrap_or_default().to_string();
        match common::send_bytes(addr, request) {
            Ok(r) if r.status == *status && json_error(&r).is_some() => {}
            Ok(r) => failures.push(format!(
                "{head:?}: expected {status} with a JSON {{\"error\"}}, got {} {:?} {:?}",
                r.status,
                r.header("content-type"),
                String::from_utf8_lossy(&r.body)
            )),
            Err(e) => failures.push(format!("{head:?}: no answer: {e}")),
        }
    }
    failures
}

/// Path, query and body rejections, unknown routes and wrong methods are all JSON errors with
/// a 4xx status, and change nothing.
#[test]
fn every_rejection_is_a_json_error() {
    use common::request_bytes as req;
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let addr = monitor.addr;
    let id = common::create_execution(addr, "kept");
    let e = format!("/api/executions/{id}");
    expect(
        addr,
        "POST",
        &format!("{e}/steps"),
        Some(&json!({"name": "s"})),
        201,
    );
    let json_type = [("Content-Type", "application/json")];
    let running: &[u8] = br#"{"status": "running"}"#;
    let cases = vec![
        // Path parameters that are not UTF-8 once decoded.
        (req("GET", "/api/executions/%FF", &[], None), 400),
        (
            req("GET", "/api/executions/%C3%28/artifacts", &[], None),
            400,
        ),
        (req("GET", &format!("{e}/steps/%FF/logs"), &[], None), 400),
        (
            req("PATCH", "/api/executions/%FF", &json_type, Some(running)),
            400,
        ),
        (
            req(
                "PATCH",
                &format!("{e}/steps/%E2%82"),
                &json_type,
                Some(running),
            ),
            400,
        ),
        (
            req(
                "POST",
                "/api/executions/%FF/steps",
                &json_type,
                Some(br#"{"name": "s"}"#),
            ),
            400,
        ),
        // Query values, decoded before they are judged.
        (req("GET", "/api/executions?limit=%FF", &[], None), 400),
        (req("GET", "/api/executions?status=%FF", &[], None), 400),
        (req("GET", "/api/executions?offset=%2D1", &[], None), 400),
        (
            req("GET", "/api/executions?limit=1%30%30%31", &[], None),
            400,
        ),
        // Unknown routes and methods.
        (req("GET", "/api/nope/%FF", &[], None), 404),
        (req("PUT", "/api/health", &[], None), 405),
        (req("DELETE", "/api/executions", &[], None), 405),
        (
            req("POST", &format!("{e}/steps/0"), &json_type, Some(b"{}")),
            405,
        ),
        // Bodies: a declared type that is not JSON, bytes that are not UTF-8, a lone surrogate.
        (
            req(
                "POST",
                "/api/executions",
                &[("Content-Type", "text/plain")],
                Some(br#"{"name": "x"}"#),
            ),
            415,
        ),
        (
            req(
                "POST",
                "/api/executions",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(b"name=x"),
            ),
            415,
        ),
        (
            req("PATCH", &e, &[("Content-Type", "text/json")], Some(running)),
            415,
        ),
        (
            req(
                "POST",
                "/api/executions",
                &json_type,
                Some(b"{\"name\": \"\xff\"}"),
            ),
            400,
        ),
        (
            req(
                "POST",
                "/api/executions",
                &json_type,
                Some(br#"{"name": "\ud800"}"#),
            ),
            400,
        ),
        (
            req(
                "POST",
                "/api/executions",
                &json_type,
                Some(br#"{"name": "x", "metadata": 5}"#),
            ),
            400,
        ),
    ];
    let failures = wrong_answers(addr, &cases);
    assert!(
        failures.is_empty(),
        "{} of {} requests answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Percent-encoded query values mean what they decode to.
    assert_eq!(total(&list(addr, "?limit=%31&status=%70ending")), 1);
    assert_eq!(total(&list(addr, "?status=running")), 0);
    // A JSON type with parameters, or none at all, is still a JSON body.
    for headers in [
        &[("Content-Type", "application/json; charset=utf-8")][..],
        &[],
    ] {
        let r = common::send_bytes(addr, &req("PATCH", &e, headers, Some(running))).unwrap();
        assert_eq!(
            r.status,
            200,
            "{headers:?}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_eq!(
        total(&list(addr, "")),
        1,
        "a rejected request created an execution"
    );
}

/// RFC 9112 §6.1: a transfer coding the server does not understand gets 501, and the request
/// is not acted on; plain chunked bodies still work.
#[test]
fn unknown_transfer_codings_get_501() {
    use common::request_bytes as req;
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let addr = monitor.addr;
    let plain = br#"{"name": "gzipped?"}"#;
    let chunked = b"14\r\n{\"name\": \"gzipped?\"}\r\n0\r\n\r\n";
    let json_type = ("Content-Type", "application/json");
    let cases = vec![
        (
            req(
                "POST",
                "/api/executions",
                &[json_type, ("Transfer-Encoding", "gzip, chunked")],
                None,
            ),
            501,
        ),
        (
            [
                req(
                    "POST",
                    "/api/executions",
                    &[json_type, ("Transfer-Encoding", "gzip, chunked")],
                    None,
                ),
                plain.to_vec(),
            ]
            .concat(),
            501,
        ),
        (
            [
                req(
                    "POST",
                    "/api/executions",
                    &[json_type, ("Transfer-Encoding", "gzip, chunked")],
                    None,
                ),
                chunked.to_vec(),
            ]
            .concat(),
            501,
        ),
        (
            [
                req(
                    "POST",
                    "/api/executions",
                    &[
                        json_type,
                        ("Transfer-Encoding", "deflate"),
                        ("Transfer-Encoding", "chunked"),
                    ],
                    None,
                ),
                chunked.to_vec(),
            ]
            .concat(),
            501,
        ),
        (
            [
                req(
                    "GET",
                    "/api/health",
                    &[("Transfer-Encoding", "x-custom, chunked")],
                    None,
                ),
                b"0\r\n\r\n".to_vec(),
            ]
            .concat(),
            501,
        ),
    ];
    let failures = wrong_answers(addr, &cases);
    assert!(
        failures.is_empty(),
        "{} of {} requests answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        total(&list(addr, "")),
        0,
        "a request with an unknown coding was acted on"
    );
    let ok = [
        req(
            "POST",
            "/api/executions",
            &[json_type, ("Transfer-Encoding", "chunked")],
            None,
        ),
        chunked.to_vec(),
    ]
    .concat();
    let r = common::send_bytes(addr, &ok).unwrap();
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(total(&list(addr, "")), 1);
}

/// Metadata reads back as the client wrote it: numbers that do not fit an f64 or u64 exactly
/// keep their digits, in the create answer, the GET and the list.
#[test]
fn metadata_reads_back_as_sent() {
    for profile in ["optimized", "legacy"] {
        let dir = tempfile::tempdir().unwrap();
        let monitor = Monitor::start(profile, dir.path());
        let addr = monitor.addr;
        let metadata = r#"{"f": 1.773816755927855e-92, "big": 18446744073709551616, "neg": -0.0, "nested": {"z": [1.10, 2], "a": "\u00e9\n"}}"#;
        let body = format!(r#"{{"name": "numbers", "metadata": {metadata}}}"#);
        let created = call_raw(addr, "POST", "/api/executions", body.as_bytes());
        assert_eq!(
            created.status,
            201,
            "{profile}: {:?}",
            String::from_utf8_lossy(&created.body)
        );
        let id = created.json()["id"].as_i64().expect("id");
        let get = common::get(addr, &format!("/api/executions/{id}"));
        let listed = common::get(addr, "/api/executions");
        for (what, r) in [("create", &created), ("get", &get), ("list", &listed)] {
            let text = String::from_utf8_lossy(&r.body);
            assert!(
                text.contains(&format!(r#""metadata":{metadata}"#)),
                "{profile}: {what} does not carry the metadata as sent {metadata}: {text}"
            );
        }
        // JSON that common parsers cannot hold (a number beyond any float) is still refused.
        let r = call_raw(
            addr,
            "POST",
            "/api/executions",
            br#"{"name": "x", "metadata": {"e": 1E400}}"#,
        );
        assert_eq!(
            r.status,
            400,
            "{profile}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
    }
}

/// Names are limited to 1024 characters, as the OpenAPI document's `maxLength` says (JSON
/// Schema counts characters): a name of 1024 two-byte characters was refused as 2048 bytes.
#[test]
fn names_are_limited_in_characters_as_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let addr = monitor.addr;
    let long = "é".repeat(1024);
    let created = expect(
        addr,
        "POST",
        "/api/executions",
        Some(&json!({"name": long})),
        201,
    );
    assert_eq!(created["name"], long.as_str());
    let id = created["id"].as_i64().unwrap();
    expect(
        addr,
        "POST",
        &format!("/api/executions/{id}/steps"),
        Some(&json!({"name": long})),
        201,
    );
    expect(
        addr,
        "POST",
        &format!("/api/executions/{id}/artifacts"),
        Some(&json!({"name": long, "content": ""})),
        201,
    );
    let too_long = "é".repeat(1025);
    let r = call(
        addr,
        "POST",
        "/api/executions",
        Some(&json!({"name": too_long})),
    );
    assert_eq!(r.status, 422, "{:?}", String::from_utf8_lossy(&r.body));
}

/// Handler tests without a socket: the router is a `tower::Service`.
mod in_process {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::{json, Value};
    use stepflow_bench::monitor::api::{app, AppState};
    use stepflow_bench::monitor::storage::{Profile, Storage, StorageConfig};
    use tower::ServiceExt;

    fn storage(dir: &std::path::Path, profile: Profile) -> Storage {
        Storage::open(&StorageConfig::new(dir, profile)).expect("storage opens on a fresh dir")
    }

    async fn send(storage: &Storage, request: Request<Body>) -> (StatusCode, Value) {
        let response = app(AppState::new(storage.clone()))
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body collects")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{status} body is not JSON ({e}): {bytes:?}");
        });
        (status, body)
    }

    fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
        Request::post(uri)
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap()
    }

    #[tokio::test]
    async fn health_reports_profile_and_journal_mode() {
        for (profile, journal) in [(Profile::Optimized, "wal"), (Profile::Legacy, "delete")] {
            let dir = tempfile::tempdir().unwrap();
            let storage = storage(dir.path(), profile);
            let request = Request::get("/api/health").body(Body::empty()).unwrap();
            let (status, body) = send(&storage, request).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["status"], "ok");
            assert_eq!(body["profile"], profile.as_str());
            assert_eq!(body["journal_mode"], journal);
            storage.close();
        }
    }

    #[tokio::test]
    async fn created_execution_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path(), Profile::Optimized);
        let (status, created) = send(
            &storage,
            post("/api/executions", json!({"name": "in-process"}).to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_i64().unwrap();
        let request = Request::get(format!("/api/executions/{id}"))
            .body(Body::empty())
            .unwrap();
        let (status, got) = send(&storage, request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["name"], "in-process");
        assert_eq!(got["status"], "pending");
        assert_eq!(got["steps"], json!([]));
        storage.close();
    }

    #[tokio::test]
    async fn client_mistakes_get_json_errors() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path(), Profile::Optimized);
        let oversized = format!(r#"{{"name": "{}"}}"#, "z".repeat(1024 * 1024 + 1));
        let cases = [
            (post("/api/executions", "{"), StatusCode::BAD_REQUEST),
            (
                post("/api/executions", r#"{"name": ""}"#),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                post("/api/executions", oversized),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                Request::get("/api/executions/7")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::NOT_FOUND,
            ),
            (
                Request::get("/api/executions?limit=0")
                    .body(Body::empty())
                    .unwrap(),
                StatusCode::BAD_REQUEST,
            ),
            (
                Request::get("/nowhere").body(Body::empty()).unwrap(),
                StatusCode::NOT_FOUND,
            ),
        ];
        for (request, expected) in cases {
            let what = format!("{} {}", request.method(), request.uri());
            let (status, body) = send(&storage, request).await;
            assert_eq!(status, expected, "{what}: {body}");
            assert!(
                body["error"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: {body}"
            );
        }
        let request = Request::get("/api/executions").body(Body::empty()).unwrap();
        let (_, list) = send(&storage, request).await;
        assert_eq!(list["total"], 0, "nothing was stored: {list}");
        storage.close();
    }
}
