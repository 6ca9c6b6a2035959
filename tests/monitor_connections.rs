//! The monitor's connections at the edges of HTTP: requests hyper cannot parse get JSON
//! errors, a client that never reads its answers is cut off, and `serve`'s flags have ranges.

mod common;

use common::{Monitor, BIN, START_TIMEOUT};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Writes `request` on a fresh connection and reads until the server closes it.
fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before it has read all of a too-large head.
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !out.is_empty() => break,
            Err(e) => panic!("reading the answer to {:?}: {e}", trim(request)),
        }
    }
    out
}

fn trim(request: &[u8]) -> String {
    String::from_utf8_lossy(&request[..request.len().min(80)]).into_owned()
}

/// Splits a whole answer into its status, lower-cased head and body.
fn parse(answer: &[u8]) -> (u16, String, Vec<u8>) {
    let text = String::from_utf8_lossy(answer);
    let (head, _) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {text:?}"));
    let body = answer[head.len() + 4..].to_vec();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body)
}

/// hyper answers what it cannot parse before any application code runs; those answers were
/// bare (`content-length: 0`, no `Content-Type`) and are now `{"error": ...}` like every other.
#[test]
fn unparseable_requests_get_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: 1\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("a bad request line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        (
            "an unknown version",
            b"GET /api/health HTTP/3.0\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a header without a colon",
            b"GET /api/health HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a Content-Length that is not a number",
            b"POST /api/executions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two different Content-Lengths",
            b"POST /api/executions HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc"
                .to_vec(),
            400,
        ),
        (
            "a NUL in a header",
            b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n".to_vec(),
            400,
        ),
        (
            "200 headers",
            format!("GET /api/health HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            431,
        ),
        (
            "a 500 KB header",
            format!(
                "GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(500_000)
            )
            .into_bytes(),
            431,
        ),
        (
            "a 70 KB request target",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
        ),
    ];
    for (what, request, status) in cases {
        let answer = exchange(monitor.addr, &request);
        let (got, head, body) = parse(&answer);
        assert_eq!(got, status, "{what}: {head}");
        assert!(
            head.contains("content-type: application/json"),
            "{what}: {head}"
        );
        assert!(head.contains("connection: close"), "{what}: {head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{what}: {head}"
        );
        let body: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {answer:?}"));
        assert!(body["error"].is_string(), "{what}: {body}");
    }
    // A good request, then garbage on the same connection: the first answer is untouched.
    let answer = exchange(
        monitor.addr,
        b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&answer).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let second = text.find("HTTP/1.1 400").expect("a second answer");
    let (status, head, body) = parse(&answer[second..]);
    assert_eq!(status, 400);
    assert!(head.contains("content-type: application/json"), "{head}");
    serde_json::from_slice::<serde_json::Value>(&body).expect("JSON");
    // And the service carries on.
    common::expect(monitor.addr, "GET", "/api/health", None, 200);
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host` gets 400 (it was served); HTTP/1.0
/// has no `Host` to require.
#[test]
fn http11_requests_need_a_host() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start("optimized", dir.path());
    let answer = exchange(
        monitor.addr,
        b"GET /api/health HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let (status, head, body) = parse(&answer);
    assert_eq!(status, 400, "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(body["error"].as_str().unwrap().contains("Host"), "{body}");
    let answer = exchange(
        monitor.addr,
        b"POST /api/executions HTTP/1.1\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"name\":\"x\"}",
    );
    assert_eq!(parse(&answer).0, 400, "a write without Host is refused too");
    let listed = common::expect(monitor.addr, "GET", "/api/executions", None, 200);
    assert_eq!(listed["total"], 0, "and stored nothing");
    let answer = exchange(monitor.addr, b"GET /api/health HTTP/1.0\r\n\r\n");
    assert_eq!(parse(&answer).0, 200);
    let answer = exchange(
        monitor.addr,
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(parse(&answer).0, 200);
}

/// A client that sends requests and never reads the answers was served for ever: the writes
/// waited on its full receive window and nothing timed out. With `--write-timeout 1s` the
/// server closes the connection once a write has waited that long.
#[test]
fn a_client_that_never_reads_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start_with(
        "optimized",
        dir.path(),
        &["--write-timeout", "1s", "--read-timeout", "120s"],
    );
    let stream = TcpStream::connect(monitor.addr).unwrap();
    set_receive_buffer(&stream, 4096);
    // 300 answers of ~60 KB each: far more than the socket buffers on both sides hold.
    let request = format!(
        "GET /api/openapi.json HTTP/1.1\r\nHost: {}\r\n\r\n",
        monitor.addr
    );
    let mut writer = stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let sender = std::thread::spawn(move || {
        for _ in 0..300 {
            if writer.write_all(request.as_bytes()).is_err() {
                break;
            }
        }
    });
    // Not reading, for well past the write timeout.
    std::thread::sleep(Duration::from_secs(4));
    // Another client is served meanwhile.
    common::expect(monitor.addr, "GET", "/api/health", None, 200);
    // Now read: a connection the server closed ends (EOF or reset) after what was already
    // in flight; one it kept open would go on delivering all 300 answers, then wait.
    let mut reader = stream;
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let one = stepflow_bench::monitor::openapi::document().len();
    let started = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let end = loop {
        // Through a 4 KB window the 18 MB of 300 answers would take minutes.
        if started.elapsed() > Duration::from_secs(10) {
            break "still open";
        }
        match reader.read(&mut buf) {
            Ok(0) => break "closed",
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break "reset",
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break "still open"
            }
            Err(e) => panic!("read: {e}"),
        }
    };
    let _ = sender.join();
    assert_ne!(
        end,
        "still open",
        "the connection was not closed: {got} bytes read in {:?}",
        started.elapsed()
    );
    assert!(
        got < 300 * one,
        "every answer was delivered ({got} bytes), so nothing was cut off"
    );
}

fn set_receive_buffer(stream: &TcpStream, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_RCVBUF");
}

/// Runs `serve` with `flags` and expects it to refuse them at once: exit 2 with a message
/// naming the flag and its range.
fn refused(flags: &[&str], says: &str) {
    let dir = tempfile::tempdir().unwrap();
    for bin in [BIN, env!("CARGO_BIN_EXE_stepflow-monitor")] {
        let mut cmd = Command::new(bin);
        if bin == BIN {
            cmd.arg("serve");
        }
        let mut child = cmd
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let Some(status) = common::wait_child(&mut child, START_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} {flags:?} kept running");
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{bin} {flags:?}: {stderr}");
        assert!(
            stderr.contains(flags[0]) && stderr.contains(says),
            "{bin} {flags:?}: {stderr}"
        );
    }
}

#[test]
fn serve_flags_have_ranges() {
    refused(&["--workers", "0"], "from 1 to 512");
    refused(&["--workers", "513"], "from 1 to 512");
    refused(&["--workers", "100000000000"], "from 1 to 512");
    refused(&["--write-timeout", "0s"], "more than 0");
    refused(&["--write-timeout", "2h"], "at most 1h");
    refused(&["--read-timeout", "0"], "more than 0");
    refused(
        &["--shutdown-timeout", "10000000000000000000s"],
        "at most 1h",
    );
}

#[test]
fn serve_takes_the_ends_of_its_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let mut monitor = Monitor::start_with(
        "optimized",
        dir.path(),
        &[
            "--workers",
            "1",
            "--write-timeout",
            "1h",
            "--read-timeout",
            "1h",
            "--shutdown-timeout",
            "1h",
        ],
    );
    common::expect(monitor.addr, "GET", "/api/health", None, 200);
    assert!(monitor.terminate().success());
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start_with("optimized", dir.path(), &["--workers", "512"]);
    common::expect(monitor.addr, "GET", "/api/health", None, 200);
}
