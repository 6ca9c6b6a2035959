//! The load generator end to end: the real `stepflow-bench` binary as a child process against
//! the bundled monitor (or a monitor started here), judged by its exit code, its stderr and
//! the results JSON it writes, which is also validated against `schema/results.schema.json`.
//!
//! Every run is short (1–3 s), every wait is bounded, and a generator still running when a
//! test ends is stopped (SIGTERM, then SIGKILL), so a failing test neither hangs nor leaks.

mod common;

use base64::Engine as _;
use common::{
    assert_correct, assert_matches_schema, get, read_results, schema_errors, wait_until, Finished,
    Monitor, BIN,
};
use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Longest a short run may take, set-up of the bundled monitor and integrity check included.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest a run may take to refuse bad input; no load is sent, so this is generous.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(20);

/// Load-generating tests take turns: on two cores a second generator and server running at
/// the same time would distort the figures (and the latency targets) of the first.
static LOAD: Mutex<()> = Mutex::new(());

fn one_load_at_a_time() -> MutexGuard<'static, ()> {
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The generator as a child process

/// A `stepflow-bench` child; stopped on drop if it is still running.
struct Generator {
    child: Child,
    args: Vec<String>,
    started: Instant,
    stdout: Receiver<Vec<u8>>,
    stderr: Receiver<Vec<u8>>,
    exited: bool,
}

/// Reads a pipe to its end on a helper thread; the whole output arrives on the channel.
fn collect(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

impl Generator {
    /// Starts `stepflow-bench <args>` in `cwd` (so a default `results/` dir lands there).
    fn start(cwd: &Path, args: &[&str]) -> Generator {
        Generator::start_with(cwd, args, |_| {})
    }

    /// `start`, with the command adjusted by `configure` first (environment, limits).
    fn start_with(cwd: &Path, args: &[&str], configure: impl FnOnce(&mut Command)) -> Generator {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        Generator {
            child,
            args: args.iter().map(|a| a.to_string()).collect(),
            started: Instant::now(),
            stdout,
            stderr,
            exited: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits for the exit (panicking, after stopping it, if `timeout` passes) and collects
    /// what it printed.
    fn finish(&mut self, timeout: Duration) -> Finished {
        let status = common::wait_child(&mut self.child, timeout);
        let elapsed = self.started.elapsed();
        let Some(status) = status else {
            self.stop();
            panic!(
                "stepflow-bench {:?} still running after {timeout:?}; stderr: {}",
                self.args,
                self.stderr_now()
            );
        };
        self.exited = true;
        let stdout = self.stdout.recv_timeout(Duration::from_secs(10));
        let stderr = self.stderr.recv_timeout(Duration::from_secs(10));
        let text = |b: Result<Vec<u8>, _>| String::from_utf8_lossy(&b.unwrap_or_default()).into();
        let (stdout, stderr): (String, String) = (text(stdout), text(stderr));
        let code = status.code().unwrap_or_else(|| {
            panic!(
                "stepflow-bench {:?} ended by a signal ({status}); stderr: {stderr}",
                self.args
            )
        });
        Finished {
            code,
            elapsed,
            stdout,
            stderr,
        }
    }

    fn stderr_now(&self) -> String {
        self.stderr
            .recv_timeout(Duration::from_secs(2))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| "<not collected>".into())
    }

    /// SIGTERM (the generator then stops its bundled monitor), SIGKILL if that is not enough.
    fn stop(&mut self) {
        if self.exited || self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        self.signal(libc::SIGTERM);
        if common::wait_child(&mut self.child, Duration::from_secs(15)).is_none() {
            let _ = self.child.kill();
            let _ = common::wait_child(&mut self.child, Duration::from_secs(15));
        }
        self.exited = true;
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the binary with `args` (plus `--no-progress --out OUT`) and checks it is refused
/// promptly with exit 2, every piece of `wanted` in its message, and no results written.
fn assert_refused(dir: &Path, args: &[&str], out: &Path, wanted: &[&str]) {
    let mut all = args.to_vec();
    all.extend(["--no-progress", "--out", path_arg(out)]);
    let fin = run_in(dir, &all, REFUSE_TIMEOUT);
    assert_eq!(fin.code, 2, "{args:?}; stderr: {}", fin.stderr);
    assert!(
        fin.elapsed < Duration::from_secs(10),
        "{args:?} took {:?}",
        fin.elapsed
    );
    for piece in wanted {
        assert!(
            fin.stderr.contains(piece),
            "{args:?}: {piece:?} missing from {}",
            fin.stderr
        );
    }
    assert!(!out.exists(), "{args:?} wrote results");
}

fn run_in(dir: &Path, args: &[&str], timeout: Duration) -> Finished {
    Generator::start(dir, args).finish(timeout)
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

// ---------------------------------------------------------------------------------------------
// Results JSON (validated against the schema by common::read_results)

/// The value at a JSON pointer; panics naming the pointer when it is missing.
fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer)
        .unwrap_or_else(|| panic!("results have no {pointer}: {v:#}"))
}

fn uint(v: &Value, pointer: &str) -> u64 {
    at(v, pointer)
        .as_u64()
        .unwrap_or_else(|| panic!("{pointer} is not an unsigned integer: {}", at(v, pointer)))
}

fn num(v: &Value, pointer: &str) -> f64 {
    at(v, pointer)
        .as_f64()
        .unwrap_or_else(|| panic!("{pointer} is not a number: {}", at(v, pointer)))
}

fn string<'a>(v: &'a Value, pointer: &str) -> &'a str {
    at(v, pointer)
        .as_str()
        .unwrap_or_else(|| panic!("{pointer} is not a string: {}", at(v, pointer)))
}

fn operation_names(results: &Value) -> Vec<String> {
    at(results, "/operations")
        .as_object()
        .expect("operations is an object")
        .keys()
        .cloned()
        .collect()
}

/// min ≤ p50 ≤ p90 ≤ p95 ≤ p99 ≤ p999 ≤ max, and min ≤ mean ≤ max.
fn assert_latency_ordered(what: &str, latency: &Value) {
    let figures = ["min", "p50", "p90", "p95", "p99", "p999", "max"];
    let values: Vec<f64> = figures
        .iter()
        .map(|f| num(latency, &format!("/{f}")))
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "{what}: latency figures out of order: {latency}"
    );
    let mean = num(latency, "/mean");
    assert!(
        values[0] <= mean && mean <= values[6],
        "{what}: mean outside [min, max]: {latency}"
    );
}

/// Decodes an OpStats `histogram` (HDR V2 deflate, base64, nanoseconds).
fn decode_histogram(what: &str, encoded: &str) -> hdrhistogram::Histogram<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|e| panic!("{what}: histogram is not base64: {e}"));
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap_or_else(|e| panic!("{what}: histogram is not an HDR V2 histogram: {e:?}"))
}

/// Checks an OpStats against its own histogram: the histogram holds every success, and the
/// reported extremes are the histogram's.
fn assert_histogram_consistent(what: &str, stats: &Value) {
    let h = decode_histogram(what, string(stats, "/histogram"));
    let successes = uint(stats, "/count") - uint(stats, "/errors");
    assert_eq!(
        h.len(),
        successes,
        "{what}: histogram holds {} values",
        h.len()
    );
    if successes > 0 {
        let close = |a: f64, b: f64| (a - b).abs() <= b.abs() * 1e-9 + 1e-6;
        let (max_us, min_us) = (h.max() as f64 / 1000.0, h.min() as f64 / 1000.0);
        assert!(
            close(num(stats, "/latency_us/max"), max_us)
                && close(num(stats, "/latency_us/min"), min_us),
            "{what}: latency_us {} disagrees with its histogram (min {min_us}, max {max_us})",
            at(stats, "/latency_us")
        );
    }
}

/// A run that met its targets exits 0; one that only missed speed targets exits 1. The
/// figures those targets set are for a release build on an idle machine, and the tests run a
/// debug build, so a missed speed target is tolerated — errors and lost writes never are.
fn assert_ok_or_only_speed_missed(fin: &Finished, results: &Value) {
    assert_eq!(
        fin.code as u64,
        uint(results, "/exit_code"),
        "process exit code and results exit_code differ; stderr: {}",
        fin.stderr
    );
    assert!(
        at(results, "/aborted").is_null(),
        "run aborted: {}",
        at(results, "/aborted")
    );
    if let Some(integrity) = results.get("integrity") {
        assert_eq!(uint(integrity, "/lost_writes"), 0, "{integrity}");
    }
    let targets = at(results, "/targets").as_array().expect("targets array");
    let failed: Vec<&Value> = targets.iter().filter(|t| t["passed"] != true).collect();
    match fin.code {
        0 => assert!(failed.is_empty(), "exit 0 with failed targets: {failed:?}"),
        1 => {
            assert!(
                !failed.is_empty(),
                "exit 1 without a failed target or lost write; stderr: {}",
                fin.stderr
            );
            for t in failed {
                let metric = string(t, "/metric");
                assert!(
                    !metric.ends_with(".error_rate"),
                    "a correctness target failed: {t}; stderr: {}",
                    fin.stderr
                );
            }
        }
        code => panic!("exit {code}; stderr: {}", fin.stderr),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. End to end: `run ci` against the bundled monitor

struct CiRun {
    fin: Finished,
    results: Value,
}

/// One 2-second `run ci` shared by the tests that inspect it.
fn ci_run() -> &'static CiRun {
    static CI: OnceLock<CiRun> = OnceLock::new();
    CI.get_or_init(|| {
        let _load = one_load_at_a_time();
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("x.json");
        let fin = run_in(
            dir.path(),
            &[
                "run",
                "ci",
                "--duration",
                "2s",
                "--warmup",
                "0s",
                "--no-progress",
                "--out",
                path_arg(&out),
            ],
            RUN_TIMEOUT,
        );
        assert!(
            fin.stderr
                .contains(&format!("results written to {}", out.display())),
            "stderr does not say where the results went: {}",
            fin.stderr
        );
        let results = read_results(&out);
        // Exit 0, or 1 for its p99 target only: a debug build on a shared machine may miss
        // a latency target, which is no fault of the results.
        assert_correct("run ci", &fin, &results);
        CiRun { fin, results }
    })
}

/// Operation names and target metrics of the built-in `scenarios/ci.toml`.
fn ci_toml() -> (Vec<String>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci.toml");
    let text = std::fs::read_to_string(&path).expect("scenarios/ci.toml");
    let doc: toml::Table = toml::from_str(&text).expect("ci.toml is TOML");
    let ops = doc["operations"]
        .as_array()
        .expect("[[operations]]")
        .iter()
        .map(|o| o["name"].as_str().expect("operation name").to_string())
        .collect();
    let targets = doc["targets"]
        .as_table()
        .expect("[targets]")
        .keys()
        .cloned()
        .collect();
    (ops, targets)
}

#[test]
fn run_ci_against_the_bundled_monitor_writes_complete_results() {
    let CiRun { fin, results: r } = ci_run();
    assert!(
        fin.elapsed < Duration::from_secs(60),
        "took {:?}",
        fin.elapsed
    );

    assert_eq!(uint(r, "/schema_version"), 1);
    assert_eq!(string(r, "/scenario"), "ci");
    assert_eq!(string(r, "/kind"), "mix");
    let target = string(r, "/target");
    assert!(target.starts_with("http://127.0.0.1:"), "target {target}");
    assert_eq!(string(r, "/profile"), "optimized");
    let started = string(r, "/started_at");
    chrono::DateTime::parse_from_rfc3339(started)
        .unwrap_or_else(|e| panic!("started_at {started:?} is not RFC 3339: {e}"));
    let duration_s = num(r, "/duration_s");
    assert!((1.9..=2.5).contains(&duration_s), "duration_s {duration_s}");
    assert_eq!(num(r, "/warmup_s"), 0.0);
    assert_eq!(string(r, "/load/model"), "closed");
    assert_eq!(uint(r, "/load/concurrency"), 16, "ci.toml's concurrency");

    // Every operation of the scenario ran, and each one's figures hang together.
    let (ops, target_metrics) = ci_toml();
    assert_eq!(
        operation_names(r).len(),
        ops.len(),
        "{:?}",
        operation_names(r)
    );
    let (mut count_sum, mut error_sum) = (0, 0);
    for name in &ops {
        let stats = r["operations"]
            .get(name)
            .unwrap_or_else(|| panic!("operation {name} missing: {:?}", operation_names(r)));
        let count = uint(stats, "/count");
        assert!(count > 0, "{name} never ran: {stats}");
        assert!(
            !string(stats, "/histogram").is_empty(),
            "{name}: empty histogram"
        );
        assert_histogram_consistent(name, stats);
        assert_latency_ordered(name, at(stats, "/latency_us"));
        count_sum += count;
        error_sum += uint(stats, "/errors");
    }
    let totals = at(r, "/totals");
    assert_eq!(uint(totals, "/count"), count_sum, "totals.count");
    assert_eq!(uint(totals, "/errors"), error_sum, "totals.errors");
    assert_eq!(error_sum, 0, "errors: {}", r["errors"]);
    assert_histogram_consistent("totals", totals);
    assert_latency_ordered("totals", at(totals, "/latency_us"));
    let throughput = num(totals, "/throughput");
    let expected = count_sum as f64 / duration_s;
    assert!(
        (throughput - expected).abs() <= expected * 0.01,
        "totals.throughput {throughput}, count/duration {expected}"
    );

    // Targets: one row per [targets] entry, each complete, all met.
    let targets = at(r, "/targets").as_array().expect("targets array");
    let metrics: Vec<&str> = targets.iter().map(|t| string(t, "/metric")).collect();
    for m in &target_metrics {
        assert!(
            metrics.contains(&m.as_str()),
            "target {m} missing: {metrics:?}"
        );
    }
    for t in targets {
        string(t, "/target");
        string(t, "/unit");
        num(t, "/measured");
        assert_eq!(t["passed"], true, "{t}");
    }

    assert_eq!(uint(r, "/integrity/lost_writes"), 0);
    assert!(uint(r, "/integrity/checked") > 0, "{}", r["integrity"]);
    assert!(uint(r, "/server/rss_peak_bytes") > 0);
    assert!(num(r, "/server/cpu_s") > 0.0);
    // Memory and CPU are the server's own figures when the load ended, not after the
    // read-back: one snapshot, so they agree with the stats they came with.
    assert_eq!(
        uint(r, "/server/rss_peak_bytes"),
        uint(r, "/server/stats/rss_peak_bytes")
    );
    assert_eq!(num(r, "/server/cpu_s"), num(r, "/server/stats/cpu_s"));
    assert!(
        uint(r, "/server/stats/rss_anon_bytes") + uint(r, "/server/stats/rss_file_bytes")
            <= uint(r, "/server/stats/rss_bytes")
    );
    assert!(uint(r, "/environment/cores") >= 1);

    // The time series covers the measured window: seconds in order, adding up to the totals.
    let series = at(r, "/timeseries").as_array().expect("timeseries array");
    assert!(!series.is_empty(), "empty timeseries");
    let seconds: Vec<u64> = series.iter().map(|p| uint(p, "/t_s")).collect();
    assert!(seconds.windows(2).all(|w| w[0] < w[1]), "t_s {seconds:?}");
    let series_ops: u64 = series.iter().map(|p| uint(p, "/ops")).sum();
    assert_eq!(series_ops, count_sum, "timeseries ops vs totals.count");

    assert!(at(r, "/aborted").is_null());
    assert_eq!(uint(r, "/exit_code"), 0);
}

#[test]
fn results_of_run_ci_match_the_published_schema() {
    let r = &ci_run().results;
    assert_matches_schema(r);
    // Failed requests' latency, when some failed, fits the schema too.
    let mut with_failures = r.clone();
    with_failures["totals"]["errors_latency_us"] = r["totals"]["latency_us"].clone();
    with_failures["totals"]["errors_histogram"] = r["totals"]["histogram"].clone();
    assert_matches_schema(&with_failures);

    // The machine's other work is recorded on Linux, where the harness runs.
    if cfg!(target_os = "linux") {
        let other = r["machine"]["other_cpu_pct"].as_f64();
        assert!(
            other.is_some_and(|p| (0.0..=100.0).contains(&p)),
            "{}",
            r["machine"]
        );
    }

    // Every run has an id of its own, 128 random bits in hex.
    let id = string(r, "/run_id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "run_id {id:?}"
    );

    // The schema is not vacuous: documents that break the contract are rejected.
    type Breaks = fn(&mut Value);
    let broken: [(&str, Breaks); 11] = [
        ("run_id not hex", |v| v["run_id"] = "not an id".into()),
        ("run_ids not a list of ids", |v| {
            v["run_ids"] = serde_json::json!(["x"]);
        }),
        ("machine without other_cpu_pct", |v| {
            v["machine"] = serde_json::json!({"steal_pct": 0.0, "load_avg_1m": 1.0});
        }),
        ("no schema_version", |v| {
            v.as_object_mut().unwrap().remove("schema_version");
        }),
        ("failed latency without its histogram", |v| {
            v["totals"]["errors_latency_us"] = v["totals"]["latency_us"].clone();
        }),
        ("failed latency missing a percentile", |v| {
            let mut l = v["totals"]["latency_us"].clone();
            l.as_object_mut().unwrap().remove("p99");
            v["totals"]["errors_latency_us"] = l;
            v["totals"]["errors_histogram"] = v["totals"]["histogram"].clone();
        }),
        ("errors histogram not base64", |v| {
            v["totals"]["errors_latency_us"] = v["totals"]["latency_us"].clone();
            v["totals"]["errors_histogram"] = "not base64!".into();
        }),
        ("schema_version 2", |v| v["schema_version"] = 2.into()),
        ("count as a string", |v| v["totals"]["count"] = "12".into()),
        ("OpStats without histogram", |v| {
            v["totals"].as_object_mut().unwrap().remove("histogram");
        }),
        ("target without passed", |v| {
            v["targets"][0].as_object_mut().unwrap().remove("passed");
        }),
    ];
    for (what, breaks) in broken {
        let mut doc = r.clone();
        breaks(&mut doc);
        assert!(
            !schema_errors(&doc).is_empty(),
            "the schema accepts results with {what}"
        );
    }
}

#[test]
fn format_json_prints_the_written_results_and_markdown_a_table() {
    let _load = one_load_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("junit.xml");
    let run = |format: &str| {
        let out = dir.path().join(format!("{format}.json"));
        let fin = run_in(
            dir.path(),
            &[
                "run",
                "ci",
                "--duration",
                "1s",
                "--warmup",
                "0s",
                "--no-progress",
                "--format",
                format,
                "--out",
                path_arg(&out),
                "--junit",
                path_arg(&junit),
            ],
            RUN_TIMEOUT,
        );
        let results = read_results(&out);
        assert_correct(&format!("--format {format}"), &fin, &results);
        (fin, results)
    };

    let (fin, written) = run("json");
    let printed: Value = serde_json::from_str(&fin.stdout)
        .unwrap_or_else(|e| panic!("--format json printed no JSON ({e}): {}", fin.stdout));
    assert_eq!(printed, written, "stdout and the results file differ");
    // The JUnit report has a case per target and one for the read-back, a failure for each
    // target missed and for lost writes.
    let xml = std::fs::read_to_string(&junit).expect("--junit wrote its report");
    let targets = written["targets"].as_array().expect("targets");
    let missed = targets.iter().filter(|t| t["passed"] != true).count();
    let lost = uint(&written, "/integrity/lost_writes");
    assert_eq!(
        xml.matches("<testcase ").count(),
        targets.len() + 1,
        "{xml}"
    );
    assert_eq!(
        xml.matches("<failure ").count(),
        missed + usize::from(lost > 0),
        "{xml}"
    );
    for t in targets {
        let name = t["metric"].as_str().expect("metric");
        assert!(
            xml.contains(&format!("name=\"{name}\"")),
            "{name} missing: {xml}"
        );
    }
    assert!(
        fin.stderr.contains("JUnit report written to"),
        "stderr: {}",
        fin.stderr
    );

    let (fin, written) = run("markdown");
    let md = &fin.stdout;
    assert!(
        md.contains("| operation | count | ops/s |"),
        "no markdown table header: {md}"
    );
    assert!(md.contains("|---|"), "no markdown separator row: {md}");
    for name in operation_names(&written) {
        assert!(
            md.contains(&format!("| {name} | ")),
            "no row for {name}: {md}"
        );
    }
    assert!(md.contains("| **totals** | "), "no totals row: {md}");
    assert!(
        serde_json::from_str::<Value>(md).is_err(),
        "markdown output is JSON"
    );
}

// ---------------------------------------------------------------------------------------------
// 2–5. Faults

/// A loopback port that nothing listens on: bound, then closed.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

#[test]
fn unreachable_target_exits_3_naming_the_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = dir.path().join("x.json");
    let fin = run_in(
        dir.path(),
        &[
            "stress",
            "--target",
            &url,
            "--duration",
            "2s",
            "--no-progress",
            "--out",
            path_arg(&out),
        ],
        REFUSE_TIMEOUT,
    );
    assert_eq!(fin.code, 3, "stderr: {}", fin.stderr);
    assert!(
        fin.elapsed < Duration::from_secs(10),
        "took {:?}",
        fin.elapsed
    );
    assert!(
        fin.stderr.contains(&url),
        "stderr does not name {url}: {}",
        fin.stderr
    );
    assert!(
        fin.stderr.contains("could not reach"),
        "stderr: {}",
        fin.stderr
    );
    // The attempt is still recorded: aborted, nothing measured, schema-valid.
    let r = read_results(&out);
    assert!(string(&r, "/aborted").contains(&url), "{r:#}");
    assert_eq!(uint(&r, "/exit_code"), 3);
    assert_eq!(string(&r, "/target"), url);
    assert_eq!(uint(&r, "/totals/count"), 0);
    assert!(at(&r, "/operations").as_object().unwrap().is_empty());
}

#[test]
fn several_scenarios_as_json_are_one_array() {
    let _load = one_load_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<PathBuf> = ["one", "two"]
        .iter()
        .map(|name| {
            let text = format!(
                "name = \"{name}\"\nkind = \"per_endpoint\"\nrequests = 20\nwarmup = \"0s\"\n\
                 [[operations]]\nname = \"health\"\nkind = \"health\"\n"
            );
            scenario_file(dir.path(), &format!("{name}.toml"), &text)
        })
        .collect();
    let out = dir.path().join("r.json");
    let fin = run_in(
        dir.path(),
        &[
            "run",
            path_arg(&files[0]),
            path_arg(&files[1]),
            "--format",
            "json",
            "--no-progress",
            "--out",
            path_arg(&out),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(fin.code, 0, "stderr: {}", fin.stderr);
    let all: Value = serde_json::from_str(&fin.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", fin.stdout));
    let names: Vec<&str> = all
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"]);
    // One results file per scenario, named after it.
    for name in ["one", "two"] {
        let r = read_results(&dir.path().join(format!("r-{name}.json")));
        assert_eq!(uint(&r, "/totals/count"), 20);
    }
}

#[test]
fn out_may_be_a_device_but_not_a_directory() {
    let _load = one_load_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    // A short run writing to `out` through a symlink; the link must stay a link.
    let run_through = |link: &Path| {
        let fin = run_in(
            dir.path(),
            &[
                "api",
                "--requests",
                "5",
                "--no-progress",
                "--out",
                path_arg(link),
            ],
            RUN_TIMEOUT,
        );
        // (A debug build may miss the scenario's latency targets: exit 1.)
        assert!(matches!(fin.code, 0 | 1), "stderr: {}", fin.stderr);
        assert!(fin.stderr.contains("results written to"), "{}", fin.stderr);
        let meta = std::fs::symlink_metadata(link).expect("link still there");
        assert!(meta.file_type().is_symlink(), "--out replaced the symlink");
    };
    // To /dev/null: written to, never replaced by a file.
    let link = dir.path().join("null");
    std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
    run_through(&link);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // To a regular file: the file gets the results.
    let real = dir.path().join("real.json");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    run_through(&link);
    assert_eq!(string(&read_results(&real), "/scenario"), "api-latency");

    // A directory is refused before any load.
    let fin = run_in(
        dir.path(),
        &[
            "stress",
            "--duration",
            "1s",
            "--no-progress",
            "--out",
            path_arg(dir.path()),
        ],
        REFUSE_TIMEOUT,
    );
    assert_eq!(fin.code, 2, "stderr: {}", fin.stderr);
    assert!(fin.stderr.contains("is a directory"), "{}", fin.stderr);
    assert!(
        fin.elapsed < Duration::from_secs(10),
        "took {:?}",
        fin.elapsed
    );
}

#[test]
fn bundled_monitor_that_cannot_start_is_recorded_as_aborted() {
    // No temporary dir can be made for the monitor's data: the run cannot start.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.json");
    let o = Command::new(BIN)
        .args(["stress", "--duration", "1s", "--no-progress", "--out"])
        .arg(&out)
        .env("TMPDIR", dir.path().join("missing"))
        .output()
        .expect("run stepflow-bench");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "stderr: {stderr}");
    assert!(stderr.contains("temporary data dir"), "stderr: {stderr}");
    let r = read_results(&out);
    assert!(string(&r, "/aborted").contains("missing"), "{r:#}");
    assert_eq!(string(&r, "/target"), "bundled monitor");
    assert_eq!(uint(&r, "/totals/count"), 0);
}

#[test]
fn server_killed_mid_run_aborts_with_partial_results() {
    let _load = one_load_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = dir.path().join("x.json");
    let mut monitor = Monitor::start("optimized", &data);
    let url = format!("http://{}", monitor.addr);
    // No warm-up, so the kill lands in the measured window and its errors are counted.
    let mut generator = Generator::start(
        dir.path(),
        &[
            "stress",
            "--target",
            &url,
            "--duration",
            "30s",
            "--warmup",
            "0s",
            "--no-progress",
            "--out",
            path_arg(&out),
        ],
    );
    thread::sleep(Duration::from_millis(1500));
    monitor.kill9();
    let fin = generator.finish(Duration::from_secs(40));
    assert_eq!(fin.code, 3, "stderr: {}", fin.stderr);
    assert!(
        fin.elapsed < Duration::from_secs(20),
        "a dead target kept the run going for {:?}",
        fin.elapsed
    );

    let r = read_results(&out);
    let aborted = at(&r, "/aborted");
    assert!(aborted.is_string(), "aborted is {aborted}");
    assert_eq!(uint(&r, "/exit_code"), 3);
    let failed: u64 = r["operations"]
        .as_object()
        .expect("operations")
        .values()
        .map(|s| uint(s, "/errors"))
        .sum();
    assert!(
        failed > 0,
        "no errors counted after the kill: {}",
        r["operations"]
    );
    assert_eq!(uint(&r, "/totals/errors"), failed);

    // A write the monitor acknowledged survives SIGKILL (the monitor's contract), so writes
    // the generator could not read back from a dead server must not be reported as lost.
    match r.get("integrity") {
        Some(integrity) => assert_eq!(
            uint(integrity, "/lost_writes"),
            0,
            "unverifiable writes reported as lost: {integrity}"
        ),
        None => assert!(
            r["warnings"].as_array().is_some_and(|w| w
                .iter()
                .any(|w| w.as_str().is_some_and(|w| w.contains("integrity")))),
            "the integrity check was skipped without a warning: {}",
            r["warnings"]
        ),
    }
    let acknowledged = uint(&r, "/operations/create_execution/count")
        - uint(&r, "/operations/create_execution/errors");
    let monitor = Monitor::start("optimized", &data);
    let stored = common::expect(monitor.addr, "GET", "/api/executions?limit=1", None, 200);
    assert!(
        stored["total"].as_u64().expect("total") >= acknowledged,
        "{acknowledged} creates acknowledged, {} stored",
        stored["total"]
    );
}

/// Writes a scenario file into `dir`.
fn scenario_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[test]
fn broken_scenario_files_exit_2_before_any_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unknown_key = scenario_file(
        dir.path(),
        "unknown-key.toml",
        r#"name = "broken"
duration = "2s"
kind = "mix"

[load]
model = "closed"
concurrency = 2
bogus_key = 3

[[operations]]
name = "health"
kind = "health"
"#,
    );
    let bad_duration = scenario_file(
        dir.path(),
        "bad-duration.toml",
        r#"name = "broken"
duration = "2 fortnights"
kind = "mix"

[[operations]]
name = "health"
kind = "health"
"#,
    );
    // Seeds executions if it got that far: the check below sees whether it did.
    let unknown_op = scenario_file(
        dir.path(),
        "unknown-op.toml",
        r#"name = "broken"
duration = "2s"
kind = "mix"
seed = 50

[[operations]]
name = "create_execution"
kind = "create_execution"

[targets]
"totals.p99" = "< 50ms"
"nosuch.p99" = "< 5ms"
"#,
    );
    let bad_status = scenario_file(
        dir.path(),
        "bad-status.toml",
        r#"name = "broken"
duration = "2s"

[[operations]]
name = "page"
method = "GET"
path = "/"
expect_status = [200, 700]
"#,
    );
    let missing = dir.path().join("missing.toml");

    // (file, pieces the message must contain)
    let cases: [(&Path, &[&str]); 5] = [
        (&unknown_key, &[":8", "bogus_key"]),
        (&bad_duration, &[":2", "duration", "2 fortnights"]),
        (&unknown_op, &[":12", "nosuch"]),
        (
            &bad_status,
            &[":8", "expect_status", "700 is not an HTTP status"],
        ),
        (&missing, &[]),
    ];
    let monitor = Monitor::start("optimized", &dir.path().join("data"));
    let url = format!("http://{}", monitor.addr);
    for (file, pieces) in cases {
        let file = path_arg(file);
        let out = dir.path().join("x.json");
        for args in [
            vec!["run", file, "--target", &url],
            vec!["stress", "--scenario", file, "--target", &url],
        ] {
            let mut wanted = vec![file];
            wanted.extend(pieces.iter().copied());
            assert_refused(dir.path(), &args, &out, &wanted);
        }
    }
    // Nothing reached the monitor: no seeding, no load.
    let list = common::expect(monitor.addr, "GET", "/api/executions?limit=1", None, 200);
    assert_eq!(
        list["total"], 0,
        "a broken scenario created executions: {list}"
    );
    let stats = get(monitor.addr, "/performance/stats");
    assert_eq!(stats.status, 200);
}

/// Children of `parent` whose command line contains `needle`: (pid, command line).
fn children_of(parent: u32, needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Whether `pid` still runs the process whose command line was `cmdline` (a zombie or a
/// recycled pid does not count).
fn still_running(pid: u32, cmdline: &str) -> bool {
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim().to_string()))
        .and_then(|rest| rest.chars().next());
    let now = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    state.is_some_and(|s| s != 'Z') && now == cmdline
}

#[test]
fn ctrl_c_stops_the_run_writes_results_and_stops_the_bundled_monitor() {
    let _load = one_load_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.json");
    let mut generator = Generator::start(
        dir.path(),
        &[
            "stress",
            "--duration",
            "30s",
            "--warmup",
            "0s",
            "--no-progress",
            "--out",
            path_arg(&out),
        ],
    );
    // The bundled monitor is a child of the generator (`<this binary> serve ...`); other
    // `serve` processes on the machine are not ours and are left out of the count.
    let (serve_pid, serve_cmdline) = wait_until(Duration::from_secs(30), || {
        children_of(generator.pid(), " serve ").into_iter().next()
    })
    .expect("the generator started no bundled monitor within 30 s");
    thread::sleep(Duration::from_millis(1500));
    generator.signal(libc::SIGINT);
    let interrupted = Instant::now();
    let fin = generator.finish(Duration::from_secs(40));
    assert_eq!(fin.code, 3, "stderr: {}", fin.stderr);
    assert!(
        interrupted.elapsed() < Duration::from_secs(15),
        "took {:?} to stop after SIGINT",
        interrupted.elapsed()
    );

    let r = read_results(&out);
    let aborted = string(&r, "/aborted");
    assert!(aborted.contains("interrupted"), "aborted: {aborted}");
    assert_eq!(uint(&r, "/exit_code"), 3);
    assert!(
        uint(&r, "/totals/count") > 0,
        "nothing reported of what ran"
    );
    assert!(
        num(&r, "/duration_s") < 20.0,
        "duration_s {}",
        r["duration_s"]
    );

    assert!(
        !still_running(serve_pid, &serve_cmdline),
        "the bundled monitor (pid {serve_pid}: {serve_cmdline}) outlived the generator"
    );
    // Its temporary data dir went with it.
    let data_dir = serve_cmdline
        .split_whitespace()
        .skip_while(|a| *a != "--data-dir")
        .nth(1)
        .expect("--data-dir in the serve command line");
    assert!(
        !Path::new(data_dir).exists(),
        "bundled data dir {data_dir} left behind"
    );
}

// ---------------------------------------------------------------------------------------------
// 6–11. The commands

/// Runs a load command with `--no-progress --out <dir>/x.json` and returns its results.
fn load_run(args: &[&str]) -> (Finished, Value) {
    let _load = one_load_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.json");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--no-progress", "--out", path_arg(&out)]);
    let fin = run_in(dir.path(), &all, RUN_TIMEOUT);
    assert!(
        matches!(fin.code, 0 | 1),
        "{args:?} exited {}; stderr: {}",
        fin.code,
        fin.stderr
    );
    let results = read_results(&out);
    (fin, results)
}

#[test]
fn simulate_completes_every_execution_and_reads_it_back() {
    let (fin, r) = load_run(&["simulate", "--executions", "12", "--concurrency", "4"]);
    assert_eq!(fin.code, 0, "stderr: {}", fin.stderr);
    assert_ok_or_only_speed_missed(&fin, &r);
    assert_eq!(string(&r, "/kind"), "flow");
    assert_eq!(uint(&r, "/load/concurrency"), 4);
    assert_eq!(
        uint(&r, "/extra/executions_completed"),
        12,
        "{}",
        r["extra"]
    );
    assert_eq!(uint(&r, "/integrity/lost_writes"), 0);
    assert!(uint(&r, "/integrity/checked") >= 12);
    let execution = r["operations"]
        .get("execution")
        .unwrap_or_else(|| panic!("no end-to-end `execution`: {:?}", operation_names(&r)));
    assert_eq!(uint(execution, "/count"), 12);
    assert_eq!(uint(execution, "/errors"), 0);
    assert_latency_ordered("execution", at(execution, "/latency_us"));
    assert_eq!(uint(&r, "/operations/create_execution/count"), 12);
    assert_eq!(uint(&r, "/totals/errors"), 0);
}

#[test]
fn concurrent_creates_and_lists_every_execution() {
    let (fin, r) = load_run(&["concurrent", "--concurrency", "300"]);
    assert_eq!(fin.code, 0, "stderr: {}", fin.stderr);
    assert_ok_or_only_speed_missed(&fin, &r);
    assert_eq!(string(&r, "/kind"), "burst");
    assert_eq!(uint(&r, "/extra/created"), 300, "{}", r["extra"]);
    assert_eq!(uint(&r, "/integrity/checked"), 300);
    assert_eq!(uint(&r, "/integrity/lost_writes"), 0);
    assert_eq!(uint(&r, "/operations/create_execution/count"), 300);
    assert_eq!(uint(&r, "/operations/create_execution/errors"), 0);
}

#[test]
fn api_measures_each_endpoint_for_the_requested_count() {
    let (fin, r) = load_run(&["api", "--requests", "200", "--warmup", "0s"]);
    assert_ok_or_only_speed_missed(&fin, &r);
    assert_eq!(string(&r, "/kind"), "per_endpoint");
    assert_eq!(uint(&r, "/load/concurrency"), 1);
    let mut names = operation_names(&r);
    names.sort();
    assert_eq!(names, ["get_execution", "health", "list_executions"]);
    for name in &names {
        let stats = &r["operations"][name];
        assert_eq!(uint(stats, "/count"), 200, "{name}: {stats}");
        assert_eq!(uint(stats, "/errors"), 0, "{name}: {stats}");
        assert_histogram_consistent(name, stats);
        assert_latency_ordered(name, at(stats, "/latency_us"));
    }
    assert_eq!(uint(&r, "/totals/count"), 600);
}

#[test]
fn open_model_sends_at_the_requested_rate() {
    let (fin, r) = load_run(&[
        "stress",
        "--rate",
        "1500",
        "--duration",
        "2s",
        "--warmup",
        "0s",
    ]);
    assert_ok_or_only_speed_missed(&fin, &r);
    assert_eq!(string(&r, "/load/model"), "open");
    assert_eq!(num(&r, "/load/rate"), 1500.0);
    let count = uint(&r, "/totals/count");
    assert!(
        (2000..=3300).contains(&count),
        "totals.count {count} at 1500/s for 2 s"
    );
    assert_eq!(uint(&r, "/totals/errors"), 0);

    // Service time is reported per operation, and latency from the intended send time can
    // only be longer than it (no coordinated omission).
    let service = at(&r, "/service_time_us")
        .as_object()
        .expect("service_time_us object");
    for name in operation_names(&r) {
        let s = service
            .get(&name)
            .unwrap_or_else(|| panic!("no service time for {name}: {service:?}"));
        assert_latency_ordered(&name, s);
        let latency = &r["operations"][&name]["latency_us"];
        for figure in ["p50", "p99", "max"] {
            let (l, s) = (
                num(latency, &format!("/{figure}")),
                num(s, &format!("/{figure}")),
            );
            assert!(
                l >= s * 0.999,
                "{name}.{figure}: latency {l} µs below service time {s} µs"
            );
        }
    }
}

/// A real HTTP server on loopback that answers one request at a time, each after `delay`:
/// it cannot serve more than 1/delay requests a second, however many connections it has.
fn slow_server(delay: Duration) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let turn = std::sync::Arc::new(Mutex::new(()));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let turn = std::sync::Arc::clone(&turn);
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut stream = stream;
                loop {
                    // Request line and headers up to the blank line (GETs carry no body).
                    let mut got = false;
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => got = true,
                        }
                    }
                    if !got {
                        return;
                    }
                    let _one_at_a_time = turn.lock().unwrap_or_else(|e| e.into_inner());
                    thread::sleep(delay);
                    let body = "{\"status\":\"ok\"}";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn open_model_counts_throughput_until_the_last_answer() {
    let _load = one_load_at_a_time();
    // 200 requests offered over 1 s to a server that answers at most 50 a second: they are
    // all sent on schedule and answered over about 4 s. Throughput is what came back per
    // second, not the offered 200/s.
    let url = slow_server(Duration::from_millis(20));
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("slow.toml");
    std::fs::write(
        &scenario,
        r#"name = "slow"
duration = "1s"
warmup = "0s"
[load]
model = "open"
rate = 200
[[operations]]
name = "root"
method = "GET"
path = "/"
"#,
    )
    .expect("write scenario");
    let out = dir.path().join("x.json");
    let fin = run_in(
        dir.path(),
        &[
            "run",
            path_arg(&scenario),
            "--target",
            &url,
            "--no-progress",
            "--out",
            path_arg(&out),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(fin.code, 0, "stderr: {}", fin.stderr);
    let r = read_results(&out);
    let count = uint(&r, "/totals/count");
    assert_eq!(uint(&r, "/totals/errors"), 0);
    let duration = num(&r, "/duration_s");
    let throughput = num(&r, "/totals/throughput");
    // Each answer takes 20 ms of the server's one-at-a-time turn: `count` of them take at
    // least count × 20 ms, which is the least the window can be.
    assert!(
        duration >= count as f64 * 0.020,
        "{count} answers at 50/s counted over {duration} s"
    );
    assert!((throughput - count as f64 / duration).abs() < 1e-6 * throughput.max(1.0));
    assert!(
        throughput <= 50.5,
        "throughput {throughput}/s from a 50/s server"
    );
    let warnings: Vec<&str> = at(&r, "/warnings")
        .as_array()
        .expect("warnings array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("did not keep up")),
        "{warnings:?}"
    );
}

#[test]
fn open_model_per_endpoint_sends_exactly_the_requested_count() {
    // Count mode stops the send loop right after a spawn: every spawned request must still
    // be waited for and recorded.
    let (fin, r) = load_run(&[
        "api",
        "--rate",
        "2000",
        "--requests",
        "300",
        "--warmup",
        "0s",
    ]);
    assert_ok_or_only_speed_missed(&fin, &r);
    assert_eq!(string(&r, "/load/model"), "open");
    for name in operation_names(&r) {
        let stats = &r["operations"][&name];
        assert_eq!(uint(stats, "/count"), 300, "{name}: {stats}");
        assert_eq!(uint(stats, "/errors"), 0, "{name}: {stats}");
        assert_histogram_consistent(&name, stats);
    }
}

#[test]
fn direct_runs_the_mix_in_process() {
    let (fin, r) = load_run(&["stress", "--direct", "--duration", "2s", "--warmup", "0s"]);
    assert_ok_or_only_speed_missed(&fin, &r);
    assert_eq!(string(&r, "/target"), "direct");
    assert_eq!(uint(&r, "/integrity/lost_writes"), 0);
    assert!(uint(&r, "/integrity/checked") > 0);
    assert!(uint(&r, "/totals/count") > 0);
    assert_eq!(uint(&r, "/totals/errors"), 0);
}

#[test]
fn legacy_profile_runs_with_no_lost_writes() {
    let (fin, r) = load_run(&[
        "stress",
        "--profile",
        "legacy",
        "--duration",
        "2s",
        "--warmup",
        "0s",
    ]);
    assert_ok_or_only_speed_missed(&fin, &r);
    assert_eq!(string(&r, "/profile"), "legacy");
    assert_eq!(string(&r, "/server/stats/profile"), "legacy");
    assert_eq!(uint(&r, "/integrity/lost_writes"), 0);
    assert!(uint(&r, "/integrity/checked") > 0);
    assert_eq!(uint(&r, "/totals/errors"), 0);
}

// ---------------------------------------------------------------------------------------------
// 12. Bad flags

#[test]
fn bad_flags_exit_2_before_starting_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.json");
    // (arguments, a piece of the message)
    let cases: [(&[&str], &str); 11] = [
        (&["stress", "--concurrency", "0"], "--concurrency"),
        // clap reads `-5` as an unknown flag ...
        (&["stress", "--rate", "-5"], "-5"),
        // ... and the value check sees it when attached.
        (&["stress", "--rate=-5"], "--rate"),
        (&["stress", "--rate", "0"], "--rate"),
        (&["stress", "--read-ratio", "1.5"], "--read-ratio"),
        (&["stress", "--target", "ftp://x"], "ftp://x"),
        (&["stress", "--duration", "soon"], "soon"),
        (&["stress", "--duration", "0"], "must be more than 0"),
        (&["stress", "--timeout", "0s"], "--timeout"),
        (&["api", "--requests", "0"], "--requests"),
        (
            &["stress", "--rate", "10", "--max-in-flight", "0"],
            "--max-in-flight",
        ),
    ];
    for (args, piece) in cases {
        assert_refused(dir.path(), args, &out, &[piece]);
        assert!(
            !dir.path().join("results").exists(),
            "{args:?} wrote default results"
        );
    }
}

#[test]
fn flags_that_do_not_apply_are_refused_not_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.json");
    // Nothing listens there: a refusal must come before any attempt to reach it.
    let url = format!("http://127.0.0.1:{}", closed_port());
    let plain = scenario_file(
        dir.path(),
        "plain.toml",
        "name = \"plain\"\n[[operations]]\nname = \"h\"\nmethod = \"GET\"\npath = \"/\"\n",
    );
    let plain = path_arg(&plain);
    // (arguments, pieces of the message)
    let cases: [(&[&str], &[&str]); 11] = [
        (
            &["stress", "--target", &url, "--profile", "legacy"],
            &["--profile legacy", "--target"],
        ),
        (
            &["api", "--target", &url, "--keep-data"],
            &["--keep-data", "--target"],
        ),
        (
            &["api", "--scenario", "concurrent"],
            &[
                "--scenario concurrent",
                "kind burst",
                "`api` runs per_endpoint",
            ],
        ),
        (
            &["concurrent", "--scenario", "stress"],
            &["kind mix", "`concurrent` runs burst"],
        ),
        (
            &["stress", "--scenario", "simulate"],
            &["kind flow", "`stress` runs mix", "run simulate"],
        ),
        (
            &["simulate", "--scenario", "api-latency"],
            &["kind per_endpoint", "`simulate` runs flow"],
        ),
        (
            &["concurrent", "--warmup", "1s"],
            &["--warmup", "kind burst"],
        ),
        (
            &["run", "ci", "simulate", "--duration", "2s"],
            &["--duration", "scenario simulate (kind flow)"],
        ),
        (
            &["stress", "--direct", "--timeout", "5s"],
            &["--timeout", "--direct"],
        ),
        (
            &["stress", "--direct", "--scenario", plain],
            &["--direct", "operation \"h\"", "plain HTTP request"],
        ),
        // A plain-request file is a mix: `stress` takes it, `api` does not.
        (&["api", "--scenario", plain], &["kind mix"]),
    ];
    for (args, pieces) in cases {
        assert_refused(dir.path(), args, &out, pieces);
        assert!(
            !dir.path().join("results").exists(),
            "{args:?} wrote default results"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input and faults (issue 8, the generator's half)

/// Values that used to panic the generator once it started (`overflow when adding duration
/// to instant`, `cannot convert float seconds to Duration`), as flags and in scenario files,
/// against a live target: they are refused before anything reaches it.
#[test]
fn values_that_panicked_are_refused_before_any_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let monitor = Monitor::start("optimized", &dir.path().join("data"));
    let url = format!("http://{}", monitor.addr);
    let out = dir.path().join("x.json");
    let huge = "10000000000000000000s";
    // (arguments, pieces of the message)
    let flags: [(&[&str], &[&str]); 3] = [
        (
            &["stress", "--duration", huge],
            &["--duration", "at most 24h"],
        ),
        (&["stress", "--warmup", huge], &["--warmup", "at most 1h"]),
        (
            &["stress", "--rate", "1e-300", "--threads", "2"],
            &["--rate", "from 0.001 to 10,000,000 requests per second"],
        ),
    ];
    for (args, pieces) in flags {
        let mut all = args.to_vec();
        all.extend(["--target", &url]);
        assert_refused(dir.path(), &all, &out, pieces);
    }
    let op = "[[operations]]\nname = \"c\"\nkind = \"create_execution\"\n";
    let files = [
        (
            "duration.toml",
            format!("name = \"d\"\nduration = \"{huge}\"\n{op}"),
            ":2",
            "duration",
        ),
        (
            "warmup.toml",
            format!("name = \"w\"\nwarmup = \"{huge}\"\n{op}"),
            ":2",
            "warmup",
        ),
        (
            "rate.toml",
            format!("name = \"r\"\n{op}[load]\nmodel = \"open\"\nrate = 1e-300\n"),
            ":7",
            "rate",
        ),
    ];
    for (name, text, line, key) in files {
        let file = scenario_file(dir.path(), name, &text);
        let file = path_arg(&file);
        assert_refused(
            dir.path(),
            &["run", file, "--target", &url, "--threads", "2"],
            &out,
            &[&format!("{file}{line}"), &format!("key \"{key}\"")],
        );
    }
    let list = common::expect(monitor.addr, "GET", "/api/executions?limit=1", None, 200);
    assert_eq!(list["total"], 0, "a refused run reached the target: {list}");
}

/// Every number a user gives has a range, the same for a flag and a scenario key, and a
/// value past it is refused naming the flag (or the file, line and key), with exit 2, before
/// anything is started. Nothing listens at the target, so a value that got through would
/// end in exit 3 (unreachable), not in a load.
#[test]
fn numbers_out_of_range_are_refused_naming_the_flag_or_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.json");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let huge = "10000000000000000000s";
    let flags: [(&[&str], &[&str]); 14] = [
        (
            &["concurrent", "--concurrency", "10000000"],
            &["--concurrency", "from 1 to 100,000"],
        ),
        (&["stress", "--concurrency", "100001"], &["--concurrency"]),
        (&["stress", "--rate", "20000000"], &["--rate", "10,000,000"]),
        (&["stress", "--rate", "nan"], &["--rate"]),
        (
            &["stress", "--rate", "10", "--max-in-flight", "10000000"],
            &["--max-in-flight", "from 1 to 100,000"],
        ),
        (&["stress", "--timeout", huge], &["--timeout", "at most 1h"]),
        (
            &["run", "ci", "--duration", "25h"],
            &["--duration", "at most 24h"],
        ),
        (&["api", "--duration", huge], &["--duration"]),
        (
            &["api", "--requests", "10000000000"],
            &["--requests", "1,000,000,000"],
        ),
        (
            &["simulate", "--executions", "4000000000"],
            &["--executions", "1,000,000"],
        ),
        (
            &["stress", "--threads", "100000"],
            &["--threads", "from 1 to 256"],
        ),
        (&["stress", "--threads", "0"], &["--threads"]),
        (&["stress", "--read-ratio", "NaN"], &["--read-ratio"]),
        (&["stress", "--read-ratio", "1e300"], &["--read-ratio"]),
    ];
    for (args, pieces) in flags {
        let mut all = args.to_vec();
        all.extend(["--target", &url]);
        assert_refused(dir.path(), &all, &out, pieces);
    }
    let op = "[[operations]]\nname = \"a\"\nkind = \"append_logs\"\n";
    // (file name, text, line, key)
    let files = [
        (
            "burst.toml",
            "name = \"b\"\nkind = \"burst\"\n[load]\nconcurrency = 10000000\n".to_string(),
            ":4",
            "concurrency",
        ),
        (
            "lines.toml",
            format!("name = \"l\"\n{op}lines = 4000000000\n"),
            ":5",
            "lines",
        ),
        (
            "seed.toml",
            format!("name = \"s\"\nseed = 4000000000\n{op}"),
            ":2",
            "seed",
        ),
        (
            "flow.toml",
            "name = \"f\"\nkind = \"flow\"\n[flow]\nexecutions = 4000000000\nsteps = 1\n\
             artifacts = 0\nlog_lines = 0\n"
                .to_string(),
            ":4",
            "executions",
        ),
        (
            "flow-lines.toml",
            "name = \"f\"\nkind = \"flow\"\n[flow]\nexecutions = 1\nsteps = 1\n\
             artifacts = 0\nlog_lines = 4000000000\n"
                .to_string(),
            ":7",
            "log_lines",
        ),
    ];
    for (name, text, line, key) in files {
        let file = scenario_file(dir.path(), name, &text);
        let file = path_arg(&file);
        assert_refused(
            dir.path(),
            &["run", file, "--target", &url],
            &out,
            &[&format!("{file}{line}"), &format!("key \"{key}\"")],
        );
    }
    // compare's limits have their range too.
    let fake = dir.path().join("r.json");
    std::fs::write(&fake, "{}").expect("write");
    let fake = path_arg(&fake);
    for limit in ["p99=1e300", "p99=0", "error_rate=150", "throughput=nan"] {
        let fin = run_in(
            dir.path(),
            &["compare", fake, fake, "--limit", limit],
            REFUSE_TIMEOUT,
        );
        assert_eq!(fin.code, 2, "--limit {limit}: {}", fin.stderr);
        assert!(
            fin.stderr.contains(limit),
            "--limit {limit}: {}",
            fin.stderr
        );
    }
}

/// Limits the child's open files to `limit` (soft and hard), as `ulimit -n` would.
fn open_files_limit(command: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches only the child being started.
    unsafe {
        command.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// A burst or a worker pool needs a connection (an open file, a local port) for each of its
/// requests in flight: more than the machine allows is refused before the run, naming the
/// flag or key and the limit, instead of failing half of its connections (or, at ten
/// million, growing until the kernel kills it).
#[test]
fn more_connections_than_the_machine_allows_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let monitor = Monitor::start("optimized", &dir.path().join("data"));
    let url = format!("http://{}", monitor.addr);
    let out = dir.path().join("x.json");
    let burst = scenario_file(
        dir.path(),
        "burst.toml",
        "name = \"b\"\nkind = \"burst\"\n[load]\nconcurrency = 1000\n",
    );
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["concurrent", "--concurrency", "1000"],
            &["--concurrency 1000", "open-files limit is 256", "at most"],
        ),
        (
            &["stress", "--concurrency", "1000", "--duration", "1s"],
            &["--concurrency 1000", "open-files limit"],
        ),
        (
            &["run", path_arg(&burst)],
            &["load.concurrency = 1000 of scenario b", "open-files limit"],
        ),
    ];
    for (args, pieces) in cases {
        let mut all = args.to_vec();
        all.extend(["--target", &url, "--no-progress", "--out", path_arg(&out)]);
        let fin = Generator::start_with(dir.path(), &all, |c| open_files_limit(c, 256))
            .finish(REFUSE_TIMEOUT);
        assert_eq!(fin.code, 2, "{args:?}; stderr: {}", fin.stderr);
        for piece in pieces {
            assert!(
                fin.stderr.contains(piece),
                "{args:?}: {piece:?} missing: {}",
                fin.stderr
            );
        }
        assert!(!out.exists(), "{args:?} wrote results");
    }
    let list = common::expect(monitor.addr, "GET", "/api/executions?limit=1", None, 200);
    assert_eq!(list["total"], 0, "a refused run reached the target: {list}");

    // The open model's default in-flight cap (10,000) adapts to the limit rather than being
    // refused: the user did not ask for it.
    let plain = scenario_file(
        dir.path(),
        "plain.toml",
        "name = \"p\"\n[[operations]]\nname = \"h\"\nmethod = \"GET\"\npath = \"/api/health\"\n",
    );
    let _load = one_load_at_a_time();
    let args = [
        "run",
        path_arg(&plain),
        "--rate",
        "50",
        "--duration",
        "1s",
        "--target",
        &url,
        "--no-progress",
        "--out",
        path_arg(&out),
    ];
    let fin =
        Generator::start_with(dir.path(), &args, |c| open_files_limit(c, 256)).finish(RUN_TIMEOUT);
    assert_eq!(fin.code, 0, "stderr: {}", fin.stderr);
    assert!(uint(&read_results(&out), "/totals/count") >= 40);
}

/// A loopback HTTP/1.1 server for set-up faults: `answer(method, path)` gives the status and
/// JSON body of each request, or None to never answer it (the connection is held open).
/// After `accept` connections it stops accepting: later connects wait in the listen queue
/// and then time out. `seen` is set once a request `answer` left unanswered has arrived.
fn scripted_server(
    accept: usize,
    answer: fn(&str, &str) -> Option<(u16, String)>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&seen);
    thread::spawn(move || {
        for stream in listener.incoming().take(accept).flatten() {
            let flag = std::sync::Arc::clone(&flag);
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut stream = stream;
                loop {
                    let mut head = String::new();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {
                                if let Some(v) =
                                    line.to_ascii_lowercase().strip_prefix("content-length:")
                                {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                                if head.is_empty() {
                                    head = line;
                                }
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let mut parts = head.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let Some((status, body)) = answer(method, path) else {
                        flag.store(true, Ordering::SeqCst);
                        // Held open, never answered, until the client goes.
                        while reader.read_line(&mut String::new()).is_ok_and(|n| n > 0) {}
                        return;
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
        // Not accepting any more: keep the listener (and its queue) open.
        thread::sleep(Duration::from_secs(3600));
        drop(listener);
    });
    (url, seen)
}

/// The StepFlow answers set-up needs: an empty list for the probe, creates with ids.
fn stepflow_setup_answer(method: &str, path: &str) -> Option<(u16, String)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    match (method, path) {
        ("GET", "/api/executions?limit=1") => Some((200, r#"{"executions":[],"total":0}"#.into())),
        ("POST", "/api/executions") => {
            let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some((
                201,
                format!(r#"{{"id":{id},"name":"x","status":"pending"}}"#),
            ))
        }
        _ => None,
    }
}

/// Ctrl-C stops a run in every phase, set-up and read-back included, within seconds (the
/// requests it interrupts were given `--timeout 10m`), and the run still writes its results,
/// aborted, and exits 3.
#[test]
fn ctrl_c_in_set_up_and_read_back_stops_the_run_with_results() {
    use std::sync::atomic::Ordering;
    let _load = one_load_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = scenario_file(
        dir.path(),
        "seed.toml",
        "name = \"bigseed\"\nduration = \"2s\"\nseed = 1000000\n\
         [[operations]]\nname = \"get\"\nkind = \"get_execution\"\n",
    );
    // The probe: the target accepts the connection and never answers.
    let (probe_url, _) = scripted_server(usize::MAX, |_, _| None);
    // Opening a burst's connections: after the probe's, the target accepts no more.
    let (connect_url, _) = scripted_server(1, stepflow_setup_answer);
    // The read-back: creates are answered, the execution list never is.
    let (read_back_url, read_back_seen) = scripted_server(usize::MAX, stepflow_setup_answer);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("the probe", vec!["stress", "--target", &probe_url]),
        (
            "opening the burst's connections",
            vec![
                "concurrent",
                "--concurrency",
                "3000",
                "--target",
                &connect_url,
            ],
        ),
        (
            "the read-back",
            vec![
                "concurrent",
                "--concurrency",
                "5",
                "--target",
                &read_back_url,
            ],
        ),
        ("seeding the bundled monitor", vec!["run", path_arg(&seed)]),
    ];
    for (phase, args) in cases {
        let out = dir.path().join("x.json");
        let _ = std::fs::remove_file(&out);
        let mut all = args.clone();
        all.extend(["--timeout", "10m", "--no-progress", "--out", path_arg(&out)]);
        let mut generator = Generator::start(dir.path(), &all);
        // Into the phase: for the read-back, once its request arrived; for seeding, once
        // the bundled monitor runs; otherwise a moment after the start.
        if phase == "the read-back" {
            wait_until(Duration::from_secs(30), || {
                read_back_seen.load(Ordering::SeqCst).then_some(())
            })
            .expect("the read-back request never came");
        } else if phase.starts_with("seeding") {
            wait_until(Duration::from_secs(30), || {
                children_of(generator.pid(), " serve ").into_iter().next()
            })
            .expect("no bundled monitor within 30 s");
        }
        thread::sleep(Duration::from_millis(1500));
        generator.signal(libc::SIGINT);
        let interrupted = Instant::now();
        let fin = generator.finish(Duration::from_secs(60));
        assert_eq!(fin.code, 3, "{phase}: stderr: {}", fin.stderr);
        assert!(
            interrupted.elapsed() < Duration::from_secs(15),
            "{phase}: took {:?} to stop after SIGINT",
            interrupted.elapsed()
        );
        let r = read_results(&out);
        assert!(
            string(&r, "/aborted").contains("interrupted"),
            "{phase}: aborted is {}",
            r["aborted"]
        );
        assert_eq!(uint(&r, "/exit_code"), 3, "{phase}");
    }
}
/// A loopback server that accepts connections and reads them, and never answers.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    url
}

/// Peak resident memory of a running process, bytes (VmHWM).
fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The open model against a target that never answers: every in-flight slot stays taken and
/// each due request waits for one. The generator keeps what it has in flight, not one task
/// per request scheduled (a million a second here), and Ctrl-C still ends the run.
#[test]
fn a_stalled_target_neither_grows_the_open_model_nor_keeps_it_from_stopping() {
    let _load = one_load_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = silent_server();
    let plain = scenario_file(
        dir.path(),
        "plain.toml",
        "name = \"p\"\n[[operations]]\nname = \"h\"\nmethod = \"GET\"\npath = \"/\"\n",
    );
    let out = dir.path().join("x.json");
    let mut generator = Generator::start(
        dir.path(),
        &[
            "run",
            path_arg(&plain),
            "--rate",
            "1000000",
            "--max-in-flight",
            "10",
            "--duration",
            "30s",
            "--timeout",
            "1h",
            "--target",
            &url,
            "--no-progress",
            "--out",
            path_arg(&out),
        ],
    );
    thread::sleep(Duration::from_secs(4));
    let peak = peak_rss_bytes(generator.pid()).expect("the generator is running");
    generator.signal(libc::SIGINT);
    let interrupted = Instant::now();
    eprintln!("peak RSS after 4 s: {} MiB", peak >> 20);
    let fin = generator.finish(Duration::from_secs(60));
    // Millions of requests were due; ten are in flight. A task per due request held
    // hundreds of MiB by now, growing without end.
    assert!(peak < 200 << 20, "peak RSS {} MiB", peak >> 20);
    assert_eq!(fin.code, 3, "stderr: {}", fin.stderr);
    assert!(
        interrupted.elapsed() < Duration::from_secs(15),
        "took {:?} to stop after SIGINT",
        interrupted.elapsed()
    );
    let r = read_results(&out);
    assert!(string(&r, "/aborted").contains("interrupted"), "{r:#}");
}

/// An `--out` that cannot be written is found before any load (exit 2), not after the whole
/// run (exit 3); the check leaves nothing behind where it can write.
#[test]
fn unwritable_out_is_refused_before_any_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let monitor = Monitor::start("optimized", &dir.path().join("data"));
    let url = format!("http://{}", monitor.addr);
    for out in [
        "/proc/r.json",
        "/proc/no-such-dir/r.json",
        "/dev/null/r.json",
    ] {
        let fin = run_in(
            dir.path(),
            &[
                "stress",
                "--duration",
                "1s",
                "--target",
                &url,
                "--no-progress",
                "--out",
                out,
            ],
            REFUSE_TIMEOUT,
        );
        assert_eq!(fin.code, 2, "--out {out}: stderr: {}", fin.stderr);
        assert!(fin.stderr.contains(out), "--out {out}: {}", fin.stderr);
        assert!(fin.stderr.contains("--out"), "--out {out}: {}", fin.stderr);
    }
    let list = common::expect(monitor.addr, "GET", "/api/executions?limit=1", None, 200);
    assert_eq!(list["total"], 0, "a refused run reached the target: {list}");

    // Where it can write, the check leaves no file of its own: only the results appear.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let results_dir = dir.path().join("results-here");
    std::fs::create_dir(&results_dir).expect("mkdir");
    let out = results_dir.join("x.json");
    let fin = run_in(
        dir.path(),
        &[
            "stress",
            "--target",
            &closed,
            "--no-progress",
            "--out",
            path_arg(&out),
        ],
        REFUSE_TIMEOUT,
    );
    assert_eq!(fin.code, 3, "stderr: {}", fin.stderr);
    let names: Vec<String> = std::fs::read_dir(&results_dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["x.json"]);
}

/// A `--target` that is not a URL of a host and port is bad usage (exit 2), named as such,
/// not a host that "cannot be resolved" (exit 3).
#[test]
fn malformed_targets_are_bad_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.json");
    // (URL, a piece of the message besides the URL)
    let cases = [
        ("http://127.0.0.1:99999", "port"),
        ("http://127.0.0.1:0", "port"),
        ("http://127.0.0.1:8a", "port"),
        ("http://[::1", "]"),
        ("http://u:p@127.0.0.1:8080", "user"),
        ("http://", "host"),
        ("http://:8080", "host"),
        ("http://exa mple.com", "host"),
        ("http://127.0.0.1:8080?x=1", "query"),
        ("ftp://x", "http://"),
    ];
    for (url, piece) in cases {
        assert_refused(
            dir.path(),
            &["stress", "--target", url],
            &out,
            &[url, piece],
        );
    }
}
