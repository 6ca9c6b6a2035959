//! The regression gate end to end: real runs of the bundled monitor, compared by the real
//! binary. Optimized against optimized must not regress; legacy against optimized must.

mod common;

use common::BIN;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run stepflow-bench")
}

/// One short run of the CI scenario; returns its results file.
fn run_ci(dir: &Path, name: &str, profile: &str) -> PathBuf {
    let out = dir.join(format!("{name}.json"));
    let o = bench(&[
        "run",
        "ci",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--profile",
        profile,
        "--no-progress",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]);
    // The CI scenario's targets are loose; legacy may still miss one (exit 1).
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{name}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn compare(base: &[PathBuf], cand: &[PathBuf], extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["compare".to_string(), "--baseline".into()];
    args.extend(base.iter().map(|p| p.display().to_string()));
    args.push("--candidate".into());
    args.extend(cand.iter().map(|p| p.display().to_string()));
    args.extend(["--format".into(), "json".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = bench(&refs);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let json_end = stdout.rfind('}').map_or(0, |i| i + 1);
    let v: Value = serde_json::from_str(&stdout[..json_end])
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap_or(-1), v)
}

fn totals_verdict(c: &Value, metric: &str) -> String {
    c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "totals" && r["metric"] == metric)
        .map(|r| r["verdict"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no totals.{metric} row in {c}"))
}

#[test]
fn optimized_against_optimized_does_not_regress_and_legacy_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Vec::new();
    let mut b = Vec::new();
    // Interleaved A B B A A B, as scripts/ci-gate.sh runs them.
    for i in 0..3 {
        if i % 2 == 0 {
            a.push(run_ci(dir.path(), &format!("a{i}"), "optimized"));
            b.push(run_ci(dir.path(), &format!("b{i}"), "optimized"));
        } else {
            b.push(run_ci(dir.path(), &format!("b{i}"), "optimized"));
            a.push(run_ci(dir.path(), &format!("a{i}"), "optimized"));
        }
    }
    let (code, c) = compare(&a, &b, &[]);
    let regressed: Vec<String> = c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "regressed")
        .map(|r| format!("{}.{}: {}", r["operation"], r["metric"], r["reason"]))
        .collect();
    assert!(regressed.is_empty(), "A/A regressed: {regressed:#?}");
    assert_ne!(code, 1, "{}", c["verdict"]);
    assert_ne!(code, 2, "{}", c["verdict"]);
    assert_eq!(c["baseline_runs"], 3);
    assert_eq!(c["paired"], true);

    let legacy = vec![run_ci(dir.path(), "legacy", "legacy")];
    // ci.toml's limits are set for the gate's 5 release runs a side; one debug run against
    // one is judged here at the general default throughput limit.
    let (code, c) = compare(&a[..1], &legacy, &["--limit", "throughput=10"]);
    assert_eq!(
        code, 1,
        "legacy candidate must fail the gate: {}",
        c["headline"]
    );
    assert_eq!(totals_verdict(&c, "throughput"), "regressed");
    assert_eq!(c["outcome"], "fail");
    assert_eq!(c["exit_code"], 1);
    let verdict = c["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("FAIL (exit 1): "), "{verdict}");
    assert!(verdict.contains("totals.throughput -"), "{verdict}");

    // JUnit output: one test case per metric, failures for the regressions.
    let junit = dir.path().join("junit.xml");
    let (_, c) = compare(&a[..1], &legacy, &["--junit", junit.to_str().unwrap()]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    // A case per row, and one per failure that is no row (a missed target, lost writes).
    let run_failures = c["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] != "regression")
        .count();
    assert_eq!(
        xml.matches("<testcase").count(),
        c["rows"].as_array().unwrap().len() + run_failures
    );
    assert!(xml.contains("<failure"), "{xml}");

    // Runs made one after another are not merged: that is compare's job.
    let merged = dir.path().join("merged.json");
    let merge = |x: &Path, y: &Path| {
        bench(&[
            "merge",
            x.to_str().unwrap(),
            y.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
            "--format",
            "json",
        ])
    };
    // (a[0] and a[2] are four runs apart.)
    let o = merge(&a[0], &a[2]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("use compare"));
    assert!(!merged.exists());

    // Two generators loading one server at the same time merge: their counts add.
    let server = common::Monitor::start("optimized", &dir.path().join("shared"));
    let url = format!("http://{}", server.addr);
    let parts: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("part{i}.json")))
        .collect();
    let children: Vec<_> = parts
        .iter()
        .map(|out| {
            Command::new(BIN)
                .args(["run", "ci", "--duration", "2s", "--warmup", "500ms"])
                .args([
                    "--target",
                    &url,
                    "--no-progress",
                    "--format",
                    "json",
                    "--out",
                ])
                .arg(out)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start a generator")
        })
        .collect();
    for mut child in children {
        let status = child.wait().expect("generator");
        assert!(matches!(status.code(), Some(0 | 1)), "{status}");
    }
    let o = merge(&parts[0], &parts[1]);
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (m, x, y) = (read(&merged), read(&parts[0]), read(&parts[1]));
    let count = |v: &Value| v["totals"]["count"].as_u64().unwrap();
    assert_eq!(count(&m), count(&x) + count(&y));
    let tput = |v: &Value| v["totals"]["throughput"].as_f64().unwrap();
    assert!(
        tput(&m) > tput(&x).max(tput(&y)),
        "{} {} {}",
        tput(&m),
        tput(&x),
        tput(&y)
    );
}

#[test]
fn a_missed_target_fails_compare_with_one_closing_line() {
    let dir = tempfile::tempdir().unwrap();
    let real = run_ci(dir.path(), "real", "optimized");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    let measured = v["totals"]["throughput"].clone();
    v["targets"] = serde_json::json!([{
        "metric": "totals.throughput", "target": ">= 20000000/s", "measured": measured,
        "unit": "/s", "passed": false
    }]);
    let missed = dir.path().join("missed.json");
    std::fs::write(&missed, v.to_string()).unwrap();
    let o = bench(&["compare", real.to_str().unwrap(), missed.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "FAIL (exit 1): absolute target missed in most candidate runs: \
             totals.throughput >= 20000000/s"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("PASS"), "{stdout}");

    // As JSON, stdout is one document carrying the same verdict and exit code.
    let o = bench(&[
        "compare",
        real.to_str().unwrap(),
        missed.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let c: Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(c["exit_code"], 1);
    assert_eq!(c["verdict"].as_str(), Some(last));
}

#[test]
fn compare_rejects_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    for (a, b) in [(&missing, &garbage), (&garbage, &garbage)] {
        let o = bench(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(a.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
    }

    // A real results file, then copies with a wrong schema version and another scenario.
    let real = run_ci(dir.path(), "real", "optimized");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    v["schema_version"] = 2.into();
    let wrong_version = dir.path().join("v2.json");
    std::fs::write(&wrong_version, v.to_string()).unwrap();
    v["schema_version"] = 1.into();
    v["scenario"] = "other".into();
    let other = dir.path().join("other.json");
    std::fs::write(&other, v.to_string()).unwrap();
    for bad in [&wrong_version, &other] {
        let o = bench(&["compare", real.to_str().unwrap(), bad.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = bench(&[
        "compare",
        real.to_str().unwrap(),
        real.to_str().unwrap(),
        "--limit",
        "p99=abc",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("p99=abc"));
}

/// `compare` and `merge` compute with the times in the files they are given: times no run
/// can have written (a warm-up of 10^300 s, a series point 10^18 s in) are bad input, exit
/// 2 naming the file, not an overflow panic or a series laid out second by second.
#[test]
fn implausible_times_in_results_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let real = run_ci(dir.path(), "real", "optimized");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    type Breaks = fn(&mut Value);
    let cases: [(&str, Breaks, &str); 3] = [
        ("warmup.json", |v| v["warmup_s"] = 1e300.into(), "warmup_s"),
        (
            "duration.json",
            |v| v["duration_s"] = (-1.0).into(),
            "duration_s",
        ),
        (
            "series.json",
            |v| v["timeseries"][0]["t_s"] = 1_000_000_000_000_000_000u64.into(),
            "t_s",
        ),
    ];
    let merged = dir.path().join("merged.json");
    for (name, breaks, piece) in cases {
        let mut bad = v.clone();
        breaks(&mut bad);
        let path = dir.path().join(name);
        std::fs::write(&path, bad.to_string()).unwrap();
        let (real, path) = (real.to_str().unwrap(), path.to_str().unwrap());
        for args in [
            vec!["merge", real, path, "--out", merged.to_str().unwrap()],
            vec!["compare", real, path],
        ] {
            let o = bench(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(name) && err.contains(piece), "{args:?}: {err}");
        }
        assert!(!merged.exists());
    }
}

/// `compare --junit FILE` and `merge --out FILE` into a place that cannot be written are bad
/// usage, found before any work (exit 2): 3 means inconclusive for compare.
#[test]
fn unwritable_report_files_are_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let real = run_ci(dir.path(), "real", "optimized");
    // A second run of the same moment, as another generator would have written it.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    if let Some(o) = v.as_object_mut() {
        o.insert("run_id".into(), "0123456789abcdef0123456789abcdef".into());
    }
    // Started a tenth of a millisecond later ("...06.029Z" becomes "...06.0291Z").
    let started = v["started_at"].as_str().unwrap().replacen('Z', "1Z", 1);
    v["started_at"] = started.into();
    let other = dir.path().join("other.json");
    std::fs::write(&other, v.to_string()).unwrap();
    let (real, other) = (real.to_str().unwrap(), other.to_str().unwrap());
    for place in ["/proc/report.xml", "/proc/no-such-dir/report.xml"] {
        for args in [
            vec!["compare", real, other, "--junit", place],
            vec!["merge", real, other, "--out", place],
        ] {
            let o = bench(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(place), "{args:?}: {err}");
            assert!(o.stdout.is_empty(), "{args:?} reported before refusing");
        }
    }
}

/// Merging adds throughputs, so a run merged with itself would count its load twice: each
/// results file carries a `run_id`, and the same run given twice (by id, or for files
/// written before ids by identical start, target and totals) is refused naming both files.
/// A merge gets its own id and lists the runs it merged.
#[test]
fn merging_the_same_run_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = run_ci(dir.path(), "real", "optimized");
    let text = std::fs::read_to_string(&real).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let id = v["run_id"].as_str().unwrap_or_default().to_string();
    assert_eq!(id.len(), 32, "run_id {:?}", v["run_id"]);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let write = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let copy = write("copy.json", &v);
    // Written before run ids: no run_id, and otherwise the same run.
    let mut old = v.clone();
    old.as_object_mut().unwrap().remove("run_id");
    let old_a = write("old-a.json", &old);
    let old_b = write("old-b.json", &old);
    let merged = dir.path().join("merged.json");
    for (a, b) in [(&real, &copy), (&old_a, &old_b), (&real, &old_b)] {
        let o = bench(&[
            "merge",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{a:?} {b:?}: {err}");
        for p in [a, b] {
            assert!(err.contains(p.to_str().unwrap()), "{p:?} not named: {err}");
        }
        assert!(err.contains("same run"), "{err}");
        assert!(!merged.exists());
    }

    // Another run of the same moment merges; the merge has an id of its own and lists both,
    // and merging the merge with one of its runs again is refused as well.
    let mut other = v.clone();
    other["run_id"] = "0123456789abcdef0123456789abcdef".into();
    let other = write("other.json", &other);
    let o = bench(&[
        "merge",
        real.to_str().unwrap(),
        other.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    let merged_id = m["run_id"].as_str().unwrap();
    assert!(merged_id != id && merged_id != "0123456789abcdef0123456789abcdef");
    assert_eq!(
        m["run_ids"],
        serde_json::json!([id, "0123456789abcdef0123456789abcdef"])
    );
    let again = dir.path().join("again.json");
    let o = bench(&[
        "merge",
        merged.to_str().unwrap(),
        real.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
