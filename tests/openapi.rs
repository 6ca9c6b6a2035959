//! The monitor's OpenAPI document: the committed copy (`schema/openapi.json`) is what the
//! server serves, and the document and the router agree on every path and method.
//!
//! After a change to the API, regenerate the committed copy with
//! `UPDATE_SCHEMA=1 cargo test --test openapi`.

mod common;

use common::{call, expect, Monitor};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/openapi.json")
}

#[test]
fn committed_schema_is_what_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let served = call(monitor.addr, "GET", "/api/openapi.json", None);
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    let served = String::from_utf8(served.body).expect("the document is UTF-8");
    assert_eq!(
        served,
        stepflow_bench::monitor::openapi::document(),
        "the served document is the one the library builds"
    );
    let path = committed_path();
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &served).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "{} is not what the server serves; regenerate it with \
         `UPDATE_SCHEMA=1 cargo test --test openapi` and commit it",
        path.display()
    );
}

fn document() -> Value {
    serde_json::from_str(stepflow_bench::monitor::openapi::document()).unwrap()
}

const METHODS: [&str; 5] = ["GET", "POST", "PATCH", "PUT", "DELETE"];

/// Every documented operation is routed (answers something other than 404 "no route" and
/// 405), and every other method on a documented path gets 405 with an `Allow` header that
/// names exactly the documented methods (and HEAD, which HTTP gives every GET). A route added
/// to the router under a documented path, or a documented operation with no route, fails here.
#[test]
fn documented_operations_and_routes_agree() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let addr = monitor.addr;
    let id = common::create_execution(addr, "routes");
    expect(
        addr,
        "POST",
        &format!("/api/executions/{id}/steps"),
        Some(&json!({"name": "s"})),
        201,
    );
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 9, "{paths:?}");
    for (template, item) in paths {
        let path = template
            .replace("{id}", &id.to_string())
            .replace("{index}", "0");
        let documented: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| METHODS.contains(&k.to_ascii_uppercase().as_str()))
            .map(|k| k.to_ascii_uppercase())
            .collect();
        assert!(!documented.is_empty(), "{template} documents no operation");
        for method in METHODS {
            let body = (method != "GET").then(|| json!({}));
            let answer = call(addr, method, &path, body.as_ref());
            if documented.contains(method) {
                assert!(
                    answer.status != 405 && !is_no_route(&answer),
                    "{method} {template} is documented but not routed: {} {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                );
                let responses = &item[method.to_ascii_lowercase()]["responses"];
                assert!(
                    responses.get(answer.status.to_string()).is_some(),
                    "{method} {template} answered {}, which it does not document",
                    answer.status
                );
            } else {
                assert_eq!(answer.status, 405, "{method} {template}");
                let mut expected = documented.clone();
                if expected.contains("GET") {
                    expected.insert("HEAD".into());
                }
                let allowed: BTreeSet<String> = answer
                    .header("allow")
                    .unwrap_or_else(|| panic!("405 on {method} {template} has no Allow"))
                    .split(',')
                    .map(|m| m.trim().to_string())
                    .collect();
                assert_eq!(
                    allowed, expected,
                    "{template}: the router's methods (Allow) are not the documented ones"
                );
            }
        }
    }
}

fn is_no_route(answer: &common::Response) -> bool {
    answer.status == 404
        && serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|b| b["error"].as_str().map(|e| e.starts_with("no route")))
            .unwrap_or(false)
}

/// Every schema the document defines is valid JSON Schema, and the answers of one whole flow
/// validate against the schemas the document gives for them.
#[test]
fn answers_match_their_documented_schemas() {
    let doc = document();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let addr = monitor.addr;
    let created = expect(
        addr,
        "POST",
        "/api/executions",
        Some(
            &json!({"name": "flow", "metadata": {"big": u64::MAX, "f": 1.5, "nested": {"a": [1, null]}}}),
        ),
        201,
    );
    let id = created["id"].as_i64().unwrap();
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/health".into(), None),
        ("GET", "/api/executions?limit=5".into(), None),
        ("GET", format!("/api/executions/{id}"), None),
        (
            "PATCH",
            format!("/api/executions/{id}"),
            Some(json!({"status": "running"})),
        ),
        (
            "POST",
            format!("/api/executions/{id}/steps"),
            Some(json!({"name": "build"})),
        ),
        (
            "PATCH",
            format!("/api/executions/{id}/steps/0"),
            Some(json!({"status": "completed"})),
        ),
        (
            "POST",
            format!("/api/executions/{id}/steps/0/logs"),
            Some(json!({"lines": ["a", "b\nc"]})),
        ),
        ("GET", format!("/api/executions/{id}/steps/0/logs"), None),
        (
            "POST",
            format!("/api/executions/{id}/artifacts"),
            Some(json!({"name": "out.txt", "content": "hi"})),
        ),
        ("GET", format!("/api/executions/{id}/artifacts"), None),
        ("GET", format!("/api/executions/{id}"), None),
        ("GET", "/api/executions/99999".into(), None),
        ("GET", "/api/executions/x".into(), None),
        (
            "POST",
            "/api/executions".into(),
            Some(json!({"name": " \u{3000}"})),
        ),
        ("GET", "/performance/stats".into(), None),
        ("GET", "/api/openapi.json".into(), None),
    ];
    for (method, path, body) in cases {
        let answer = call(addr, method, &path, body.as_ref());
        let template = template_of(&doc, &path);
        let response = &doc["paths"][&template][method.to_ascii_lowercase()]["responses"]
            [answer.status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {}, undocumented",
            answer.status
        );
        let schema = &response["content"]["application/json"]["schema"];
        let errors = validate(&doc, schema, &answer.json());
        assert!(
            errors.is_empty(),
            "{method} {path} ({}) does not match its schema: {errors:?}\n{}",
            answer.status,
            answer.json()
        );
    }
}

/// The path template of the document that `path` (query left out) falls under.
fn template_of(doc: &Value, path: &str) -> String {
    let path = path.split('?').next().unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .find(|t| {
            let tparts: Vec<&str> = t.split('/').collect();
            tparts.len() == parts.len()
                && tparts
                    .iter()
                    .zip(&parts)
                    .all(|(t, p)| t.starts_with('{') || t == p)
        })
        .unwrap_or_else(|| panic!("no template for {path}"))
        .clone()
}

/// Validates `value` against `schema`, resolving `#/components/...` references in `doc`.
fn validate(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("bad schema {schema}: {e}"));
    validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The names' pattern in the document is the one `check_name` is written against.
#[test]
fn name_patterns_are_the_checked_one() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for body in ["CreateExecution", "NameBody", "ArtifactBody"] {
        let name = &schemas[body]["properties"]["name"];
        assert_eq!(
            name["pattern"],
            stepflow_bench::monitor::api::NAME_PATTERN,
            "{body}"
        );
        assert_eq!(
            name["maxLength"],
            stepflow_bench::monitor::api::MAX_NAME_CHARS,
            "{body}"
        );
    }
}
