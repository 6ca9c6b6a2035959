//! HTTPS and HTTP/2 targets: the StepFlow-shaped test service (`common/lookalike.rs`) over
//! TLS with a certificate made for this test process, and over cleartext HTTP/2. The real
//! binary runs with `--target https://...` and `--cacert`, `--insecure` or neither.

mod common;

use common::lookalike::{Drops, Lookalike};
use common::tls::{TestCa, FAILED_HANDSHAKES};
use common::{assert_correct, read_results, run_bench, uint, Finished};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(90);
const REFUSE_TIMEOUT: Duration = Duration::from_secs(20);

static LOAD: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(TestCa::new)
}

/// Runs `stepflow-bench <args> --no-progress --out <dir>/r.json` in `dir`.
fn run_in(dir: &Path, args: &[&str], timeout: Duration) -> (Finished, Option<Value>) {
    let out = dir.join("r.json");
    let mut all = args.to_vec();
    all.extend(["--no-progress", "--out", out.to_str().expect("UTF-8 path")]);
    let fin = run_bench(dir, &all, timeout);
    let results = out.exists().then(|| read_results(&out));
    (fin, results)
}

fn requests(service: &Lookalike) -> (u64, u64) {
    (
        service.shared.http1_requests.load(Ordering::Relaxed),
        service.shared.http2_requests.load(Ordering::Relaxed),
    )
}

#[test]
fn https_with_cacert_runs_ci_over_http2_and_reads_everything_back() {
    let _turn = one_at_a_time();
    let service = Lookalike::start_with(
        Drops::default(),
        Some(ca().server_config(&["h2", "http/1.1"])),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cacert = ca().write_ca(dir.path());
    let url = service.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let (fin, r) = run_in(
        dir.path(),
        &[
            "run",
            "ci",
            "--target",
            &url,
            "--cacert",
            cacert.to_str().unwrap(),
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--concurrency",
            "4",
        ],
        RUN_TIMEOUT,
    );
    let r = r.expect("results");
    // Exit 0, or 1 with only speed targets missed: a debug build against a debug TLS server.
    assert_correct("run ci over https", &fin, &r);
    assert_eq!(r["target"], url.as_str());
    assert_eq!(uint(&r, "/totals/errors"), 0);
    assert!(uint(&r, "/integrity/checked") > 0);
    assert_eq!(uint(&r, "/integrity/lost_writes"), 0);
    // The server offered h2 and the generator took it, for the load and the read-back.
    let (h1, h2) = requests(&service);
    assert_eq!(h1, 0, "{h1} HTTP/1.1 requests");
    assert!(h2 > uint(&r, "/totals/count"), "{h2} HTTP/2 requests");
}

#[test]
fn https_without_cacert_fails_with_a_certificate_error() {
    let _turn = one_at_a_time();
    let service = Lookalike::start_with(
        Drops::default(),
        Some(ca().server_config(&["h2", "http/1.1"])),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let url = service.url();
    let before = FAILED_HANDSHAKES.load(Ordering::Relaxed);
    let (fin, r) = run_in(
        dir.path(),
        &["api", "--target", &url, "--requests", "10"],
        REFUSE_TIMEOUT,
    );
    assert_eq!(fin.code, 3, "stderr: {}", fin.stderr);
    for piece in [
        &format!("GET {url}/api/health"),
        "invalid peer certificate",
        "UnknownIssuer",
        "--cacert FILE",
        "--insecure",
    ] {
        assert!(
            fin.stderr.contains(piece),
            "{piece:?} missing: {}",
            fin.stderr
        );
    }
    let r = r.expect("results of the aborted run");
    assert_eq!(uint(&r, "/totals/count"), 0);
    assert!(r["aborted"]
        .as_str()
        .unwrap()
        .contains("invalid peer certificate"));
    // Nothing got through: the refusal was the TLS handshake's.
    assert_eq!(requests(&service), (0, 0));
    assert!(FAILED_HANDSHAKES.load(Ordering::Relaxed) > before);
}

#[test]
fn https_with_insecure_accepts_the_unknown_certificate() {
    let _turn = one_at_a_time();
    let service = Lookalike::start_with(
        Drops::default(),
        Some(ca().server_config(&["h2", "http/1.1"])),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let url = service.url();
    let (fin, r) = run_in(
        dir.path(),
        &[
            "simulate",
            "--target",
            &url,
            "--insecure",
            "--executions",
            "3",
            "--concurrency",
            "2",
        ],
        RUN_TIMEOUT,
    );
    let r = r.expect("results");
    assert_correct("simulate over https --insecure", &fin, &r);
    assert_eq!(uint(&r, "/extra/executions_completed"), 3);
    assert_eq!(uint(&r, "/integrity/lost_writes"), 0);
    assert!(requests(&service).1 > 0);
}

#[test]
fn https_over_http1_serves_a_burst() {
    let _turn = one_at_a_time();
    // A server that speaks only HTTP/1.1 over TLS: one connection per request in flight,
    // each opened (handshake included) before the burst is released.
    let service = Lookalike::start_with(Drops::default(), Some(ca().server_config(&["http/1.1"])));
    let dir = tempfile::tempdir().expect("tempdir");
    let cacert = ca().write_ca(dir.path());
    let (fin, r) = run_in(
        dir.path(),
        &[
            "concurrent",
            "--target",
            &service.url(),
            "--cacert",
            cacert.to_str().unwrap(),
            "--concurrency",
            "20",
        ],
        RUN_TIMEOUT,
    );
    let r = r.expect("results");
    assert_correct("burst over https", &fin, &r);
    assert_eq!(uint(&r, "/extra/created"), 20);
    assert_eq!(uint(&r, "/integrity/lost_writes"), 0);
    let (h1, h2) = requests(&service);
    assert_eq!(h2, 0);
    // The probe, 20 connection-opening HEADs, 20 creates and the read-back.
    assert!(h1 >= 41, "{h1} requests");
    assert_eq!(service.stored(), 20);
}

#[test]
fn http2_prior_knowledge_over_plain_http() {
    let _turn = one_at_a_time();
    let service = Lookalike::start(Drops::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let (fin, r) = run_in(
        dir.path(),
        &[
            "api",
            "--target",
            &service.url(),
            "--http2",
            "--requests",
            "20",
            "--warmup",
            "0s",
        ],
        RUN_TIMEOUT,
    );
    let r = r.expect("results");
    assert!(matches!(fin.code, 0 | 1), "stderr: {}", fin.stderr);
    assert_eq!(uint(&r, "/totals/errors"), 0);
    assert_eq!(uint(&r, "/totals/count"), 60);
    let (h1, h2) = requests(&service);
    assert_eq!(h1, 0);
    assert!(h2 >= 60, "{h2}");
}

#[test]
fn tls_flags_that_cannot_be_used_exit_2_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    // Nothing listens on port 1: a refusal must come before any attempt to connect.
    let https = "https://127.0.0.1:1";
    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["api", "--target", https, "--cacert", missing],
            &["--cacert", "missing.pem", "cannot read it"],
        ),
        (
            &["api", "--target", https, "--cacert", garbage],
            &["--cacert", "garbage.pem", "not usable"],
        ),
        (
            &["api", "--target", "http://127.0.0.1:1", "--insecure"],
            &["--insecure applies to https:// targets"],
        ),
        (
            &["api", "--target", "http://127.0.0.1:1", "--cacert", garbage],
            &["--cacert applies to https:// targets"],
        ),
        (
            &["api", "--insecure"],
            &["--insecure applies to a --target"],
        ),
        (&["stress", "--http2"], &["--http2", "bundled monitor"]),
        (
            &["api", "--target", https, "--insecure", "--cacert", garbage],
            &["--insecure", "--cacert", "cannot be used with"],
        ),
    ];
    for (args, pieces) in cases {
        let (fin, results) = run_in(dir.path(), args, REFUSE_TIMEOUT);
        assert_eq!(fin.code, 2, "{args:?}; stderr: {}", fin.stderr);
        for piece in pieces {
            assert!(
                fin.stderr.contains(piece),
                "{args:?}: {piece:?} in {}",
                fin.stderr
            );
        }
        assert!(results.is_none(), "{args:?} wrote results");
    }
}
