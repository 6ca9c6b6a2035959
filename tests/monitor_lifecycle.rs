//! The monitor as a process: graceful shutdown on SIGTERM/SIGINT, refusal of unusable data
//! dirs, and no acknowledged write lost to a SIGKILL.

mod common;

use common::{expect, send, Monitor};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The WAL must be checkpointed away by a graceful shutdown.
fn assert_wal_empty(data_dir: &Path) {
    let wal = data_dir.join("stepflow.db-wal");
    if let Ok(meta) = std::fs::metadata(&wal) {
        assert_eq!(
            meta.len(),
            0,
            "{} is not empty after shutdown",
            wal.display()
        );
    }
}

/// Every execution id in the database file, read directly.
fn stored_ids(data_dir: &Path) -> BTreeSet<i64> {
    let db = data_dir.join("stepflow.db");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()));
    let mut stmt = conn.prepare("SELECT id FROM executions").unwrap();
    let ids = stmt
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    ids
}

#[test]
fn sigterm_during_concurrent_creates_commits_every_acknowledged_one() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let mut monitor = Monitor::start("optimized", dir.path());
    let addr = monitor.addr;
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let server_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let acked = Arc::clone(&acked);
            let server_errors = Arc::clone(&server_errors);
            thread::spawn(move || {
                let body = serde_json::to_vec(&json!({"name": format!("shutdown {t}")})).unwrap();
                for _ in 0..PER_THREAD {
                    if Instant::now() >= deadline {
                        break;
                    }
                    match send(addr, "POST", "/api/executions", Some(&body)) {
                        Ok(r) if r.status == 201 => {
                            acked.lock().unwrap().push(r.json()["id"].as_i64().unwrap());
                        }
                        Ok(r) => server_errors.lock().unwrap().push(format!(
                            "{} {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        )),
                        // Refused or reset: the monitor has stopped accepting.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();

    // Signal once the load is well under way, while every worker still has requests to send.
    let started = common::wait_until(Duration::from_secs(10), || {
        (acked.lock().unwrap().len() >= 100).then_some(())
    });
    assert!(started.is_some(), "fewer than 100 creates answered in 10 s");
    let status = monitor.terminate();
    for w in workers {
        w.join().expect("worker thread");
    }
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM should exit 0, got {status:?}; stderr: {}",
        monitor.stderr()
    );
    let acked = acked.lock().unwrap().clone();
    let server_errors = server_errors.lock().unwrap().clone();
    assert!(
        acked.len() < THREADS * PER_THREAD,
        "the signal came after the load ended; nothing was in flight"
    );
    assert!(
        server_errors.is_empty(),
        "{} creates got a non-201 answer during shutdown: {:?}",
        server_errors.len(),
        &server_errors[..server_errors.len().min(5)]
    );

    assert_wal_empty(dir.path());
    let stored = stored_ids(dir.path());
    let lost: Vec<i64> = acked
        .iter()
        .filter(|id| !stored.contains(id))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates missing after graceful shutdown ({} stored): {:?}",
        lost.len(),
        acked.len(),
        stored.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(
        acked.iter().collect::<BTreeSet<_>>().len(),
        acked.len(),
        "an id was handed out twice"
    );
}

#[test]
fn sigint_exits_0_and_keeps_data() {
    for profile in ["optimized", "legacy"] {
        let dir = tempfile::tempdir().unwrap();
        let mut monitor = Monitor::start(profile, dir.path());
        let id = common::create_execution(monitor.addr, "before sigint");
        let status = monitor.interrupt();
        assert_eq!(
            status.code(),
            Some(0),
            "{profile}: SIGINT should exit 0, got {status:?}; stderr: {}",
            monitor.stderr()
        );
        assert_eq!(
            monitor
                .stdout()
                .lines()
                .filter(|l| l.starts_with("listening on"))
                .count(),
            1,
            "{profile}: exactly one `listening on` line: {:?}",
            monitor.stdout()
        );
        assert_wal_empty(dir.path());
        assert!(
            stored_ids(dir.path()).contains(&id),
            "{profile}: execution {id} lost"
        );
    }
}

/// `listening on` is printed once connections are accepted, so a signal sent the moment it
/// appears must already get the graceful path, not the default action (death by signal).
#[test]
fn signal_right_after_listening_line_is_graceful() {
    for attempt in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let mut monitor = Monitor::start("optimized", dir.path());
        let sig = if attempt % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        monitor.signal(sig);
        let status = monitor.wait();
        assert_eq!(
            status.code(),
            Some(0),
            "attempt {attempt}: signal {sig} right after `listening on` gave {status:?} \
             (killed by signal {:?}); stderr: {}",
            status.signal(),
            monitor.stderr()
        );
    }
}

/// An unusable data dir must stop `serve` before it binds: exit 2, the path on stderr.
fn assert_refused(profile: &str, data_dir: &Path, named: &Path) {
    let failed = common::serve_expecting_exit(profile, data_dir);
    assert_eq!(
        failed.status.code(),
        Some(2),
        "{profile} on {}: expected exit code 2, got {:?}; stderr: {}",
        data_dir.display(),
        failed.status,
        failed.stderr
    );
    assert!(
        failed.stderr.contains(&*named.to_string_lossy()),
        "{profile}: stderr should name {}: {:?}",
        named.display(),
        failed.stderr
    );
    assert!(
        !failed.stdout.contains("listening on"),
        "{profile}: printed a listening line for an unusable data dir: {:?}",
        failed.stdout
    );
}

#[test]
fn a_file_where_the_data_dir_should_be_is_refused() {
    for profile in ["optimized", "legacy"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"just a file\n").unwrap();
        assert_refused(profile, &file, &file);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            b"just a file\n",
            "{profile}: the file was changed"
        );
    }
}

#[test]
fn a_corrupt_database_is_refused_and_left_alone() {
    // Deterministic noise (xorshift64); 64 KiB so SQLite reads a full header and pages.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for profile in ["optimized", "legacy"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("stepflow.db");
        std::fs::write(&db, &noise).unwrap();
        assert_refused(profile, dir.path(), &db);
        assert!(
            std::fs::read(&db).unwrap() == noise,
            "{profile}: the corrupt database file was modified"
        );
    }
}

/// What one load thread was told had been committed, per execution.
#[derive(Debug, Default, Clone)]
struct Acked {
    running: bool,
    step: Option<i64>,
    lines: Vec<String>,
}

/// Creates, marks running, adds a step and logs two lines, again and again until `stop` or a
/// transport error (the monitor died); returns every write that got a 2xx, per execution id.
fn crash_load(
    addr: SocketAddr,
    thread_no: usize,
    deadline: Instant,
    unexpected: &Mutex<Vec<String>>,
) -> BTreeMap<i64, Acked> {
    const MAX_ITERATIONS: usize = 20_000;
    let mut acked = BTreeMap::new();
    // `Err(())`: the connection failed, stop; `Ok(None)`: answered but not 2xx.
    let attempt = |method: &str, path: &str, body: serde_json::Value| {
        let bytes = serde_json::to_vec(&body).unwrap();
        match send(addr, method, path, Some(&bytes)) {
            Ok(r) if (200..300).contains(&r.status) => Ok(Some(r.json())),
            Ok(r) => {
                unexpected.lock().unwrap().push(format!(
                    "{method} {path}: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
                Ok(None)
            }
            Err(_) => Err(()),
        }
    };
    for n in 0..MAX_ITERATIONS {
        if Instant::now() >= deadline {
            break;
        }
        let name = format!("crash t{thread_no} n{n}");
        let Ok(created) = attempt("POST", "/api/executions", json!({ "name": name })) else {
            break;
        };
        let Some(id) = created.and_then(|c| c["id"].as_i64()) else {
            continue;
        };
        let record: &mut Acked = acked.entry(id).or_default();
        let e = format!("/api/executions/{id}");
        match attempt("PATCH", &e, json!({"status": "running"})) {
            Err(()) => break,
            Ok(answer) => record.running = answer.is_some(),
        }
        match attempt("POST", &format!("{e}/steps"), json!({"name": "step"})) {
            Err(()) => break,
            Ok(None) => continue,
            Ok(Some(step)) => record.step = step["index"].as_i64(),
        }
        let Some(index) = record.step else { continue };
        for k in 0..2 {
            // A backslash and a newline, so escaping is checked across the crash too.
            let line = format!("t{thread_no} e{id} line {k} \\ end\nnext");
            match attempt(
                "POST",
                &format!("{e}/steps/{index}/logs"),
                json!({ "lines": [line] }),
            ) {
                Err(()) => return acked,
                Ok(answer) => {
                    if answer.is_some() {
                        record.lines.push(line);
                    }
                }
            }
        }
    }
    acked
}

/// Load threads per SIGKILL run.
const CRASH_THREADS: usize = 8;

/// Loads the monitor from [`CRASH_THREADS`] threads, SIGKILLs it `kill_after` into the load
/// and returns every write that was acknowledged, per execution id. Panics if a thread had
/// stopped before the kill (it was not mid-load) or a write got a non-2xx answer.
fn load_then_sigkill(
    monitor: &mut Monitor,
    profile: &str,
    kill_after: Duration,
) -> BTreeMap<i64, Acked> {
    let addr = monitor.addr;
    // The kill ends the load; the deadline only bounds it should the kill never come.
    let deadline = Instant::now() + kill_after + Duration::from_secs(20);
    let unexpected = Arc::new(Mutex::new(Vec::new()));
    let running_threads = Arc::new(AtomicUsize::new(CRASH_THREADS));
    let workers: Vec<_> = (0..CRASH_THREADS)
        .map(|t| {
            let unexpected = Arc::clone(&unexpected);
            let running_threads = Arc::clone(&running_threads);
            thread::spawn(move || {
                let acked = crash_load(addr, t, deadline, &unexpected);
                running_threads.fetch_sub(1, Ordering::SeqCst);
                acked
            })
        })
        .collect();
    thread::sleep(kill_after);
    let still_writing = running_threads.load(Ordering::SeqCst);
    let status = monitor.kill9();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{profile}: {status:?}"
    );
    let mut acked: BTreeMap<i64, Acked> = BTreeMap::new();
    for w in workers {
        acked.extend(w.join().expect("load thread"));
    }
    assert_eq!(
        still_writing, CRASH_THREADS,
        "{profile}: some load threads had stopped before the kill; it was not mid-load"
    );
    let unexpected = unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "{profile}: {} writes got a non-2xx answer before the kill: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
    acked
}

/// How many acknowledged writes of each kind were checked.
#[derive(Debug, Default)]
struct Checked {
    creates: usize,
    statuses: usize,
    steps: usize,
    lines: usize,
    /// Executions the service lists in all.
    stored: usize,
}

/// Reads every acknowledged write back through the API of a monitor at `addr`; `Err` says
/// how many of each kind are missing, with examples.
fn check_acknowledged(addr: SocketAddr, acked: &BTreeMap<i64, Acked>) -> Result<Checked, String> {
    let checked = Checked {
        creates: acked.len(),
        statuses: acked.values().filter(|a| a.running).count(),
        steps: acked.values().filter(|a| a.step.is_some()).count(),
        lines: acked.values().map(|a| a.lines.len()).sum(),
        stored: 0,
    };
    let (mut lost_creates, mut lost_statuses, mut lost_steps, mut lost_lines) = (0, 0, 0, 0);
    let mut examples = Vec::new();
    for (id, want) in acked {
        let e = format!("/api/executions/{id}");
        let r = common::get(addr, &e);
        if r.status == 404 {
            lost_creates += 1;
            examples.push(format!("execution {id} missing"));
            continue;
        }
        assert_eq!(
            r.status,
            200,
            "GET {e}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        let got = r.json();
        // Running is the last status this loop writes, so an acknowledged one must show.
        if want.running && got["status"] != "running" {
            lost_statuses += 1;
            examples.push(format!("execution {id} status {}", got["status"]));
        }
        let Some(index) = want.step else { continue };
        let has_step = got["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["index"] == index));
        if !has_step {
            lost_steps += 1;
            examples.push(format!("execution {id} step {index} missing: {got}"));
            continue;
        }
        if want.lines.is_empty() {
            continue;
        }
        let stored = log_lines(addr, *id, index);
        // Acknowledged lines must all be there, in the order they were written; a line
        // written but not yet answered when the kill came may follow them.
        if stored.len() < want.lines.len() || stored[..want.lines.len()] != want.lines[..] {
            let missing = want.lines.iter().filter(|l| !stored.contains(l)).count();
            lost_lines += missing.max(1);
            examples.push(format!(
                "execution {id} logs {stored:?}, want {:?}",
                want.lines
            ));
        }
    }
    let total = expect(addr, "GET", "/api/executions?limit=1", None, 200)["total"]
        .as_u64()
        .expect("total") as usize;
    if lost_creates + lost_statuses + lost_steps + lost_lines > 0 {
        return Err(format!(
            "acknowledged writes lost: creates {lost_creates} of {}, statuses {lost_statuses} of \
             {}, steps {lost_steps} of {}, log lines {lost_lines} of {} ({total} executions \
             stored); e.g. {:?}",
            checked.creates,
            checked.statuses,
            checked.steps,
            checked.lines,
            &examples[..examples.len().min(5)]
        ));
    }
    if total < checked.creates {
        return Err(format!(
            "{total} executions stored, {} acknowledged",
            checked.creates
        ));
    }
    Ok(Checked {
        stored: total,
        ..checked
    })
}

/// Loads the monitor from 8 threads, SIGKILLs it mid-load, restarts it on the same data dir
/// and checks through the API that every acknowledged write survived.
fn acknowledged_writes_survive_sigkill(profile: &str, kill_after: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut monitor = Monitor::start(profile, dir.path());
    let acked = load_then_sigkill(&mut monitor, profile, kill_after);
    assert!(
        !acked.is_empty(),
        "{profile}: no create was acknowledged before the kill"
    );
    let monitor = Monitor::start(profile, dir.path());
    let checked = check_acknowledged(monitor.addr, &acked)
        .unwrap_or_else(|e| panic!("{profile}: after SIGKILL: {e}"));
    eprintln!("{profile}: after SIGKILL all acknowledged writes present: {checked:?}");
}

#[test]
fn acknowledged_writes_survive_sigkill_optimized() {
    acknowledged_writes_survive_sigkill("optimized", Duration::from_millis(1500));
}

#[test]
fn acknowledged_writes_survive_sigkill_legacy() {
    acknowledged_writes_survive_sigkill("legacy", Duration::from_millis(600));
}

/// Cycles of SIGKILLs on one data dir.
const CRASH_CYCLES: usize = 6;

/// Crash cycles: load from several threads, SIGKILL at a random moment, restart on the same
/// data dir, and check every write acknowledged in any cycle so far (log lines included),
/// so a crash that damages what an earlier one left (a torn log tail, a WAL) shows too.
fn crash_cycles(profile: &str) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    // xorshift64: enough for kill moments, and the seed is printed to replay a failure.
    let mut x = seed;
    let mut next_ms = |lo: u64, hi: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lo + x % (hi - lo)
    };
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<i64, Acked> = BTreeMap::new();
    let mut kills = Vec::new();
    for cycle in 0..CRASH_CYCLES {
        let mut monitor = Monitor::start(profile, dir.path());
        if cycle > 0 {
            let checked = check_acknowledged(monitor.addr, &acked).unwrap_or_else(|e| {
                panic!("{profile}, seed {seed}, after kills at {kills:?} ms: {e}")
            });
            assert!(checked.stored >= acked.len());
        }
        let kill_ms = next_ms(50, 700);
        kills.push(kill_ms);
        let this_cycle = load_then_sigkill(&mut monitor, profile, Duration::from_millis(kill_ms));
        acked.extend(this_cycle);
    }
    let monitor = Monitor::start(profile, dir.path());
    let checked = check_acknowledged(monitor.addr, &acked)
        .unwrap_or_else(|e| panic!("{profile}, seed {seed}, after kills at {kills:?} ms: {e}"));
    assert!(
        checked.creates > 0 && checked.lines > 0,
        "{profile}: nothing was acknowledged in {CRASH_CYCLES} cycles: {checked:?}"
    );
    eprintln!(
        "{profile}: {CRASH_CYCLES} SIGKILLs at {kills:?} ms (seed {seed}), every acknowledged \
         write present: {checked:?}"
    );
}

#[test]
fn crash_cycles_lose_no_acknowledged_write_optimized() {
    crash_cycles("optimized");
}

#[test]
fn crash_cycles_lose_no_acknowledged_write_legacy() {
    crash_cycles("legacy");
}

/// A tmpfs of a fixed size mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None`, with the reason printed, where this process may not mount (not root, no
    /// CAP_SYS_ADMIN, no `mount`): the disk-full test then has nothing to run on.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!(
                    "skipping: cannot mount a {size} tmpfs on {}: {}",
                    dir.path().display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a child not yet reaped): detach it now, it goes when released.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// The lines of one step's log, read through the API.
fn log_lines(addr: SocketAddr, id: i64, index: i64) -> Vec<String> {
    let logs = expect(
        addr,
        "GET",
        &format!("/api/executions/{id}/steps/{index}/logs"),
        None,
        200,
    );
    logs["lines"]
        .as_array()
        .expect("lines array")
        .iter()
        .map(|l| l["content"].as_str().expect("string content").to_string())
        .collect()
}

/// Compares what the log holds with what was acknowledged, naming the first difference.
fn log_mismatch(stored: &[String], acked: &[String]) -> Option<String> {
    if stored == acked {
        return None;
    }
    let short = |l: &String| format!("{}... ({} bytes)", &l[..l.len().min(40)], l.len());
    let at = stored.iter().zip(acked).take_while(|(s, a)| s == a).count();
    Some(format!(
        "{} lines stored, {} acknowledged; first difference at line {at}: stored {:?}, acknowledged {:?}",
        stored.len(),
        acked.len(),
        stored.get(at).map(short),
        acked.get(at).map(short)
    ))
}

/// Appends `lines`; `Ok(true)` on 201, `Ok(false)` on a 507 that says the disk is full, and
/// `Err` with the answer otherwise.
fn append_on_full_disk(addr: SocketAddr, id: i64, lines: &[String]) -> Result<bool, String> {
    let body = serde_json::to_vec(&json!({ "lines": lines })).unwrap();
    let path = format!("/api/executions/{id}/steps/0/logs");
    let r = send(addr, "POST", &path, Some(&body)).map_err(|e| format!("POST {path}: {e}"))?;
    full_disk_answer(&r, &format!("POST {path}"))
}

/// 2xx is `Ok(true)`; 507 `{"error": "no space left on device: ..."}` is `Ok(false)`.
fn full_disk_answer(r: &common::Response, what: &str) -> Result<bool, String> {
    let message = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|b| b["error"].as_str().map(str::to_string));
    match (r.status, message) {
        (200..=299, _) => Ok(true),
        (507, Some(m)) if m.starts_with("no space left on device: ") => Ok(false),
        (status, _) => Err(format!(
            "{what}: expected 201 or 507 no space left on device, got {status} {:?}",
            String::from_utf8_lossy(&r.body)
        )),
    }
}

/// Fills an 8 MiB tmpfs through the API: log appends and database writes that do not fit
/// get 507 and leave nothing behind; after space is freed, appends work again, and every
/// acknowledged line, and only those, reads back, before and after a restart, and after a
/// torn tail left by a crash mid-write.
fn a_full_disk_loses_and_tears_nothing(profile: &str) {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let data = disk.path().join("data");
    // Freed later, so the test can give the service room again.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 1024 * 1024]).unwrap();
    let mut monitor = Monitor::start(profile, &data);
    let addr = monitor.addr;
    let id = common::create_execution(addr, "full disk");
    let e = format!("/api/executions/{id}");
    expect(
        addr,
        "POST",
        &format!("{e}/steps"),
        Some(&json!({"name": "s"})),
        201,
    );

    let mut acked: Vec<String> = Vec::new();
    let mut wrong = Vec::new();
    let mut refused = 0;
    // Big appends until the disk refuses a few, then small ones to take what is left; sizes
    // vary so that a write runs out of space part-way through a request.
    for (phase, line_bytes) in [(0, 40_000), (1, 700)] {
        let mut refused_here = 0;
        for n in 0..2000 {
            if refused_here >= 3 {
                break;
            }
            let lines: Vec<String> = (0..3)
                .map(|k| {
                    let len = line_bytes + (n * 7919 + k * 104_729) % line_bytes;
                    format!("p{phase} r{n} l{k} {}", "x".repeat(len))
                })
                .collect();
            match append_on_full_disk(addr, id, &lines) {
                Ok(true) => acked.extend(lines),
                Ok(false) => refused_here += 1,
                Err(w) => {
                    wrong.push(w);
                    refused_here += 1;
                }
            }
        }
        refused += refused_here;
    }
    // The database on the full disk: creates that do not fit get 507 too.
    let big = "m".repeat(256 * 1024);
    let mut db_refused = false;
    for n in 0..40 {
        let body = serde_json::to_vec(&json!({"name": format!("big {n}"), "metadata": {"m": big}}))
            .unwrap();
        let r = send(addr, "POST", "/api/executions", Some(&body)).expect("create answered");
        match full_disk_answer(&r, "POST /api/executions") {
            Ok(true) => {}
            Ok(false) => {
                db_refused = true;
                break;
            }
            Err(w) => {
                wrong.push(w);
                db_refused = true;
                break;
            }
        }
    }

    std::fs::remove_file(&ballast).unwrap();
    let mut after_freeing = Vec::new();
    for n in 0..3 {
        let lines = vec![format!("after freeing {n}")];
        match append_on_full_disk(addr, id, &lines) {
            Ok(true) => acked.extend(lines),
            Ok(false) => after_freeing.push(format!("append {n} still refused")),
            Err(w) => after_freeing.push(w),
        }
    }
    let created_after = send(
        addr,
        "POST",
        "/api/executions",
        Some(br#"{"name": "after freeing"}"#),
    )
    .map(|r| r.status);
    let before_restart = log_mismatch(&log_lines(addr, id, 0), &acked);
    let status = monitor.terminate();

    let mut monitor = Monitor::start(profile, &data);
    let after_restart = log_mismatch(&log_lines(monitor.addr, id, 0), &acked);
    // A crash in the middle of a write leaves a line without its newline; it was never
    // acknowledged, so it must neither show nor swallow the next append.
    let status_2 = monitor.terminate();
    let log = data.join(format!("logs/{id}/step_0.log"));
    let ends_with_newline = std::fs::read(&log).unwrap().last() == Some(&b'\n');
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(b"2026-01-01T00:00:00.000000Z torn by a cra"))
        .unwrap();
    let monitor = Monitor::start(profile, &data);
    let with_torn_tail = log_mismatch(&log_lines(monitor.addr, id, 0), &acked);
    let line = vec!["after the torn tail".to_string()];
    let appended = append_on_full_disk(monitor.addr, id, &line);
    acked.extend(line);
    let after_torn_tail = log_mismatch(&log_lines(monitor.addr, id, 0), &acked);

    // Losses first: they say more about what went wrong than the status codes.
    for (when, mismatch) in [
        ("before the restart", before_restart),
        ("after the restart", after_restart),
        ("with a torn tail", with_torn_tail),
        ("after appending to a torn tail", after_torn_tail),
    ] {
        assert!(
            mismatch.is_none(),
            "{profile}: log {when} is not what was acknowledged: {}",
            mismatch.unwrap_or_default()
        );
    }
    assert!(
        wrong.is_empty(),
        "{profile}: answers on the full disk other than 201 or 507: {wrong:#?}"
    );
    assert!(
        refused >= 6,
        "{profile}: the disk never filled ({refused} appends refused)"
    );
    assert!(
        db_refused,
        "{profile}: 40 creates of 256 KiB all fit on an 8 MiB disk"
    );
    assert!(
        after_freeing.is_empty() && created_after.as_ref().is_ok_and(|s| *s == 201),
        "{profile}: writes after freeing space: {after_freeing:?}, create {created_after:?}"
    );
    assert!(
        ends_with_newline,
        "{profile}: {} ends in a torn line",
        log.display()
    );
    assert_eq!(appended, Ok(true), "{profile}: append after the torn tail");
    assert_eq!(status.code(), Some(0), "{profile}: SIGTERM exit {status:?}");
    assert_eq!(
        status_2.code(),
        Some(0),
        "{profile}: SIGTERM exit {status_2:?}"
    );
    eprintln!(
        "{profile}: {} lines acknowledged, {refused} appends refused with 507",
        acked.len()
    );
}

#[test]
fn a_full_disk_loses_and_tears_nothing_optimized() {
    a_full_disk_loses_and_tears_nothing("optimized");
}

#[test]
fn a_full_disk_loses_and_tears_nothing_legacy() {
    a_full_disk_loses_and_tears_nothing("legacy");
}

/// Requests a client may leave half-sent, each on its own connection: nothing at all, half a
/// request head, a head whose body stops part-way.
const HALF_SENT: [(&str, &[u8]); 3] = [
    ("nothing", b""),
    ("half a head", b"GET /api/health HTTP/1.1\r\nHost: x\r\n"),
    (
        "half a body",
        b"POST /api/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"name\": ",
    ),
];

fn open_half_sent(addr: SocketAddr) -> Vec<(&'static str, std::net::TcpStream)> {
    HALF_SENT
        .iter()
        .map(|(what, bytes)| {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.write_all(bytes).expect("write");
            (*what, s)
        })
        .collect()
}

/// Reads until the server closes the connection, for at most `bound`; returns what it sent,
/// or why the wait ended otherwise.
fn read_until_closed(stream: &mut std::net::TcpStream, bound: Duration) -> Result<Vec<u8>, String> {
    use std::io::Read;
    stream.set_read_timeout(Some(bound)).unwrap();
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => Ok(got),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(got),
        Err(e) => Err(format!(
            "still open after {bound:?} ({e}), having sent {got:?}"
        )),
    }
}

/// A half-sent request used to keep a SIGTERMed `serve` running for ever: the graceful
/// shutdown waited on that connection. It must exit 0 well within the bound, keeping data.
#[test]
fn sigterm_with_half_sent_requests_open_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut monitor = Monitor::start("optimized", dir.path());
    let id = common::create_execution(monitor.addr, "before the half-sent requests");
    let mut open = open_half_sent(monitor.addr);
    // Let the server take them in before the signal.
    expect(monitor.addr, "GET", "/api/health", None, 200);
    thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    // `terminate` waits up to EXIT_TIMEOUT (20 s), a liveness bound; the deadline is 5 s.
    let status = monitor.terminate();
    let took = signalled.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM should exit 0, got {status:?}; stderr: {}",
        monitor.stderr()
    );
    for (what, stream) in &mut open {
        read_until_closed(stream, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    assert_wal_empty(dir.path());
    assert!(stored_ids(dir.path()).contains(&id), "execution {id} lost");
    eprintln!(
        "exited {took:?} after SIGTERM with {} half-sent requests open",
        open.len()
    );
}

/// With `--read-timeout 1s`, connections that send too little are closed about a second
/// after they are taken in: nothing, half a head, a head trickled a byte at a time (the
/// timeout is a deadline for the whole head, not a pause between bytes), a kept-alive
/// connection left idle; a body that stops part-way gets a JSON 408 first.
#[test]
fn connections_that_send_too_little_are_closed_after_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start_with("optimized", dir.path(), &["--read-timeout", "1s"]);
    let addr = monitor.addr;
    let opened = Instant::now();
    let mut open = open_half_sent(addr);
    let mut idle = std::net::TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answered = common::read_response(&mut idle).expect("health on a kept-alive connection");
    assert_eq!(answered.status, 200);
    open.push(("idle after an answer", idle));
    let trickle = std::net::TcpStream::connect(addr).unwrap();
    let mut trickling = trickle.try_clone().unwrap();
    let trickler = thread::spawn(move || {
        for byte in b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .cycle()
            .take(100)
        {
            if trickling.write_all(&[*byte]).is_err() {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    });
    open.push(("a head trickled byte by byte", trickle));

    let bound = Duration::from_secs(15);
    let mut failures = Vec::new();
    for (what, stream) in &mut open {
        match read_until_closed(stream, bound) {
            Err(e) => failures.push(format!("{what}: {e}")),
            Ok(got) if *what == "half a body" => {
                let text = String::from_utf8_lossy(&got);
                if !(text.starts_with("HTTP/1.1 408") && text.contains(r#"{"error":"#)) {
                    failures.push(format!("{what}: expected a JSON 408, got {text:?}"));
                }
            }
            Ok(_) => {}
        }
    }
    let closed_after = opened.elapsed();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed after {closed_after:?}, before the 1 s timeout"
    );
    assert!(
        trickler.join().unwrap(),
        "the trickled head was never cut off"
    );
    // The service itself is unharmed.
    expect(addr, "GET", "/api/health", None, 200);
}
