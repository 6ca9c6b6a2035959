//! Shared by the integration tests: a tiny blocking HTTP/1.1 client, the monitor as a real
//! child process (`stepflow-bench serve` on port 0), a StepFlow-shaped service of another
//! make (`lookalike`), and the results JSON checked against the published schema.
//!
//! Every wait here is bounded, and a `Monitor` kills its child on drop, so a failing test
//! neither hangs nor leaks a process.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod fixed;
pub mod lookalike;
pub mod tls;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long the monitor may take to print its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the monitor may take to exit after a signal.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// Socket timeout of one request (connect, each read, each write).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

pub const BIN: &str = env!("CARGO_BIN_EXE_stepflow-bench");

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The `Content-Length` header, when the server sent one.
    pub content_length: Option<usize>,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON; panics with the raw body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the whole answer.
/// Transport failures are returned, not panicked on, so load tests can count them.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(body) = body {
        head.push_str("Content-Type: application/json\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.unwrap_or_default());
    // A server may answer (413) and stop reading before the body is all sent; what it answered
    // is still worth reading, so a failed write only matters if no answer follows.
    let written = stream.write_all(&request);
    match read_response(&mut stream) {
        Ok(response) => Ok(response),
        Err(e) => Err(written.err().unwrap_or(e)),
    }
}

/// Writes `request` as it is (it should ask for `Connection: close`) on a fresh connection and
/// reads the answer, for requests `send` cannot make: odd headers, bytes that are not UTF-8.
pub fn send_bytes(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let written = stream.write_all(request);
    match read_response(&mut stream) {
        Ok(response) => Ok(response),
        Err(e) => Err(written.err().unwrap_or(e)),
    }
}

/// One HTTP/1.1 request as bytes, with `Host`, `Connection: close` and, for a body,
/// `Content-Length` added; `headers` come as given.
pub fn request_bytes(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: stepflow\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

/// Reads one response from `stream`; a body without `Content-Length` ends with the stream.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    let bad = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a status line",
        ));
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside the headers".into()));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let content_length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| {
            v.parse::<usize>()
                .map_err(|_| bad(format!("bad Content-Length {v:?}")))
        })
        .transpose()?;
    let mut body = Vec::new();
    match content_length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        // `Connection: close` was asked for, so the body ends where the stream does.
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok(Response {
        status,
        content_length,
        headers,
        body,
    })
}

/// Sends a request and panics on a transport failure, naming the request.
pub fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Response {
    let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON serializes"));
    send(addr, method, path, bytes.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path} on {addr} failed: {e}"))
}

/// Sends a raw body (possibly not JSON at all) and panics on a transport failure.
pub fn call_raw(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Response {
    send(addr, method, path, Some(body))
        .unwrap_or_else(|e| panic!("{method} {path} on {addr} failed: {e}"))
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    call(addr, "GET", path, None)
}

/// Sends a request and expects `status`; returns the JSON body.
pub fn expect(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> Value {
    let r = call(addr, method, path, body);
    assert_eq!(
        r.status,
        status,
        "{method} {path} with {body:?} answered {} {:?}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// Polls `f` every few milliseconds until it returns `Some`, or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for `child` to exit for at most `timeout`; `None` if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    wait_until(timeout, || {
        child.try_wait().expect("try_wait on the monitor")
    })
}

/// Collects everything a pipe yields on a background thread.
fn drain(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&out);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    out
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

fn serve_command(profile: &str, data_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--profile", profile])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The bundled monitor running as a child process on a free loopback port.
pub struct Monitor {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    exited: bool,
}

impl Monitor {
    /// Starts `stepflow-bench serve --profile <profile>` on `data_dir` and returns once it has
    /// printed its `listening on` line; panics (with its stderr) if that takes too long.
    pub fn start(profile: &str, data_dir: &Path) -> Monitor {
        Monitor::start_with(profile, data_dir, &[])
    }

    /// [`Monitor::start`] with more `serve` flags, e.g. `["--read-timeout", "1s"]`.
    pub fn start_with(profile: &str, data_dir: &Path, extra: &[&str]) -> Monitor {
        let mut child = serve_command(profile, data_dir, extra)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let pid = child.id();
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let stdout_pipe = child.stdout.take().expect("piped stdout");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (first_line, first_line_rx) = mpsc::channel();
        let sink = Arc::clone(&stdout);
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout_pipe);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            sink.lock().unwrap().extend_from_slice(line.as_bytes());
            let _ = first_line.send(line);
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            sink.lock().unwrap().extend_from_slice(&rest);
        });
        let mut monitor = Monitor {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            stdout,
            stderr,
            exited: false,
        };
        let line = match first_line_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => panic!(
                "monitor ({profile}, {}) printed no line within {START_TIMEOUT:?}; stderr: {}",
                data_dir.display(),
                monitor.stderr()
            ),
        };
        let addr = line
            .trim_end()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse::<SocketAddr>().ok());
        match addr {
            Some(addr) => monitor.addr = addr,
            None => {
                // Give a dying process a moment so its stderr explains the failure.
                let _ = wait_child(&mut monitor.child, Duration::from_secs(2));
                panic!(
                    "monitor ({profile}) printed {line:?} instead of `listening on http://ADDR`; \
                     stderr: {}",
                    monitor.stderr()
                );
            }
        }
        monitor
    }

    pub fn stdout(&self) -> String {
        text(&self.stdout)
    }

    pub fn stderr(&self) -> String {
        text(&self.stderr)
    }

    /// Sends `signal` to the monitor.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid).expect("pid fits pid_t");
        // SAFETY: kill has no memory-safety preconditions; the pid is our own unreaped child,
        // so it cannot have been recycled for another process.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}) failed: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Waits up to [`EXIT_TIMEOUT`] for the monitor to exit; panics (killing it) otherwise.
    pub fn wait(&mut self) -> ExitStatus {
        match wait_child(&mut self.child, EXIT_TIMEOUT) {
            Some(status) => {
                self.exited = true;
                status
            }
            None => panic!(
                "monitor pid {} did not exit within {EXIT_TIMEOUT:?}; stderr: {}",
                self.pid,
                self.stderr()
            ),
        }
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// SIGINT, then wait for the exit status.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.signal(libc::SIGINT);
        self.wait()
    }

    /// SIGKILL: the process gets no chance to flush or clean up anything.
    pub fn kill9(&mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        self.wait()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = wait_child(&mut self.child, EXIT_TIMEOUT);
        }
    }
}

/// What a `serve` run that was expected to fail left behind.
#[derive(Debug)]
pub struct Failed {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `serve` on `data_dir` expecting it to exit by itself (an unusable data dir); panics,
/// after killing it, if it is still running after [`START_TIMEOUT`].
pub fn serve_expecting_exit(profile: &str, data_dir: &Path) -> Failed {
    let mut child = serve_command(profile, data_dir, &[])
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let Some(status) = wait_child(&mut child, START_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "serve on {} kept running; stdout: {:?}",
            data_dir.display(),
            text(&stdout)
        );
    };
    // The pipes close with the process; give the drain threads a moment to see the end.
    let _ = wait_until(Duration::from_secs(5), || {
        (Arc::strong_count(&stdout) == 1 && Arc::strong_count(&stderr) == 1).then_some(())
    });
    Failed {
        status,
        stdout: text(&stdout),
        stderr: text(&stderr),
    }
}

/// Creates an execution over HTTP and returns its id.
pub fn create_execution(addr: SocketAddr, name: &str) -> i64 {
    let body = serde_json::json!({ "name": name });
    let created = expect(addr, "POST", "/api/executions", Some(&body), 201);
    created["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("create answered without an integer id: {created}"))
}

// ---------------------------------------------------------------------------------------------
// Results JSON

pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/results.schema.json")
}

fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = schema_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{} is not a valid JSON Schema: {e}", path.display()))
    })
}

/// The schema's complaints about `results`, one line each (empty when it conforms).
pub fn schema_errors(results: &Value) -> Vec<String> {
    schema()
        .iter_errors(results)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

pub fn assert_matches_schema(results: &Value) {
    let errors = schema_errors(results);
    assert!(
        errors.is_empty(),
        "results do not match {}:\n  {}",
        schema_path().display(),
        errors.join("\n  ")
    );
}

/// Parses results JSON and checks it against the published schema.
pub fn parse_results(text: &str, what: &str) -> Value {
    let results: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {text}"));
    assert_matches_schema(&results);
    results
}

/// Reads and parses a results file, and checks it against the published schema.
pub fn read_results(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no results at {}: {e}", path.display()));
    parse_results(&text, &path.display().to_string())
}

// ---------------------------------------------------------------------------------------------
// The generator as a child process

/// How a `stepflow-bench` run ended.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `stepflow-bench <args>` in `cwd` to its end; panics (after killing it) if it runs
/// longer than `timeout` or is ended by a signal.
pub fn run_bench(cwd: &Path, args: &[&str], timeout: Duration) -> Finished {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let Some(status) = wait_child(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "stepflow-bench {args:?} still running after {timeout:?}; stderr: {}",
            text(&stderr)
        );
    };
    let _ = wait_until(Duration::from_secs(5), || {
        (Arc::strong_count(&stdout) == 1 && Arc::strong_count(&stderr) == 1).then_some(())
    });
    let (stdout, stderr) = (text(&stdout), text(&stderr));
    let code = status
        .code()
        .unwrap_or_else(|| panic!("stepflow-bench {args:?} ended by {status}; {stderr}"));
    Finished {
        code,
        elapsed: started.elapsed(),
        stdout,
        stderr,
    }
}

pub fn uint(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no unsigned {pointer} in {v:#}"))
}

/// Exit 0, or exit 1 with only speed targets missed: the built-in scenarios' latency and
/// throughput targets are for a release build, and these runs are a debug build against a
/// debug test server. Errors, lost writes and aborts are never tolerated.
pub fn assert_correct(what: &str, fin: &Finished, r: &Value) {
    assert!(r["aborted"].is_null(), "{what}: aborted: {}", r["aborted"]);
    assert_eq!(uint(r, "/totals/errors"), 0, "{what}: {}", r["errors"]);
    if let Some(i) = r.get("integrity") {
        assert_eq!(uint(i, "/lost_writes"), 0, "{what}: {i}");
    }
    let failed: Vec<&str> = r["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| t["passed"] != true)
        .map(|t| t["metric"].as_str().unwrap_or("?"))
        .collect();
    match fin.code {
        0 => assert!(failed.is_empty(), "{what}: exit 0 with {failed:?} failed"),
        1 => assert!(
            !failed.is_empty() && failed.iter().all(|m| !m.ends_with(".error_rate")),
            "{what}: exit 1 with targets {failed:?}; stderr: {}",
            fin.stderr
        ),
        code => panic!("{what}: exit {code}; stderr: {}", fin.stderr),
    }
}
