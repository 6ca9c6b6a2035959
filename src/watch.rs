//! The CLI side of the monitor's performance tools, against any service that has them:
//! `monitor` (a live table of its stats and alerts, the time series written as results JSON),
//! `analyze` (its recommendations) and `optimize` (runs its optimize actions).
//!
//! Plain `http://` targets, through a small blocking HTTP/1.1 client (one connection per
//! request): these commands poll once a second or so and measure nothing themselves.

use crate::exit;
use crate::load::client::{Endpoint, EndpointError};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Smallest and largest `--interval`.
pub const INTERVAL_MIN: Duration = Duration::from_millis(100);
pub const INTERVAL_MAX: Duration = Duration::from_secs(3600);
/// Socket timeout of one poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `--interval`: 100ms to 1h.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = crate::load::duration::parse_duration(text).map_err(|e| e.to_string())?;
    if d < INTERVAL_MIN || d > INTERVAL_MAX {
        return Err(format!("must be from 100ms to 1h, got {d:?}"));
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchFormat {
    Table,
    Json,
}

/// A target of these commands: where to connect and what to put in the request line.
struct Target {
    url: String,
    endpoint: Endpoint,
    host: String,
    base: String,
}

fn target(url: &str) -> anyhow::Result<Target> {
    if url.starts_with("https://") {
        return Err(exit::usage(anyhow::anyhow!(
            "--target {url}: monitor, analyze and optimize speak plain http:// only"
        )));
    }
    let endpoint = Endpoint::parse(url).map_err(|e| match e {
        EndpointError::Resolve { .. } => exit::aborted(e),
        other => exit::usage(other),
    })?;
    let rest = endpoint.url.trim_start_matches("http://");
    let (host, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    Ok(Target {
        url: endpoint.url.clone(),
        host: host.to_string(),
        base: base.to_string(),
        endpoint,
    })
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Target {
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        let what = format!("{method} {}{path}", self.url);
        let fail = |e: std::io::Error| format!("{what}: {e}");
        let mut s =
            TcpStream::connect_timeout(&self.endpoint.addr, REQUEST_TIMEOUT).map_err(fail)?;
        s.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(fail)?;
        s.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(fail)?;
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.base, self.host
        );
        if body.is_some() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                payload.len()
            ));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(fail)?;
        s.write_all(payload.as_bytes()).map_err(fail)?;
        let mut raw = Vec::new();
        s.take(64 * 1024 * 1024)
            .read_to_end(&mut raw)
            .map_err(fail)?;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(&raw) {
            Ok(httparse::Status::Complete(n)) => n,
            _ => return Err(format!("{what}: the answer is not an HTTP response")),
        };
        let chunked = resp.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("transfer-encoding")
                && String::from_utf8_lossy(h.value)
                    .to_ascii_lowercase()
                    .contains("chunked")
        });
        let status = resp.code.unwrap_or(0);
        let body = if chunked {
            dechunk(&raw[n..]).ok_or_else(|| format!("{what}: a broken chunked body"))?
        } else {
            raw[n..].to_vec()
        };
        Ok(Answer { status, body })
    }

    /// GET or POST expecting a 2xx JSON answer.
    fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let a = self.request(method, path, body)?;
        let text = String::from_utf8_lossy(&a.body);
        if !(200..300).contains(&a.status) {
            let shown: String = text.chars().take(200).collect();
            return Err(format!(
                "{method} {}{path} answered HTTP {} with {shown:?}",
                self.url, a.status
            ));
        }
        serde_json::from_slice(&a.body).map_err(|e| {
            let shown: String = text.chars().take(120).collect();
            format!(
                "{method} {}{path}: the answer is not JSON ({e}): {shown:?}",
                self.url
            )
        })
    }
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Sums `name{...} value` lines of a Prometheus text, optionally only those whose labels
/// contain `with`.
fn prom_sum(text: &str, name: &str, with: Option<&str>) -> Option<f64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if with.is_some_and(|w| !rest.contains(w)) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            sum += v;
            found = true;
        }
    }
    found.then_some(sum)
}

/// One poll: the cumulative figures this command differences.
struct Poll {
    at: Instant,
    stats: Value,
    alerts: Vec<Value>,
    requests: Option<f64>,
    errors_5xx: Option<f64>,
}

fn poll(t: &Target) -> Result<Poll, String> {
    let stats = t.json("GET", "/performance/stats", None)?;
    let alerts = t.json("GET", "/performance/alerts", None)?;
    // Request counts come from /metrics where the service has it (the stats have none).
    let metrics = t
        .request("GET", "/metrics", None)
        .ok()
        .filter(|a| a.status == 200)
        .map(|a| String::from_utf8_lossy(&a.body).into_owned());
    let requests = metrics
        .as_deref()
        .and_then(|m| prom_sum(m, "stepflow_http_requests_total", None));
    let errors_5xx = metrics
        .as_deref()
        .and_then(|m| prom_sum(m, "stepflow_http_requests_total", Some("status=\"5xx\"")));
    Ok(Poll {
        at: Instant::now(),
        alerts: alerts["alerts"].as_array().cloned().unwrap_or_default(),
        stats,
        requests,
        errors_5xx,
    })
}

fn num(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0)
}

const DB_OPS: [&str; 4] = ["insert", "point_select", "list", "update"];

/// The row of one interval, from two polls.
fn row(prev: &Poll, now: &Poll, t_s: f64) -> Value {
    let dt = now.at.duration_since(prev.at).as_secs_f64().max(1e-3);
    let delta = |p: &str| (num(&now.stats, p) - num(&prev.stats, p)).max(0.0);
    let db_ops: f64 = DB_OPS
        .iter()
        .map(|op| delta(&format!("/db/{op}/count")))
        .sum();
    let batches = delta("/group_commit/batches");
    let writes = delta("/group_commit/writes");
    let per_s = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => json!(((a - b).max(0.0)) / dt),
        _ => Value::Null,
    };
    let top = now
        .alerts
        .iter()
        .filter_map(|a| a["level"].as_str())
        .max_by_key(|l| {
            ["info", "warning", "critical", "emergency"]
                .iter()
                .position(|x| x == l)
        });
    json!({
        "t_s": t_s,
        "requests_per_s": per_s(now.requests, prev.requests),
        "errors_5xx_per_s": per_s(now.errors_5xx, prev.errors_5xx),
        "db_ops_per_s": db_ops / dt,
        "commits_per_s": batches / dt,
        "batch_mean": if batches > 0.0 { writes / batches } else { 0.0 },
        "commit_p99_us": num(&now.stats, "/db/commit/p99_us"),
        "writer_queue_depth": num(&now.stats, "/writer_queue_depth"),
        "wal_bytes": num(&now.stats, "/wal_bytes"),
        "rss_bytes": num(&now.stats, "/rss_bytes"),
        "cpu_pct": (delta("/cpu_s") / dt * 100.0),
        "alerts": now.alerts.len(),
        "top_alert": top,
        "alert_list": now.alerts.iter().map(|a| json!({
            "level": a["level"], "rule": a["rule"], "subject": a["subject"],
            "value": a["value"], "threshold": a["threshold"],
        })).collect::<Vec<_>>(),
    })
}

fn fmt_opt(v: &Value, d: usize) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.d$}"))
}

fn print_row(r: &Value) {
    println!(
        "{:>7.1} {:>9} {:>7} {:>9.0} {:>8.0} {:>6.1} {:>6.0} {:>8.2} {:>8.1} {:>6.1} {:>3} {}",
        num(r, "/t_s"),
        fmt_opt(&r["requests_per_s"], 0),
        fmt_opt(&r["errors_5xx_per_s"], 1),
        num(r, "/db_ops_per_s"),
        num(r, "/commits_per_s"),
        num(r, "/batch_mean"),
        num(r, "/writer_queue_depth"),
        num(r, "/wal_bytes") / 1e6,
        num(r, "/rss_bytes") / 1e6,
        num(r, "/cpu_pct"),
        num(r, "/alerts"),
        r["top_alert"].as_str().unwrap_or(""),
    );
}

/// `monitor --target URL [--duration 60] [--interval 1]`.
pub fn monitor(
    url: &str,
    duration: Duration,
    interval: Duration,
    out: Option<&Path>,
    format: WatchFormat,
) -> anyhow::Result<ExitCode> {
    if interval > duration {
        return Err(exit::usage(anyhow::anyhow!(
            "--interval {interval:?} is longer than --duration {duration:?}"
        )));
    }
    let out: PathBuf = out.map(Path::to_path_buf).unwrap_or_else(|| {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        PathBuf::from("results").join(format!("monitor-{stamp}.json"))
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            exit::usage(anyhow::anyhow!(
                "--out {}: cannot create {}: {e}",
                out.display(),
                dir.display()
            ))
        })?;
    }
    let t = target(url)?;
    let started_at = chrono::Utc::now().to_rfc3339();
    let start = Instant::now();
    let mut prev = poll(&t).map_err(|e| exit::aborted(anyhow::anyhow!("{e}")))?;
    let table = format == WatchFormat::Table;
    if table {
        println!(
            "monitoring {} every {interval:?} for {duration:?} (profile {})",
            t.url,
            prev.stats["profile"].as_str().unwrap_or("?")
        );
        println!(
            "{:>7} {:>9} {:>7} {:>9} {:>8} {:>6} {:>6} {:>8} {:>8} {:>6} {:>3} top alert",
            "t_s",
            "req/s",
            "5xx/s",
            "db ops/s",
            "commit/s",
            "batch",
            "queue",
            "WAL MB",
            "RSS MB",
            "CPU%",
            "al",
        );
    }
    let mut rows = Vec::new();
    let mut failures: Vec<Value> = Vec::new();
    let mut seen_alerts: Vec<(String, String, String)> = Vec::new();
    let mut k = 1u32;
    loop {
        let due = interval * k;
        if due > duration {
            break;
        }
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        k += 1;
        let t_s = start.elapsed().as_secs_f64();
        match poll(&t) {
            Ok(now) => {
                let r = row(&prev, &now, t_s);
                if table {
                    print_row(&r);
                    for a in &now.alerts {
                        let key = (
                            a["rule"].as_str().unwrap_or("").to_string(),
                            a["subject"].as_str().unwrap_or("").to_string(),
                            a["level"].as_str().unwrap_or("").to_string(),
                        );
                        if !seen_alerts.contains(&key) {
                            println!(
                                "        alert {}: {}",
                                key.2,
                                a["message"].as_str().unwrap_or("")
                            );
                            seen_alerts.push(key);
                        }
                    }
                }
                rows.push(r);
                prev = now;
            }
            Err(e) => {
                if table {
                    println!("{t_s:>7.1} poll failed: {e}");
                }
                failures.push(json!({ "t_s": t_s, "error": e }));
            }
        }
    }
    let results = json!({
        "schema_version": 1,
        "kind": "monitor",
        "target": t.url,
        "profile": prev.stats["profile"],
        "started_at": started_at,
        "duration_s": start.elapsed().as_secs_f64(),
        "interval_s": interval.as_secs_f64(),
        "timeseries": rows,
        "failed_polls": failures,
        "final_stats": prev.stats,
    });
    let text = serde_json::to_string_pretty(&results).expect("JSON serializes");
    std::fs::write(&out, format!("{text}\n"))
        .map_err(|e| exit::usage(anyhow::anyhow!("--out {}: {e}", out.display())))?;
    if table {
        println!(
            "wrote {} ({} samples, {} failed polls)",
            out.display(),
            rows.len(),
            failures.len()
        );
    } else {
        println!("{text}");
    }
    // Every poll failing means the target went away.
    if rows.is_empty() && !failures.is_empty() {
        return Ok(ExitCode::from(exit::ABORTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `analyze --target URL`: prints the recommendations.
pub fn analyze(url: &str, format: WatchFormat) -> anyhow::Result<ExitCode> {
    let t = target(url)?;
    let r = t
        .json("GET", "/performance/recommendations", None)
        .map_err(|e| exit::aborted(anyhow::anyhow!("{e}")))?;
    if format == WatchFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("JSON serializes")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let recs = r["recommendations"].as_array().cloned().unwrap_or_default();
    println!(
        "{}: profile {}, {} recommendation(s)",
        t.url,
        r["profile"].as_str().unwrap_or("?"),
        recs.len()
    );
    for (i, x) in recs.iter().enumerate() {
        let fix = &x["fix"];
        let fix = fix["sql"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                fix["action"]
                    .as_str()
                    .map(|a| format!("stepflow-bench optimize --target {} --action {a}", t.url))
            })
            .unwrap_or_else(|| fix.to_string());
        println!(
            "{:>2}. [{}] {} ({})\n    why: {}\n    fix: {}",
            i + 1,
            x["severity"].as_str().unwrap_or("?"),
            x["title"].as_str().unwrap_or("?"),
            x["kind"].as_str().unwrap_or("?"),
            x["why"].as_str().unwrap_or(""),
            fix
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The actions `optimize` runs when none is given: the cheap ones (VACUUM only on request).
pub fn default_actions(given: Vec<String>) -> Vec<String> {
    if given.is_empty() {
        ["analyze", "optimize", "checkpoint"]
            .map(String::from)
            .to_vec()
    } else {
        given
    }
}

/// `optimize --target URL [--action ...]`: runs the actions and prints what was done.
pub fn optimize(url: &str, actions: &[String], format: WatchFormat) -> anyhow::Result<ExitCode> {
    let t = target(url)?;
    let r = t
        .json(
            "POST",
            "/performance/optimize",
            Some(&json!({ "actions": actions })),
        )
        .map_err(|e| exit::aborted(anyhow::anyhow!("{e}")))?;
    if format == WatchFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("JSON serializes")
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: profile {}",
        t.url,
        r["profile"].as_str().unwrap_or("?")
    );
    for d in r["done"].as_array().cloned().unwrap_or_default() {
        let action = d["action"].as_str().unwrap_or("?");
        match d["skipped"].as_str() {
            Some(why) => println!("  {action:<10} skipped: {why}"),
            None => println!(
                "  {action:<10} {:>9.2} ms (writer held {:.2} ms)  {}  {}",
                num(&d, "/took_ms"),
                num(&d, "/writer_paused_ms"),
                d["sql"].as_str().unwrap_or(""),
                d["result"]
            ),
        }
    }
    println!("  {}", r["how"].as_str().unwrap_or(""));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_has_a_range() {
        assert_eq!(parse_interval("1").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_interval("100ms").unwrap(), Duration::from_millis(100));
        for bad in ["0", "99ms", "2h", "x", "-1"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prometheus_lines_are_summed_by_name_and_label() {
        let text = "# HELP x\nstepflow_http_requests_total{route=\"/a\",status=\"2xx\"} 5\n\
                    stepflow_http_requests_total{route=\"/a\",status=\"5xx\"} 2\n\
                    stepflow_http_requests_totally 9\n";
        assert_eq!(
            prom_sum(text, "stepflow_http_requests_total", None),
            Some(7.0)
        );
        assert_eq!(
            prom_sum(text, "stepflow_http_requests_total", Some("status=\"5xx\"")),
            Some(2.0)
        );
        assert_eq!(prom_sum(text, "nothing", None), None);
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"5\r\nab").is_none());
    }
}
