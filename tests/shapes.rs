//! Load shapes, the generator's own evidence, sweeps and capacity searches, over real
//! loopback HTTP against a test server of known capacity (`common::fixed`).

mod common;

use common::fixed::FixedServer;
use common::{assert_matches_schema, read_results, run_bench};
use serde_json::Value;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs take turns, as in tests/generator.rs: two loads at once on two cores would disturb
/// each other.
static LOAD: Mutex<()> = Mutex::new(());

fn one_load_at_a_time() -> MutexGuard<'static, ()> {
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_scenario(dir: &Path, name: &str, load: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nwarmup = \"0s\"\n{load}\n[[operations]]\nname = \"get\"\nmethod = \"GET\"\npath = \"/x\"\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn f(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number {pointer} in {v:#}"))
}

fn u(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no unsigned {pointer} in {v:#}"))
}

#[test]
fn open_model_stages_send_every_planned_request_and_report_each_stage() {
    let _turn = one_load_at_a_time();
    let server = FixedServer::start(64, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    // Ramp to 100/s over 1 s (50 requests due), step to 200/s, hold 1 s (200 due).
    let scenario = write_scenario(
        dir.path(),
        "ramp",
        "[load]\nmodel = \"open\"\n[[load.stages]]\nduration = \"1s\"\ntarget = 100\n\
         [[load.stages]]\nduration = \"0s\"\ntarget = 200\n[[load.stages]]\nduration = \"1s\"\ntarget = 200\n",
    );
    let out = dir.path().join("r.json");
    let fin = run_bench(
        dir.path(),
        &[
            "run",
            &scenario,
            "--target",
            &server.url(),
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(fin.code, 0, "{}", fin.stderr);
    let r = read_results(&out);
    assert_matches_schema(&r);
    assert_eq!(r["load"]["model"], "open");
    assert_eq!(
        f(&r, "/load/rate"),
        200.0,
        "the load holds the shape's peak"
    );
    let stages = r["shape"]["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3);
    // Every request due is sent, whenever it goes out: the counts are the integrals.
    assert_eq!(u(&stages[0], "/stats/count"), 50);
    assert_eq!(u(&stages[1], "/stats/count"), 0, "a step lasts no time");
    assert_eq!(u(&stages[2], "/stats/count"), 200);
    assert_eq!(f(&stages[0], "/planned"), 50.0);
    assert_eq!(f(&stages[2], "/planned"), 200.0);
    assert_eq!(u(&r, "/totals/count"), 250);
    let seconds = r["shape"]["per_second"].as_array().expect("per_second");
    assert_eq!(seconds.len(), 2);
    assert_eq!(f(&seconds[0], "/planned"), 50.0);
    assert_eq!(f(&seconds[1], "/planned"), 200.0);
    let sent: f64 = seconds.iter().map(|s| f(s, "/achieved")).sum();
    assert_eq!(sent, 250.0, "{seconds:?}");
    // The evidence is there on every run.
    let g = &r["generator"];
    assert!(
        g["cpu_pct"].is_number() && g["send_lateness_us"]["p99"].is_number(),
        "{g}"
    );
    assert!(g["littles_law"]["allowed"].is_number(), "{g}");
    assert!(fin.stdout.contains("stages (req/s)"), "{}", fin.stdout);
    assert!(fin.stdout.contains("generator: CPU"), "{}", fin.stdout);
}

#[test]
fn closed_model_stages_add_and_retire_workers() {
    let _turn = one_load_at_a_time();
    let server = FixedServer::start(64, Duration::from_millis(2));
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "workers", "[load]\nmodel = \"closed\"\n");
    let out = dir.path().join("r.json");
    let fin = run_bench(
        dir.path(),
        &[
            "run",
            &scenario,
            "--stages",
            "1s:4,1s:4,1s:0",
            "--target",
            &server.url(),
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(fin.code, 0, "{}", fin.stderr);
    let r = read_results(&out);
    assert_matches_schema(&r);
    assert_eq!(r["load"]["model"], "closed");
    assert_eq!(u(&r, "/load/concurrency"), 4);
    let stages = r["shape"]["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3);
    for (s, planned) in stages.iter().zip([2.0, 4.0, 2.0]) {
        assert_eq!(f(s, "/planned"), planned, "{s}");
        assert!(u(s, "/stats/count") > 0, "{s}");
        // Never more workers than the shape's peak.
        assert!(f(s, "/achieved") <= 4.0, "{s}");
    }
    let seconds = r["shape"]["per_second"].as_array().expect("per_second");
    assert_eq!(seconds.len(), 3);
    assert_eq!(f(&seconds[1], "/planned"), 4.0);
    assert!(fin.stdout.contains("stages (workers)"), "{}", fin.stdout);
}

#[test]
fn bad_stages_are_refused_before_any_load() {
    let server = FixedServer::start(1, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s", "");
    let url = server.url();
    for (args, wanted) in [
        (vec!["--stages", "10s:-1"], "must be 0 or more"),
        (vec!["--stages", "1s:2.5"], "whole number of workers"),
        (vec!["--stages", "0s:5"], "total length must be more than 0"),
        (vec!["--stages", "1s:5", "--warmup", "2s"], "the warm-up"),
        (
            vec!["--stages", "1s:5", "--rate", "5"],
            "cannot be used with",
        ),
    ] {
        let mut all = vec!["run", scenario.as_str(), "--target", url.as_str()];
        all.extend(args.iter().copied());
        let fin = run_bench(dir.path(), &all, Duration::from_secs(20));
        assert_eq!(fin.code, 2, "{args:?}: {}", fin.stderr);
        assert!(fin.stderr.contains(wanted), "{args:?}: {}", fin.stderr);
    }
    assert_eq!(server.served.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn an_in_flight_cap_reached_is_named_as_the_limit() {
    let _turn = one_load_at_a_time();
    // One request at a time can be in flight, each taking 10 ms: at most 100/s, and 300/s
    // is offered, so requests wait for the cap, not for the server (which has 8 workers).
    let server = FixedServer::start(8, Duration::from_millis(10));
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "capped", "duration = \"2s\"\n");
    let out = dir.path().join("r.json");
    let fin = run_bench(
        dir.path(),
        &[
            "run",
            &scenario,
            "--rate",
            "300",
            "--max-in-flight",
            "1",
            "--target",
            &server.url(),
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(fin.code, 0, "{}", fin.stderr);
    let r = read_results(&out);
    let g = &r["generator"];
    assert_eq!(g["limited"], true, "{g}");
    let reasons = g["reasons"].to_string();
    assert!(reasons.contains("--max-in-flight"), "{reasons}");
    assert!(!reasons.contains("--threads"), "{reasons}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("the generator was the limit"),
        "{}",
        r["warnings"]
    );
}
