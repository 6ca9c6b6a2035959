//! The bundled monitor as a child process: this executable with `serve` on 127.0.0.1:0 in a
//! fresh data dir, so the generator's and the server's costs stay apart.

use super::client::blocking_get;
use super::sys::{interrupted, INTERRUPTED_WHY};
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running monitor child.
pub struct Bundled {
    child: Child,
    pub url: String,
    /// Holds the temporary dir alive (and deletes it on drop) unless data is kept.
    temp: Option<tempfile::TempDir>,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

/// How long the child may take to print its address and answer /api/health.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl Bundled {
    /// Starts `program serve --addr 127.0.0.1:0 --data-dir <tmp> --profile <profile>`.
    pub fn start(program: &Path, profile: &str, keep_data: bool) -> anyhow::Result<Bundled> {
        let temp = tempfile::Builder::new()
            .prefix("stepflow-bench-")
            .tempdir()
            .context("cannot create a temporary data dir for the bundled monitor")?;
        let root = temp.path().to_path_buf();
        let data_dir = root.join("data");
        let log_path = root.join("monitor.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut command = Command::new(program);
        command
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--profile",
                profile,
                "--data-dir",
            ])
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            // Its own process group: a Ctrl-C in the terminal stops the generator, which then
            // collects the monitor's figures and stops it gracefully, instead of both at once.
            .process_group(0);
        stop_with_parent(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start the bundled monitor ({})", program.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // The line is read on a helper thread so that the wait is bounded.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the child never blocks on a full pipe.
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let mut bundled = Bundled {
            child,
            url: String::new(),
            temp: Some(temp),
            data_dir,
            log_path,
        };
        if keep_data {
            bundled.temp.take().map(tempfile::TempDir::keep);
        }
        // Waited for in short steps, so that Ctrl-C is noticed here too.
        let deadline = Instant::now() + START_TIMEOUT;
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => break line,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    if Instant::now() < deadline && !interrupted() => {}
                Err(_) if interrupted() => {
                    bundled.kill();
                    bail!("{INTERRUPTED_WHY} while starting the bundled monitor");
                }
                Err(_) => {
                    bundled.kill();
                    bail!(
                        "the bundled monitor did not report its address within {START_TIMEOUT:?}{}",
                        bundled.log_tail()
                    );
                }
            }
        };
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let status = bundled.child.wait().ok();
            bail!(
                "the bundled monitor failed to start ({}){}",
                status.map_or("no exit status".into(), |s| s.to_string()),
                bundled.log_tail()
            );
        };
        bundled.url = url.to_string();
        bundled.wait_healthy()?;
        Ok(bundled)
    }

    fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if blocking_get(&self.url, "/api/health").is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                bail!(
                    "the bundled monitor exited during start-up ({status}){}",
                    self.log_tail()
                );
            }
            if interrupted() {
                bail!("{INTERRUPTED_WHY} while starting the bundled monitor");
            }
            if Instant::now() > deadline {
                bail!("the bundled monitor did not answer /api/health within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then wait (bounded); SIGKILL if it does not stop in time.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        bail!("the bundled monitor did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines the child wrote to stderr, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        if tail.is_empty() {
            String::new()
        } else {
            let lines: Vec<&str> = tail.into_iter().rev().collect();
            format!("; its log says:\n  {}", lines.join("\n  "))
        }
    }
}

impl Drop for Bundled {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
        }
    }
}

/// One bundled monitor kept running across runs.
#[derive(Clone, Default)]
pub struct SharedMonitor(std::sync::Arc<std::sync::Mutex<Option<Bundled>>>);

impl SharedMonitor {
    pub(super) fn take(&self) -> Option<Bundled> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub(super) fn put(&self, b: Bundled) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
    }

    /// Stops the monitor if one is running (SIGTERM: it commits and checkpoints).
    pub fn stop(&self) -> anyhow::Result<()> {
        match self.take() {
            Some(b) => b.stop().map(|_| ()),
            None => Ok(()),
        }
    }
}

/// One run's bundled monitor: its own, or the shared one lent to it. A lent monitor goes
/// back to its slot when the run is done with it, however the run ends (an early return, a
/// panic unwinding), so that an error in one level neither kills the sweep's monitor nor
/// leaves it unstopped; an own one is stopped by `finish` (or killed if dropped before).
pub struct Monitor {
    bundled: Option<Bundled>,
    home: Option<SharedMonitor>,
}

impl Monitor {
    /// The monitor for one run: with a shared slot, the monitor in it (an error if it has
    /// exited since the previous run) or, the first time, a new one lent to the slot;
    /// without one, a new monitor of the run's own.
    pub fn for_run(
        program: &Path,
        profile: &str,
        keep_data: bool,
        shared: Option<&SharedMonitor>,
    ) -> anyhow::Result<Monitor> {
        let kept = shared.and_then(SharedMonitor::take);
        let bundled = match kept {
            Some(mut b) => {
                if let Some(status) = b.exited() {
                    bail!(
                        "the sweep's bundled monitor exited after the previous level ({status}){}",
                        b.log_tail()
                    );
                }
                b
            }
            None => {
                let b = Bundled::start(program, profile, keep_data)?;
                if keep_data {
                    eprintln!("bundled monitor data kept in {}", b.data_dir.display());
                }
                b
            }
        };
        Ok(Monitor {
            bundled: Some(bundled),
            home: shared.cloned(),
        })
    }

    /// Stops an own monitor gracefully; gives a lent one back.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let Some(b) = self.bundled.take() else {
            return Ok(());
        };
        match self.home.take() {
            Some(home) => {
                home.put(b);
                Ok(())
            }
            None => b.stop().map(|_| ()),
        }
    }
}

impl std::ops::Deref for Monitor {
    type Target = Bundled;
    fn deref(&self) -> &Bundled {
        self.bundled.as_ref().expect("a monitor until finished")
    }
}

impl std::ops::DerefMut for Monitor {
    fn deref_mut(&mut self) -> &mut Bundled {
        self.bundled.as_mut().expect("a monitor until finished")
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let (Some(b), Some(home)) = (self.bundled.take(), self.home.take()) {
            home.put(b);
        }
    }
}

/// Has the kernel send the child SIGTERM (a graceful stop: it commits what is queued and
/// exits) when the generator dies, however it dies: a generator killed by SIGKILL, or by a
/// SIGTERM that interrupts it anywhere, left the monitor running with no one to stop it.
///
/// Linux's PR_SET_PDEATHSIG fires when the *thread* that started the child ends, so the
/// monitor must be started from a thread that lives as long as the run (`run_scenario` runs on
/// the main thread).
fn stop_with_parent(command: &mut Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: between fork and exec the closure calls only prctl(2) and getppid(2), which are
    // async-signal-safe, and allocates nothing on its success path.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The generator died before the line above took effect: no signal will come.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the generator exited"));
            }
            Ok(())
        });
    }
}

/// `GET /performance/stats` of the monitor at `url` (http://HOST:PORT); None unless the
/// answer is the monitor's (a service that answers any path, as `serve --null` does with
/// `{}`, has no stats to report).
pub fn stats_of(url: &str) -> Option<serde_json::Value> {
    let r = blocking_get(url, "/performance/stats").ok()?;
    if r.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v.get("rss_peak_bytes").is_some().then_some(v)
}

/// How many executions the monitor at `url` stores (its list's `total`).
pub fn executions_of(url: &str) -> Option<u64> {
    let r = blocking_get(url, "/api/executions?limit=1").ok()?;
    if r.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v["total"].as_u64()
}
