//! The monitor's performance tools end to end, over real HTTP against `stepflow-bench serve`:
//! alerts from a thresholds file, recommendations on both profiles and after an index was
//! dropped, optimize under a stress load, the slow-query log, `/metrics` through promtool,
//! the dashboard live in headless Chromium, and the CLI's monitor, analyze and optimize.
//!
//! promtool (Debian's `prometheus`) and Chromium (`chromium`) are installed by `.ci/run`;
//! without them these two tests say so and pass, except under CI (`CI` set), where a
//! missing tool fails them.

#[path = "common/cdp.rs"]
mod cdp;
mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn kinds(recs: &Value) -> Vec<String> {
    recs["recommendations"]
        .as_array()
        .expect("recommendations")
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Whether a tool must be there: under CI a missing tool is a failure, elsewhere a skip.
fn require_tool(name: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is not installed; .ci/run installs it (apt-get install ...)");
    }
    eprintln!("SKIPPED: {name} is not installed (apt-get install it to run this test)");
    false
}

fn has_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A stress load on the monitor at `addr`, as a child process; returns its results.
fn stress(
    dir: &Path,
    addr: std::net::SocketAddr,
    duration: &str,
) -> std::thread::JoinHandle<(Finished, Value)> {
    let out = dir.join(format!("stress-{}.json", addr.port()));
    let dir = dir.to_path_buf();
    let target = format!("http://{addr}");
    let duration = duration.to_string();
    std::thread::spawn(move || {
        let fin = run_bench(
            &dir,
            &[
                "stress",
                "--target",
                &target,
                "--duration",
                &duration,
                "--concurrency",
                "8",
                "--no-progress",
                "--out",
                out.to_str().unwrap(),
            ],
            Duration::from_secs(120),
        );
        let r = read_results(&out);
        (fin, r)
    })
}

#[test]
fn alerts_fire_with_the_thresholds_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.toml");
    std::fs::write(
        &file,
        "window_s = 2\nmin_requests = 1\n\
         [rules.route_p99_ms]\ninfo = 0.0001\nwarning = 0.0002\ncritical = 0.0003\nemergency = 0.0004\n\
         [rules.rss_mb]\ninfo = 0.5\nwarning = 1\n",
    )
    .unwrap();
    let m = Monitor::start_with(
        "optimized",
        &dir.path().join("data"),
        &["--alerts", file.to_str().unwrap()],
    );
    for _ in 0..5 {
        expect(m.addr, "GET", "/api/health", None, 200);
    }
    // The sampler evaluates once a second; every request takes more than 0.4 µs.
    let alerts = wait_until(WAIT, || {
        let a = expect(m.addr, "GET", "/performance/alerts", None, 200);
        let list = a["alerts"].as_array().unwrap().clone();
        list.iter()
            .any(|x| x["rule"] == "route_p99_ms" && x["subject"] == "/api/health")
            .then_some(a)
    })
    .expect("a route_p99_ms alert on /api/health");
    assert_eq!(alerts["window_s"], 2);
    assert_eq!(alerts["instrumentation"], true);
    let list = alerts["alerts"].as_array().unwrap();
    let health = list
        .iter()
        .find(|x| x["rule"] == "route_p99_ms" && x["subject"] == "/api/health")
        .unwrap();
    assert_eq!(health["level"], "emergency", "{health}");
    assert_eq!(health["threshold"], 0.0004);
    assert!(health["since"].as_str().unwrap().ends_with('Z'));
    // A gauge rule: RSS is above 1 MB; critical keeps its default (1000 MB), so warning.
    let rss = list
        .iter()
        .find(|x| x["rule"] == "rss_mb")
        .expect("rss alert");
    assert_eq!(rss["level"], "warning");
    assert_eq!(rss["threshold"], 1.0);
    assert_eq!(alerts["thresholds"]["rss_mb"]["critical"], 1000.0);
    assert_eq!(alerts["thresholds"]["wal_mb"]["warning"], 50.0);
}

#[test]
fn default_thresholds_are_the_write_ups_and_a_quiet_server_has_no_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start("optimized", dir.path());
    let a = expect(m.addr, "GET", "/performance/alerts", None, 200);
    assert_eq!(a["alerts"], json!([]), "{a}");
    assert_eq!(a["thresholds"]["route_p99_ms"]["warning"], 10.0);
    assert_eq!(a["thresholds"]["wal_mb"]["warning"], 50.0);
    assert_eq!(a["thresholds"]["rss_mb"]["warning"], 500.0);
    assert_eq!(a["thresholds"]["error_rate_pct"]["warning"], 0.1);
}

#[test]
fn bad_numbers_are_refused_with_exit_2_or_400() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = d.join("bad.toml");
    for (text, says) in [
        (
            "[rules.route_p99_ms]\nwarning = -3\n",
            "rules.route_p99_ms.warning: must be more than 0",
        ),
        ("window_s = 0\n", "window_s: must be from 1 to 3600"),
        ("[rules.wal]\nwarning = 1\n", "rules.wal: no such rule"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let data = d.join("data");
        let fin = run_bench(
            d,
            &[
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--data-dir",
                data.to_str().unwrap(),
                "--alerts",
                bad.to_str().unwrap(),
            ],
            WAIT,
        );
        assert_eq!(fin.code, 2, "{text}: {}", fin.stderr);
        assert!(fin.stderr.contains(says), "{text}: {}", fin.stderr);
    }
    for (args, says) in [
        (
            vec!["serve", "--slow-query-ms=-1"],
            "must be from 0 to 60000 milliseconds",
        ),
        (
            vec!["serve", "--slow-query-ms", "60001"],
            "must be from 0 to 60000 milliseconds",
        ),
        (
            vec![
                "monitor",
                "--target",
                "http://127.0.0.1:9",
                "--interval",
                "0",
            ],
            "must be from 100ms to 1h",
        ),
        (
            vec![
                "monitor",
                "--target",
                "http://127.0.0.1:9",
                "--duration",
                "0",
            ],
            "must be more than 0",
        ),
        (
            vec![
                "monitor",
                "--target",
                "http://127.0.0.1:9",
                "--duration",
                "2",
                "--interval",
                "3",
            ],
            "longer than --duration",
        ),
        (
            vec!["monitor", "--target", "http://127.0.0.1:99999"],
            "not a port number",
        ),
        (
            vec![
                "optimize",
                "--target",
                "http://127.0.0.1:9",
                "--action",
                "defrag",
            ],
            "invalid value 'defrag'",
        ),
    ] {
        let fin = run_bench(d, &args, WAIT);
        assert_eq!(fin.code, 2, "{args:?}: {}", fin.stderr);
        assert!(fin.stderr.contains(says), "{args:?}: {}", fin.stderr);
    }
    let m = Monitor::start("optimized", &d.join("data2"));
    for q in ["limit=0", "limit=1001", "limit=x"] {
        let r = get(m.addr, &format!("/performance/slow-queries?{q}"));
        assert_eq!(r.status, 400, "{q}");
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("limit must be"));
    }
    for (body, status) in [
        (json!({"actions": []}), 422),
        (json!({"actions": ["defrag"]}), 422),
        (json!({"actions": ["vacuum", "vacuum"]}), 422),
        (json!({"action": ["vacuum"]}), 400),
    ] {
        let r = call(m.addr, "POST", "/performance/optimize", Some(&body));
        assert_eq!(r.status, status, "{body}");
        assert!(r.json()["error"].is_string());
    }
}

#[test]
fn recommendations_differ_between_legacy_and_optimized() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = Monitor::start("legacy", &dir.path().join("legacy"));
    create_execution(legacy.addr, "a");
    let r = expect(
        legacy.addr,
        "GET",
        "/performance/recommendations",
        None,
        200,
    );
    let k = kinds(&r);
    for wanted in ["journal_mode", "synchronous", "connection_reuse"] {
        assert!(
            k.contains(&wanted.to_string()),
            "legacy lacks {wanted}: {k:?}"
        );
    }
    assert_eq!(r["profile"], "legacy");
    assert_eq!(r["pragmas"]["journal_mode"], "delete");
    assert!(!k.contains(&"index".to_string()), "{k:?}");

    let opt = Monitor::start("optimized", &dir.path().join("optimized"));
    create_execution(opt.addr, "a");
    let r = expect(opt.addr, "GET", "/performance/recommendations", None, 200);
    let k = kinds(&r);
    for unwanted in [
        "journal_mode",
        "synchronous",
        "connection_reuse",
        "index",
        "cache_size",
        "mmap_size",
    ] {
        assert!(
            !k.contains(&unwanted.to_string()),
            "optimized has {unwanted}: {k:?}"
        );
    }
    assert_eq!(r["pragmas"]["journal_mode"], "wal");
    assert_eq!(r["pragmas"]["synchronous"], 1);
    // Every API read query was explained, and none scans.
    let queries = r["queries"].as_array().unwrap();
    assert!(queries.len() >= 7);
    assert!(queries
        .iter()
        .all(|q| !q["plan"].to_string().contains("\"SCAN executions\"")));
}

#[test]
fn a_dropped_index_is_recommended_with_the_create_index_that_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut m = Monitor::start("optimized", &data);
    let id = create_execution(m.addr, "a");
    expect(
        m.addr,
        "POST",
        &format!("/api/executions/{id}/artifacts"),
        Some(&json!({"name": "x", "content": "y"})),
        201,
    );
    assert!(!kinds(&expect(
        m.addr,
        "GET",
        "/performance/recommendations",
        None,
        200
    ))
    .contains(&"index".to_string()));
    assert!(m.terminate().success());

    let conn = rusqlite::Connection::open(data.join("stepflow.db")).unwrap();
    conn.execute_batch(
        "DROP INDEX artifacts_by_execution; DROP INDEX executions_by_status_created;",
    )
    .unwrap();
    drop(conn);

    let mut m = Monitor::start("optimized", &data);
    // The reads run, so the recommendations see them observed.
    expect(
        m.addr,
        "GET",
        &format!("/api/executions/{id}/artifacts"),
        None,
        200,
    );
    expect(m.addr, "GET", "/api/executions?status=pending", None, 200);
    let r = expect(m.addr, "GET", "/performance/recommendations", None, 200);
    let fixes: Vec<String> = r["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "index")
        .map(|x| x["fix"]["sql"].as_str().unwrap().to_string())
        .collect();
    assert!(
        fixes.contains(&"CREATE INDEX IF NOT EXISTS artifacts_by_execution_id_id ON artifacts (execution_id, id)".to_string()),
        "{fixes:?}"
    );
    assert!(
        fixes.contains(&"CREATE INDEX IF NOT EXISTS executions_by_status_created_at_id ON executions (status, created_at, id)".to_string()),
        "{fixes:?}"
    );
    assert!(m.terminate().success());

    // The recommended statements fix it: no index recommendation once they ran.
    let conn = rusqlite::Connection::open(data.join("stepflow.db")).unwrap();
    for sql in &fixes {
        conn.execute_batch(sql).unwrap();
    }
    drop(conn);
    let m = Monitor::start("optimized", &data);
    let r = expect(m.addr, "GET", "/performance/recommendations", None, 200);
    assert!(!kinds(&r).contains(&"index".to_string()), "{r}");
}

#[test]
fn fragmentation_recommends_vacuum_and_optimize_vacuums_it_away() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut m = Monitor::start("optimized", &data);
    create_execution(m.addr, "a");
    assert!(m.terminate().success());
    // Pages freed by a dropped table stay in the file as its freelist.
    let conn = rusqlite::Connection::open(data.join("stepflow.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE junk (b BLOB);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400)
         INSERT INTO junk SELECT randomblob(4000) FROM c;
         DROP TABLE junk;",
    )
    .unwrap();
    drop(conn);
    let m = Monitor::start("optimized", &data);
    let r = expect(m.addr, "GET", "/performance/recommendations", None, 200);
    let vacuum = r["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "vacuum")
        .unwrap_or_else(|| panic!("no vacuum recommendation: {r}"))
        .clone();
    assert!(vacuum["measured"]["fragmentation"].as_f64().unwrap() > 0.3);
    assert_eq!(vacuum["fix"]["action"], "vacuum");
    let done = expect(
        m.addr,
        "POST",
        "/performance/optimize",
        Some(&json!({"actions": ["vacuum", "analyze"]})),
        200,
    );
    let v = &done["done"][0];
    assert_eq!(v["action"], "vacuum");
    assert!(v["result"]["freelist_before"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(v["result"]["freelist_after"], 0, "{v}");
    assert!(done["done"][1]["result"]["stat1_rows"].as_i64().unwrap() > 0);
    let r = expect(m.addr, "GET", "/performance/recommendations", None, 200);
    let k = kinds(&r);
    assert!(
        !k.contains(&"vacuum".to_string()) && !k.contains(&"analyze".to_string()),
        "{k:?}"
    );
}

fn optimize_under_stress(profile: &str) {
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start(profile, &dir.path().join("data"));
    let load = stress(dir.path(), m.addr, "6s");
    let mut rounds = 0;
    while !load.is_finished() {
        let r = call(
            m.addr,
            "POST",
            "/performance/optimize",
            Some(&json!({"actions": ["analyze", "optimize", "checkpoint", "vacuum"]})),
        );
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        let j = r.json();
        assert_eq!(j["done"].as_array().unwrap().len(), 4, "{j}");
        rounds += 1;
    }
    let (fin, results) = load.join().unwrap();
    assert!(
        rounds >= 2,
        "only {rounds} optimize rounds ran during the load"
    );
    // No failed request, no lost write (the stress run's own integrity check).
    assert_correct(
        &format!("stress on {profile} while optimizing"),
        &fin,
        &results,
    );
    assert!(uint(&results, "/integrity/checked") > 0);
}

#[test]
fn optimize_runs_under_a_stress_load_without_a_failed_request_or_a_lost_write() {
    optimize_under_stress("optimized");
}

#[test]
fn optimize_runs_under_a_stress_load_on_the_legacy_profile_too() {
    optimize_under_stress("legacy");
}

#[test]
fn the_slow_query_log_records_statements_over_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let all = Monitor::start_with(
        "optimized",
        &dir.path().join("a"),
        &["--slow-query-ms", "0"],
    );
    create_execution(all.addr, "slow");
    expect(all.addr, "GET", "/api/executions?limit=5", None, 200);
    let s = expect(all.addr, "GET", "/performance/slow-queries", None, 200);
    assert_eq!(s["enabled"], true);
    assert_eq!(s["threshold_ms"], 0.0);
    let q = s["queries"].as_array().unwrap();
    let insert = q
        .iter()
        .find(|x| {
            x["sql"]
                .as_str()
                .unwrap()
                .starts_with("INSERT INTO executions")
        })
        .unwrap_or_else(|| panic!("no INSERT logged: {s}"));
    assert_eq!(insert["connection"], "writer");
    assert!(insert["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(q.iter().any(|x| x["connection"] == "reader"
        && x["sql"]
            .as_str()
            .unwrap()
            .contains("ORDER BY created_at DESC")));
    let one = expect(
        all.addr,
        "GET",
        "/performance/slow-queries?limit=1",
        None,
        200,
    );
    assert_eq!(one["queries"].as_array().unwrap().len(), 1);

    let none = Monitor::start_with(
        "legacy",
        &dir.path().join("b"),
        &["--slow-query-ms", "60000"],
    );
    create_execution(none.addr, "fast");
    let s = expect(none.addr, "GET", "/performance/slow-queries", None, 200);
    assert_eq!(
        (s["enabled"].clone(), s["total"].clone()),
        (json!(true), json!(0)),
        "{s}"
    );

    let off = Monitor::start("optimized", &dir.path().join("c"));
    let s = expect(off.addr, "GET", "/performance/slow-queries", None, 200);
    assert_eq!(s["enabled"], false);
}

#[test]
fn metrics_pass_promtool_while_a_load_runs() {
    if !require_tool("promtool", has_command("promtool")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start_with(
        "optimized",
        &dir.path().join("data"),
        &["--slow-query-ms", "1"],
    );
    let load = stress(dir.path(), m.addr, "4s");
    let mut scrapes = 0;
    let mut last = String::new();
    while !load.is_finished() || scrapes < 2 {
        let r = get(m.addr, "/metrics");
        assert_eq!(r.status, 200);
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = String::from_utf8(r.body).unwrap();
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // promtool exits 1 for lint warnings too; only an unparsable text is an error ("error
        // while linting" or a parse error), and this text has no lint warnings either.
        assert!(
            out.status.success(),
            "promtool: {said}\n--- metrics ---\n{text}"
        );
        scrapes += 1;
        last = text;
        std::thread::sleep(Duration::from_millis(300));
    }
    let (fin, results) = load.join().unwrap();
    assert_correct("stress while scraping", &fin, &results);
    for name in [
        "stepflow_http_requests_total{route=\"/api/executions\",status=\"2xx\"}",
        "stepflow_http_request_duration_seconds_bucket{route=\"/api/executions/{id}\",le=\"+Inf\"}",
        "stepflow_db_operation_duration_seconds_bucket{operation=\"commit\",le=",
        "stepflow_group_commit_batch_size_bucket{le=\"1\"}",
        "stepflow_writer_queue_depth ",
        "stepflow_wal_bytes ",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
    ] {
        assert!(last.contains(name), "no {name} in\n{last}");
    }
    // The count of creates the server answered is at least what the generator counted.
    let created: f64 = last
        .lines()
        .find(|l| {
            l.starts_with("stepflow_http_requests_total{route=\"/api/executions\",status=\"2xx\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(created >= uint(&results, "/operations/create_execution/count") as f64);
}

#[test]
fn without_instrumentation_no_request_figures_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start_with("optimized", dir.path(), &["--no-instrumentation"]);
    create_execution(m.addr, "a");
    let text = String::from_utf8(get(m.addr, "/metrics").body).unwrap();
    assert!(!text.contains("stepflow_http_requests_total"), "{text}");
    assert!(text.contains("stepflow_db_operation_duration_seconds_bucket"));
    let a = expect(m.addr, "GET", "/performance/alerts", None, 200);
    assert_eq!(a["instrumentation"], false);
}

#[test]
fn the_dashboard_renders_live_data_in_headless_chromium() {
    let Some(program) = cdp::chromium() else {
        require_tool("chromium", false);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start("optimized", &dir.path().join("data"));
    let base = format!("http://{}", m.addr);
    let page = get(m.addr, "/performance/dashboard");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    // STEPFLOW_DASHBOARD_SCREENSHOT=FILE keeps a screenshot after a longer load (the one in
    // results/reference/ was made so).
    let keep = std::env::var_os("STEPFLOW_DASHBOARD_SCREENSHOT");
    let load = stress(
        dir.path(),
        m.addr,
        if keep.is_some() { "40s" } else { "8s" },
    );
    let mut browser = cdp::Browser::launch(&program);
    let session = browser.open(&format!("{base}/performance/dashboard"), 1400, 1300);
    let state = "JSON.stringify({samples: +document.getElementById('samples').textContent, \
                 rps: document.getElementById('rps').textContent, \
                 status: document.getElementById('status').textContent, \
                 routes: document.getElementById('routes').textContent, \
                 recs: document.getElementById('recs').textContent})";
    let read = |b: &mut cdp::Browser| -> Value {
        serde_json::from_str(b.eval(&session, state).as_str().unwrap_or("{}")).unwrap_or(json!({}))
    };
    // Live: samples keep arriving over the event stream, with requests in them.
    let first = wait_until(WAIT, || {
        let s = read(&mut browser);
        (s["samples"].as_u64().unwrap_or(0) >= 2
            && s["rps"]
                .as_str()
                .is_some_and(|r| r.parse::<f64>().is_ok_and(|v| v > 0.0)))
        .then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "the dashboard showed no live samples: {}",
            read(&mut browser)
        )
    });
    assert_eq!(first["status"], "live", "{first}");
    assert!(
        first["routes"]
            .as_str()
            .unwrap()
            .contains("/api/executions"),
        "{first}"
    );
    let n = first["samples"].as_u64().unwrap();
    let later = wait_until(WAIT, || {
        let s = read(&mut browser);
        (s["samples"].as_u64().unwrap_or(0) > n).then_some(s)
    })
    .expect("the sample count stopped moving");
    assert!(
        !later["recs"].as_str().unwrap().contains("loading"),
        "{later}"
    );
    if keep.is_some() {
        let _ = wait_until(Duration::from_secs(60), || {
            (read(&mut browser)["samples"].as_u64().unwrap_or(0) >= 30).then_some(())
        });
    }
    let png = browser.screenshot_png(&session);
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Some(path) = keep {
        std::fs::write(path, &png).unwrap();
    }
    // No request left the monitor.
    let urls = browser.requested_urls();
    assert!(
        urls.iter().any(|u| u.ends_with("/performance/events")),
        "{urls:?}"
    );
    for u in &urls {
        assert!(u.starts_with(&base), "the page asked for {u}");
    }
    let (fin, results) = load.join().unwrap();
    assert_correct("stress under the dashboard", &fin, &results);
}

#[test]
fn monitor_analyze_and_optimize_work_against_the_bundled_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let m = Monitor::start("legacy", &dir.path().join("data"));
    create_execution(m.addr, "a");
    let target = format!("http://{}", m.addr);
    let out = dir.path().join("mon.json");
    let fin = run_bench(
        dir.path(),
        &[
            "monitor",
            "--target",
            &target,
            "--duration",
            "3",
            "--interval",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        WAIT,
    );
    assert_eq!(fin.code, 0, "{}", fin.stderr);
    assert!(fin.stdout.contains("req/s"), "{}", fin.stdout);
    // Its own shape, not a load run's: read as plain JSON.
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["kind"], "monitor");
    assert_eq!(r["profile"], "legacy");
    let ts = r["timeseries"].as_array().unwrap();
    assert_eq!(ts.len(), 3, "{r}");
    // The monitor's own polls are requests the server counted.
    assert!(
        ts.iter()
            .all(|s| s["requests_per_s"].as_f64().unwrap() > 0.0),
        "{r}"
    );
    assert!(ts.iter().all(|s| s["rss_bytes"].as_f64().unwrap() > 0.0));

    let fin = run_bench(dir.path(), &["analyze", "--target", &target], WAIT);
    assert_eq!(fin.code, 0, "{}", fin.stderr);
    assert!(
        fin.stdout.contains("(journal_mode)") && fin.stdout.contains("(connection_reuse)"),
        "{}",
        fin.stdout
    );
    let fin = run_bench(
        dir.path(),
        &["analyze", "--target", &target, "--format", "json"],
        WAIT,
    );
    let j: Value = serde_json::from_str(&fin.stdout).unwrap();
    assert_eq!(j["profile"], "legacy");

    let fin = run_bench(
        dir.path(),
        &[
            "optimize",
            "--target",
            &target,
            "--action",
            "vacuum",
            "--action",
            "checkpoint",
        ],
        WAIT,
    );
    assert_eq!(fin.code, 0, "{}", fin.stderr);
    assert!(
        fin.stdout.contains("vacuum") && fin.stdout.contains("VACUUM"),
        "{}",
        fin.stdout
    );
    assert!(fin.stdout.contains("checkpoint skipped"), "{}", fin.stdout);

    // Nothing listening: the target cannot be reached.
    drop(m);
    for cmd in ["analyze", "optimize"] {
        let fin = run_bench(dir.path(), &[cmd, "--target", &target], WAIT);
        assert_eq!(fin.code, 3, "{cmd}: {}", fin.stderr);
    }
    let fin = run_bench(
        dir.path(),
        &[
            "monitor",
            "--target",
            &target,
            "--duration",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        WAIT,
    );
    assert_eq!(fin.code, 3, "{}", fin.stderr);
}
