//! The generator against services that are not the bundled monitor: a StepFlow-shaped one
//! of another make (string ids, capped pages, no step counts in the list; see
//! `common/lookalike.rs`), the same one losing acknowledged writes, and services that are
//! not StepFlow-shaped at all. The real `stepflow-bench` binary runs as a child process with
//! `--target`; every server is real, on 127.0.0.1 port 0.

mod common;

use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use common::lookalike::{Drops, Lookalike};
use common::{assert_correct, parse_results, read_results, run_bench, uint, Finished};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Longest a short run may take, integrity read-back included.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs take turns: two at once on two cores would starve each other.
static LOAD: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `stepflow-bench <args> --no-progress --out <tmp>/r.json` and returns how it ended and
/// the results it wrote (checked against the schema).
fn run(args: &[&str]) -> (Finished, Value) {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.json");
    let mut all = args.to_vec();
    all.extend(["--no-progress", "--out", out.to_str().expect("UTF-8 path")]);
    let fin = run_bench(dir.path(), &all, RUN_TIMEOUT);
    let results = read_results(&out);
    assert_eq!(
        i64::from(fin.code),
        results["exit_code"].as_i64().expect("exit_code"),
        "{args:?}: exit code and results disagree; stderr: {}",
        fin.stderr
    );
    (fin, results)
}

fn warnings(r: &Value) -> Vec<&str> {
    r["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Every built-in scenario against a service with string ids

#[test]
fn api_runs_against_string_ids() {
    let service = Lookalike::start(Drops::default());
    let url = service.url();
    let (fin, r) = run(&[
        "api",
        "--target",
        &url,
        "--requests",
        "50",
        "--warmup",
        "0s",
    ]);
    assert_correct("api", &fin, &r);
    assert!(r["profile"].is_null());
    for op in ["health", "list_executions", "get_execution"] {
        assert_eq!(uint(&r, &format!("/operations/{op}/count")), 50, "{op}");
    }
    // The seed executions were created there, with the service's own ids.
    assert!(service.stored() >= 200, "{} stored", service.stored());
}

#[test]
fn stress_reads_back_every_write_to_a_service_with_string_ids() {
    let service = Lookalike::start(Drops::default());
    let url = service.url();
    let (fin, r) = run(&[
        "stress",
        "--target",
        &url,
        "--duration",
        "2",
        "--warmup",
        "0s",
        "--concurrency",
        "4",
    ]);
    assert_correct("stress", &fin, &r);
    let checked = uint(&r, "/integrity/checked");
    assert!(checked > 500, "only {checked} writes checked");
    assert!(uint(&r, "/operations/create_execution/count") > 0);
    // Pages of 100 (the service refuses 1000) covered every execution: none had to be
    // found by id alone.
    assert!(
        !warnings(&r).iter().any(|w| w.contains("found by id")),
        "{:?}",
        warnings(&r)
    );
    assert!(fin.stdout.contains("lost writes: 0"), "{}", fin.stdout);
}

#[test]
fn concurrent_lists_every_execution_of_a_service_with_string_ids() {
    let service = Lookalike::start(Drops::default());
    let url = service.url();
    let (fin, r) = run(&["concurrent", "--target", &url, "--concurrency", "50"]);
    assert_correct("concurrent", &fin, &r);
    assert_eq!(uint(&r, "/extra/created"), 50);
    assert_eq!(uint(&r, "/integrity/checked"), 50);
    assert_eq!(service.stored(), 50);
}

#[test]
fn simulate_reads_back_every_flow_of_a_service_with_string_ids() {
    let service = Lookalike::start(Drops::default());
    let url = service.url();
    let (fin, r) = run(&[
        "simulate",
        "--target",
        &url,
        "--executions",
        "6",
        "--concurrency",
        "2",
    ]);
    assert_correct("simulate", &fin, &r);
    assert_eq!(uint(&r, "/extra/executions_completed"), 6);
    // 6 executions × (1 + 4 steps × (the step, its completion, 5 lines) + 2 artifacts).
    assert_eq!(
        uint(&r, "/integrity/checked"),
        6 * (1 + 4 * (1 + 1 + 5) + 2)
    );
    assert!(fin.stdout.contains("lost writes: 0"), "{}", fin.stdout);
}

#[test]
fn run_ci_passes_against_a_service_with_string_ids() {
    let service = Lookalike::start(Drops::default());
    let url = service.url();
    let (fin, r) = run(&[
        "run",
        "ci",
        "--target",
        &url,
        "--duration",
        "2s",
        "--warmup",
        "0s",
    ]);
    assert_correct("run ci", &fin, &r);
    assert!(uint(&r, "/integrity/checked") > 0);
    // Every operation of the mix ran, the step and log ones included.
    for op in ["update_step", "append_logs", "get_logs", "add_artifact"] {
        assert!(uint(&r, &format!("/operations/{op}/count")) > 0, "{op}");
    }
}

// ---------------------------------------------------------------------------------------------
// A service that loses acknowledged writes: the read-back must say so

#[test]
fn stress_counts_acknowledged_creates_that_were_not_stored_as_lost() {
    let service = Lookalike::start(Drops {
        every_nth_create: 7,
        ..Drops::default()
    });
    let url = service.url();
    let (fin, r) = run(&[
        "stress",
        "--target",
        &url,
        "--duration",
        "2",
        "--warmup",
        "0s",
        "--concurrency",
        "4",
    ]);
    assert_eq!(fin.code, 1, "stderr: {}", fin.stderr);
    let dropped = service.shared.dropped_creates.load(Ordering::Relaxed);
    let lost = uint(&r, "/integrity/lost_writes");
    assert!(dropped > 0);
    // Each dropped create is one lost write (its later updates failed with 404, so nothing
    // else about it was acknowledged); nothing else was lost.
    assert_eq!(lost, dropped, "{}", r["integrity"]);
    let details = r["integrity"]["details"].as_array().expect("details");
    assert!(
        details.iter().any(|d| d
            .as_str()
            .is_some_and(|d| d.contains("acknowledged but not stored"))),
        "{details:?}"
    );
    assert!(
        fin.stdout.contains(&format!("lost writes: {lost}")),
        "{}",
        fin.stdout
    );
    assert!(fin.stdout.contains("lost writes"), "{}", fin.stdout);
}

#[test]
fn simulate_fails_on_log_lines_acknowledged_but_not_stored() {
    // Every append is answered 201, so the run has no errors at all: only the read-back can
    // tell that some lines were never kept.
    let service = Lookalike::start(Drops {
        every_nth_append: 5,
        ..Drops::default()
    });
    let url = service.url();
    let (fin, r) = run(&[
        "simulate",
        "--target",
        &url,
        "--executions",
        "5",
        "--concurrency",
        "1",
    ]);
    assert_eq!(fin.code, 1, "stderr: {}", fin.stderr);
    assert_eq!(uint(&r, "/totals/errors"), 0);
    let dropped = service.shared.dropped_appends.load(Ordering::Relaxed);
    assert_eq!(dropped, 4, "5 × 4 appends, every 5th dropped");
    assert_eq!(uint(&r, "/integrity/lost_writes"), dropped);
    assert!(
        r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["passed"] == true),
        "{}",
        r["targets"]
    );
    assert!(fin.stdout.contains("FAIL: 4 lost writes"), "{}", fin.stdout);
}

// ---------------------------------------------------------------------------------------------
// Services that are not StepFlow-shaped

/// Serves `app` on 127.0.0.1:0 on a runtime of its own.
fn serve(app: Router) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    addr
}

const PAGE_404: &str = "<html><body><h1>404 Not Found</h1></body></html>";

/// A web server that has nothing under /api: every path answers 404 with an HTML page;
/// counts the requests that were not GETs.
fn html_404_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = std::sync::Arc::clone(&writes);
    let app = Router::new().fallback(move |method: axum::http::Method| {
        let seen = std::sync::Arc::clone(&seen);
        async move {
            if method != axum::http::Method::GET {
                seen.fetch_add(1, Ordering::Relaxed);
            }
            (StatusCode::NOT_FOUND, Html(PAGE_404))
        }
    });
    (serve(app), writes)
}

/// Checks a run that was refused before any load: exit 3, the request and the answer named,
/// nothing measured and no warm-up claimed, in the report and in the results.
fn assert_refused_before_load(fin: &Finished, r: &Value, pieces: &[&str]) {
    assert_eq!(fin.code, 3, "stderr: {}", fin.stderr);
    for piece in pieces {
        assert!(
            fin.stderr.contains(piece),
            "{piece:?} missing from stderr: {}",
            fin.stderr
        );
    }
    let aborted = r["aborted"].as_str().expect("aborted");
    assert!(aborted.contains(pieces[0]), "{aborted}");
    assert_eq!(uint(r, "/totals/count"), 0);
    assert_eq!(r["warmup_s"], 0.0);
    let header = fin.stdout.lines().next().unwrap_or_default();
    assert!(header.contains("nothing measured"), "{header}");
    assert!(!fin.stdout.contains("warm-up"), "{}", fin.stdout);
    assert!(fin.stdout.contains("ABORTED"), "{}", fin.stdout);
}

#[test]
fn a_web_server_answering_404_is_refused_naming_the_request_and_the_answer() {
    let (addr, writes) = html_404_server();
    let url = format!("http://{addr}");
    for command in [
        &["stress", "--duration", "2"][..],
        &["concurrent"],
        &["api"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--target", &url]);
        let (fin, r) = run(&args);
        let request = if command[0] == "api" {
            format!("GET {url}/api/health answered HTTP 404")
        } else {
            format!("GET {url}/api/executions?limit=1 answered HTTP 404")
        };
        assert_refused_before_load(
            &fin,
            &r,
            &[
                &request,
                "<html><body><h1>404 Not Found",
                "not look like a StepFlow",
            ],
        );
    }
    assert_eq!(
        writes.load(Ordering::Relaxed),
        0,
        "writes reached the server"
    );
}

#[test]
fn an_html_page_for_the_execution_list_is_refused() {
    let app = Router::new().fallback(|| async { Html("<!doctype html><title>Shop</title>") });
    let url = format!("http://{}", serve(app));
    let (fin, r) = run(&["simulate", "--target", &url, "--executions", "2"]);
    assert_refused_before_load(
        &fin,
        &r,
        &[
            &format!("GET {url}/api/executions?limit=1 answered HTTP 200"),
            "<!doctype html>",
            "not a list of executions",
        ],
    );
}

#[test]
fn a_service_that_cannot_create_fails_in_set_up_without_a_warm_up() {
    // It lists (nothing) like StepFlow but has no POST: set-up's first create fails.
    let app = Router::new().route(
        "/api/executions",
        get(|| async { Json(json!({"executions": [], "total": 0})) }),
    );
    let url = format!("http://{}", serve(app));
    let (fin, r) = run(&["stress", "--target", &url, "--duration", "2"]);
    assert_refused_before_load(
        &fin,
        &r,
        &[&format!(
            "set-up could not create an execution: POST {url}/api/executions answered HTTP 405"
        )],
    );
}

fn scenario_file(dir: &Path, text: &str) -> String {
    let path = dir.join("plain.toml");
    std::fs::write(&path, text).expect("write scenario");
    path.to_str().expect("UTF-8 path").to_string()
}

#[test]
fn plain_requests_declare_their_success_and_failures_keep_their_latency() {
    // Plain requests load any service, StepFlow or not; a 404 is a success where expected.
    let (addr, _) = html_404_server();
    let url = format!("http://{addr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario_file(
        dir.path(),
        r#"name = "plain"
kind = "per_endpoint"
requests = 40
seed = 100

[[operations]]
name = "gone"
method = "GET"
path = "/old-page"
expect_status = [404, 410]

[[operations]]
name = "missing"
method = "GET"
path = "/api/health"
"#,
    );
    let (fin, r) = run(&["run", &file, "--target", &url]);
    // No targets written: half the requests failing misses the implied error-rate objective.
    assert_eq!(fin.code, 1, "stderr: {}", fin.stderr);
    let implied = &r["targets"][0];
    assert_eq!(implied["metric"], "totals.error_rate", "{implied}");
    assert_eq!(implied["implied"], true, "{implied}");
    assert_eq!(implied["passed"], false, "{implied}");
    assert_eq!(uint(&r, "/operations/gone/count"), 40);
    assert_eq!(uint(&r, "/operations/gone/errors"), 0);
    assert!(r["operations"]["gone"].get("errors_latency_us").is_none());
    let missing = &r["operations"]["missing"];
    assert_eq!(uint(missing, "/errors"), 40);
    // The failures' timings are there, with a histogram of exactly them.
    let l = &missing["errors_latency_us"];
    let (p50, max) = (l["p50"].as_f64().unwrap(), l["max"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= max, "{l}");
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        missing["errors_histogram"]
            .as_str()
            .expect("errors_histogram"),
    )
    .expect("base64");
    let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .expect("HDR histogram");
    assert_eq!(h.len(), 40);
    assert!(
        fin.stdout.contains("failed requests") && fin.stdout.contains("missing p50"),
        "{}",
        fin.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// --out -

#[test]
fn out_dash_puts_the_results_json_on_stdout_and_the_table_on_stderr() {
    let _turn = one_at_a_time();
    let service = Lookalike::start(Drops::default());
    let url = service.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario_file(
        dir.path(),
        "name = \"health\"\nkind = \"per_endpoint\"\nrequests = 20\n\
         [[operations]]\nname = \"health\"\nmethod = \"GET\"\npath = \"/api/health\"\n",
    );
    let base = [
        "run",
        &file,
        "--target",
        &url,
        "--no-progress",
        "--out",
        "-",
    ];
    let fin = run_bench(dir.path(), &base, RUN_TIMEOUT);
    assert_eq!(fin.code, 0, "stderr: {}", fin.stderr);
    let r = parse_results(&fin.stdout, "stdout");
    assert_eq!(uint(&r, "/operations/health/count"), 20);
    assert!(fin.stderr.contains("operation"), "{}", fin.stderr);
    assert!(
        fin.stderr.contains("totals.error_rate (implied)")
            && fin.stderr.contains("PASS: 1 of 1 targets met"),
        "{}",
        fin.stderr
    );
    // No file was written: not a file named "-", not the default results dir.
    assert!(!dir.path().join("-").exists());
    assert!(!dir.path().join("results").exists());

    // With --format json the JSON is printed once, and stderr has no table.
    let mut json = base.to_vec();
    json.extend(["--format", "json"]);
    let fin = run_bench(dir.path(), &json, RUN_TIMEOUT);
    assert_eq!(fin.code, 0, "stderr: {}", fin.stderr);
    parse_results(&fin.stdout, "stdout");
    assert!(!fin.stderr.contains("operation"), "{}", fin.stderr);

    // Several scenarios: one JSON array.
    let mut two = base.to_vec();
    two.insert(2, &file);
    let fin = run_bench(dir.path(), &two, RUN_TIMEOUT);
    assert_eq!(fin.code, 0, "stderr: {}", fin.stderr);
    let all: Value = serde_json::from_str(&fin.stdout).expect("one JSON document");
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
}
