//! `--stream -`: a JSON line per second while the run goes, whose counts add up to the
//! results', and a last line with the judged summary; the report moves to stderr.

mod common;

use common::{read_results, run_bench, uint};
use serde_json::Value;
use std::time::Duration;

#[test]
fn the_stream_adds_up_to_the_results_and_ends_with_the_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.json");
    let fin = run_bench(
        dir.path(),
        &[
            "stress",
            "--duration",
            "3",
            "--warmup",
            "1s",
            "--no-progress",
            "--stream",
            "-",
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
        Duration::from_secs(120),
    );
    assert!(
        fin.code == 0 || fin.code == 1,
        "exit {}: {}",
        fin.code,
        fin.stderr
    );
    let results = read_results(&out);
    let lines: Vec<Value> = fin
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let (last, seconds) = lines.split_last().expect("some lines");
    assert_eq!(last["summary"]["exit_code"], results["exit_code"], "{last}");
    assert_eq!(last["summary"]["run_id"], results["run_id"], "{last}");
    let measured: Vec<&Value> = seconds
        .iter()
        .filter(|l| l["phase"] == "measured")
        .collect();
    assert!(
        measured.len() >= 2,
        "{} measured seconds: {:?}",
        measured.len(),
        fin.stdout
    );
    assert!(
        seconds.iter().any(|l| l["phase"] == "warm-up"),
        "no warm-up line"
    );
    // Every measured request is on exactly one line, and per operation too.
    let sum = |name: Option<&str>| -> u64 {
        seconds
            .iter()
            .map(|l| match name {
                Some(n) => l["operations"][n]["ops"].as_u64().unwrap_or(0),
                None => l["ops"].as_u64().expect("ops"),
            })
            .sum()
    };
    assert_eq!(sum(None), uint(&results, "/totals/count"));
    for name in results["operations"]
        .as_object()
        .expect("operations")
        .keys()
    {
        let wanted = results["operations"][name]["count"]
            .as_u64()
            .expect("count");
        assert_eq!(sum(Some(name)), wanted, "{name}");
        // The results' per-operation series come from the same readings.
        let series: u64 = results["operations_timeseries"][name]
            .as_array()
            .unwrap_or_else(|| panic!("no operations_timeseries for {name}"))
            .iter()
            .map(|p| p["ops"].as_u64().expect("ops"))
            .sum();
        assert_eq!(series, wanted, "{name} per second");
    }
    // The bundled monitor's figures ride along once the sampler has one.
    assert!(seconds
        .iter()
        .any(|l| l["server"]["rss_bytes"].as_u64() > Some(0)));
    // The table went to stderr.
    assert!(fin.stderr.contains("totals"), "{}", fin.stderr);
}

#[test]
fn stream_and_out_cannot_both_be_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fin = run_bench(
        dir.path(),
        &["stress", "--duration", "1", "--stream", "-", "--out", "-"],
        Duration::from_secs(30),
    );
    assert_eq!(fin.code, 2, "{}", fin.stderr);
    assert!(
        fin.stderr.contains("--stream - and --out -"),
        "{}",
        fin.stderr
    );
}
