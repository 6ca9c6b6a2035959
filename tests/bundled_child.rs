//! The bundled monitor does not outlive the generator that started it: a generator killed
//! with SIGKILL left its `serve` child running for good. (On SIGTERM the generator already
//! stopped its monitor itself; that test keeps it so.)

mod common;

use common::{wait_until, BIN};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The pid of the process whose parent is `parent` and whose command line has `serve`.
fn serve_child_of(parent: u32) -> Option<(u32, Vec<String>)> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
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
        // pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid: Option<u32> = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        if ppid != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "serve") {
            return Some((pid, args));
        }
    }
    None
}

/// Whether `pid` has exited: gone, or a zombie waiting for whoever reaps orphans here.
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

fn killed_generator_stops_its_monitor(signal: libc::c_int) {
    let out = tempfile::tempdir().unwrap();
    let mut generator = Command::new(BIN)
        .args(["api", "--duration", "60s", "--no-progress", "--out"])
        .arg(out.path().join("r.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let found = wait_until(Duration::from_secs(30), || serve_child_of(generator.id()));
    let Some((monitor, args)) = found else {
        let _ = generator.kill();
        let _ = generator.wait();
        panic!("the generator started no bundled monitor");
    };
    // Let it get up and take load.
    std::thread::sleep(Duration::from_secs(2));
    let pid = libc::pid_t::try_from(generator.id()).unwrap();
    // SAFETY: kill(2) on our own unreaped child.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let _ = generator.wait();
    let stopped = wait_until(Duration::from_secs(20), || exited(monitor).then_some(()));
    if stopped.is_none() {
        // SAFETY: kill(2) of the orphan this test caused, so that it does not linger.
        unsafe { libc::kill(libc::pid_t::try_from(monitor).unwrap(), libc::SIGKILL) };
    }
    // The generator could not remove the monitor's temporary dir; the test does.
    if let Some(data_dir) = args
        .iter()
        .position(|a| a == "--data-dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
    {
        if let Some(root) = data_dir.parent() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
    assert!(
        stopped.is_some(),
        "the bundled monitor (pid {monitor}) kept running after the generator got signal {signal}"
    );
}

#[test]
fn sigkill_of_the_generator_stops_the_bundled_monitor() {
    killed_generator_stops_its_monitor(libc::SIGKILL);
}

#[test]
fn sigterm_of_the_generator_stops_the_bundled_monitor() {
    killed_generator_stops_its_monitor(libc::SIGTERM);
}
