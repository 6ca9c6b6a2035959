//! Load shapes, the generator's own evidence, sweeps and capacity searches, over real
//! loopback HTTP against a test server of known capacity (`common::fixed`).

mod common;

use common::fixed::FixedServer;
use common::{read_results, run_bench, Finished};
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

/// Runs `stepflow-bench <args> --no-progress --out <dir>/r.json`, requires exit 0, and
/// returns how it ended with its results (checked against the schema by `read_results`).
fn run_ok(dir: &Path, args: &[&str]) -> (Finished, Value) {
    let out = dir.join("r.json");
    let out_arg = out.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--no-progress", "--out", &out_arg]);
    let fin = run_bench(dir, &all, RUN_TIMEOUT);
    assert_eq!(fin.code, 0, "{args:?}: {}", fin.stderr);
    let r = read_results(&out);
    (fin, r)
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
    let (fin, r) = run_ok(dir.path(), &["run", &scenario, "--target", &server.url()]);
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
    let (fin, r) = run_ok(
        dir.path(),
        &[
            "run",
            &scenario,
            "--stages",
            "1s:4,1s:4,1s:0",
            "--target",
            &server.url(),
        ],
    );
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
    let (_, r) = run_ok(
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
        ],
    );
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

#[test]
fn sweep_writes_every_level_and_finds_the_knee_of_a_fixed_capacity_server() {
    let _turn = one_load_at_a_time();
    // 2 workers × 20 ms: at most 100/s. One worker gets half of it; from 2 workers on,
    // throughput stays at 100/s while latency grows with the queue.
    let server = FixedServer::start(2, Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "levels", "");
    let (fin, r) = run_ok(
        dir.path(),
        &[
            "sweep",
            "--scenario",
            &scenario,
            "--concurrency",
            "1,2,8,32",
            "--duration",
            "3s",
            "--target",
            &server.url(),
        ],
    );
    let levels = r["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 4);
    for (l, want) in levels.iter().zip([1, 2, 8, 32]) {
        assert_eq!(u(l, "/results/load/concurrency"), want);
        assert!(u(l, "/results/totals/count") > 0, "{l}");
        assert!(l["generator_limited"].is_boolean());
    }
    // Past 2 workers the server cannot go faster: the knee is at 2 or 8 (queueing only
    // grows the latency from there). 3 s a level: a closed-model level also counts the
    // answers to requests in flight when its window ends (up to one per worker), which over
    // 1 s made 8 workers look 7-10 % faster than 2.
    let knee = f(&r, "/knee/level");
    assert!(knee == 2.0 || knee == 8.0, "{}", r["knee"]);
    assert!(fin.stdout.contains("← knee"), "{}", fin.stdout);
    assert!(fin.stdout.contains("success %"), "{}", fin.stdout);
}

/// (uptime s, executions stored, target) of each level of a bundled-monitor sweep.
fn sweep_monitors(fresh: bool) -> Vec<(f64, u64, String)> {
    let _turn = one_load_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "sweep",
        "--scenario",
        "ci",
        "--concurrency",
        "1,4",
        "--duration",
        "2s",
        "--warmup",
        "0s",
    ];
    if fresh {
        args.push("--fresh");
    }
    let (_, r) = run_ok(dir.path(), &args);
    let want = if fresh { "fresh" } else { "shared" };
    r["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            assert_eq!(l["monitor"], want, "{}", l["monitor"]);
            assert_eq!(u(l, "/results/integrity/lost_writes"), 0);
            (
                f(l, "/results/server/stats/uptime_s"),
                u(l, "/results/server/storage/executions"),
                l["results"]["target"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_sweep_keeps_one_bundled_monitor_unless_fresh() {
    // One monitor: the second level's monitor was up through the first level and all of its
    // own 2 s, and it still holds the first level's executions.
    let shared = sweep_monitors(false);
    assert_eq!(shared[0].2, shared[1].2, "one address: {shared:?}");
    assert!(shared[1].0 >= shared[0].0 + 2.0, "{shared:?}");
    assert!(
        shared[1].1 > shared[0].1,
        "data grows level by level: {shared:?}"
    );
    // --fresh: the second level's monitor started for it.
    let fresh = sweep_monitors(true);
    assert!(fresh[1].0 < fresh[0].0 + 2.0, "{fresh:?}");
}

#[test]
fn capacity_finds_a_known_capacity_within_15_percent() {
    let _turn = one_load_at_a_time();
    // 4 workers × 100 ms = 40 requests per second by construction. Above it the queue (and
    // the latency from the intended send time) grows for the whole step: 10 % over it for
    // 6 s is 600 ms of queue, past the SLO; below it the open model's evenly spaced requests
    // never queue. Slow on purpose: a busy shared machine delays sends by tens of ms (p99
    // 60 ms at a load average of 7 on 2 cores), which must not decide a step.
    let server = FixedServer::start(4, Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "known", "");
    let out = dir.path().join("capacity.json");
    let fin = run_bench(
        dir.path(),
        &[
            "capacity",
            "--scenario",
            &scenario,
            "--slo",
            "p99<=500ms",
            "--duration",
            "4s",
            "--start-rate",
            "10",
            "--budget",
            "4m",
            "--target",
            &server.url(),
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(300),
    );
    let r = read_results(&out);
    let c = &r["capacity"];
    let max_rate = f(c, "/max_rate");
    assert!(
        (34.0..=46.0).contains(&max_rate),
        "found {max_rate}/s for a 40/s server: {c:#}; {}",
        fin.stderr
    );
    assert_eq!(fin.code, 0, "{}", fin.stderr);
    assert!((f(c, "/sustainable_rate") - 0.8 * max_rate).abs() < 1e-6);
    let steps = c["steps"].as_array().expect("steps");
    let phases: Vec<&str> = steps.iter().map(|s| s["phase"].as_str().unwrap()).collect();
    assert_eq!(phases[0], "probe");
    assert!(phases.contains(&"bisect"), "{phases:?}");
    // The answer is confirmed by the last two steps, both at it and both passed. A noisy
    // machine may fail a confirmation first, which lowers the answer and confirms again
    // (README), so earlier confirmations may precede them.
    let last_two = &steps[steps.len().saturating_sub(2)..];
    assert_eq!(last_two.len(), 2, "{phases:?}");
    for s in last_two {
        assert_eq!(s["phase"], "confirm", "{phases:?}");
        assert_eq!(s["passed"], true, "{s}");
        assert_eq!(f(s, "/rate"), max_rate, "{s}");
    }
    assert!(f(c, "/elapsed_s") <= f(c, "/budget_s"));
    assert!(fin.stdout.contains("sustainable"), "{}", fin.stdout);
}

#[test]
fn capacity_refuses_a_bad_slo_before_any_load() {
    let server = FixedServer::start(1, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "s", "");
    let url = server.url();
    for (slo, extra, wanted) in [
        ("p99", vec![], "write FIGURE<=LIMIT"),
        ("p42<=10ms", vec![], "--slo"),
        (
            "p99<=10ms",
            vec!["--max-error-rate", "200%"],
            "--max-error-rate",
        ),
    ] {
        let mut args = vec![
            "capacity",
            "--scenario",
            scenario.as_str(),
            "--slo",
            slo,
            "--target",
            url.as_str(),
        ];
        args.extend(extra.iter().copied());
        let fin = run_bench(dir.path(), &args, Duration::from_secs(20));
        assert_eq!(fin.code, 2, "{slo}: {}", fin.stderr);
        assert!(fin.stderr.contains(wanted), "{slo}: {}", fin.stderr);
    }
    assert_eq!(server.served.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn serve_null_answers_everything_at_once_and_stops_on_sigterm() {
    let _turn = one_load_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut null =
        common::Monitor::start_with("optimized", &dir.path().join("unused"), &["--null"]);
    let r = common::get(null.addr, "/anything");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({}));
    assert!(!dir.path().join("unused").exists(), "--null stores nothing");
    let scenario = write_scenario(dir.path(), "null", "duration = \"1s\"\n");
    let url = format!("http://{}", null.addr);
    let (_, r) = run_ok(
        dir.path(),
        &["run", &scenario, "--rate", "200", "--target", &url],
    );
    assert_eq!(u(&r, "/totals/count"), 200);
    assert_eq!(r["generator"]["limited"], false, "{}", r["generator"]);
    // `{}` is not the monitor's stats: no server figures are made up from it.
    assert!(
        r.get("server").is_none_or(Value::is_null),
        "{}",
        r["server"]
    );

    // A rate no generator on this machine can send: the run must say the generator, not
    // the null target, was the limit.
    let (fin, r) = run_ok(
        dir.path(),
        &["run", &scenario, "--rate", "200000", "--target", &url],
    );
    let g = &r["generator"];
    assert_eq!(g["limited"], true, "{g}");
    assert!(!g["reasons"][0].as_str().unwrap().is_empty(), "{g}");
    assert!(
        fin.stdout
            .contains("the generator was the limit, not the target"),
        "{}",
        fin.stdout
    );
    assert!(null.terminate().success());
}
