//! `--stream FILE|-`: while the run goes, one JSON object per second, flushed at once — the
//! second's requests, errors and latency, per operation and in all, and the server's latest
//! sample — so a user can pipe it to `jq`, a dashboard or a log shipper. The command line
//! writes the last line, the judged run's summary.

use super::engine::{Control, LiveSecond};
use crate::results::ServerSample;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where the stream goes: a file or stdout, shared by the run and the command line.
pub type StreamSink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Writes `line` as one line of JSON and flushes it; a sink that fails (a closed pipe) is
/// not the run's failure, so the error is only returned.
pub fn write_line(sink: &StreamSink, line: &Value) -> std::io::Result<()> {
    let mut w = sink.lock().unwrap_or_else(|e| e.into_inner());
    serde_json::to_writer(&mut *w, line)?;
    w.write_all(b"\n")?;
    w.flush()
}

fn figures(h: &hdrhistogram::Histogram<u64>, errors: u64) -> Value {
    let q = |q: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        }
    };
    json!({
        "ops": h.len() + errors,
        "errors": errors,
        "p50_us": q(0.5),
        "p90_us": q(0.9),
        "p99_us": q(0.99),
        "max_us": if h.is_empty() { 0 } else { h.max() },
    })
}

/// One line per call: what the run measured since the previous one.
pub struct Streamer {
    sink: StreamSink,
    names: Vec<String>,
}

impl Streamer {
    pub fn new(sink: StreamSink, names: Vec<String>) -> Streamer {
        Streamer { sink, names }
    }

    /// The line for the second just ended, of `seconds` (one per operation, in `names`'
    /// order).
    pub fn line(
        &self,
        control: &Control,
        seconds: &[LiveSecond],
        server: Option<ServerSample>,
    ) -> Value {
        let now = Instant::now();
        let phase = control
            .phase
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut all = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2)
            .expect("valid bounds");
        let mut errors = 0;
        let mut operations = Map::new();
        for (name, s) in self.names.iter().zip(seconds) {
            // A flow's end-to-end figure is not a request: kept apart from the totals.
            if name != crate::results::names::FLOW_EXECUTION {
                let _ = all.add(&s.ok);
                errors += s.errors;
            }
            operations.insert(name.clone(), figures(&s.ok, s.errors));
        }
        let mut line = figures(&all, errors);
        line["t_s"] = phase
            .seconds_at(now)
            .map_or(Value::Null, |t| json!((t * 1000.0).round() / 1000.0));
        line["phase"] = phase.name_at(now).into();
        line["operations"] = Value::Object(operations);
        if let Some(s) = server {
            line["server"] = serde_json::to_value(s).unwrap_or_default();
        }
        line
    }

    /// Writes the second's line; false once the sink has failed (it is then left alone).
    pub fn tick(
        &self,
        control: &Control,
        seconds: &[LiveSecond],
        server: Option<ServerSample>,
    ) -> bool {
        write_line(&self.sink, &self.line(control, seconds, server)).is_ok()
    }
}

/// Each operation's seconds as the once-a-second readings saw them: what the results keep
/// as `operations_timeseries`.
pub struct OpSeries {
    pub names: Vec<String>,
    pub points: Vec<Vec<crate::metrics::TimeSeriesPoint>>,
}

impl OpSeries {
    pub fn new(names: Vec<String>) -> OpSeries {
        let points = names.iter().map(|_| Vec::new()).collect();
        OpSeries { names, points }
    }

    /// Adds a reading taken `t` seconds after the measured start (nothing before it).
    pub fn add(&mut self, t: Option<f64>, seconds: &[LiveSecond]) {
        let Some(t) = t.filter(|t| *t > 0.0) else {
            return;
        };
        for (points, s) in self.points.iter_mut().zip(seconds) {
            let q = |q: f64| {
                if s.ok.is_empty() {
                    0.0
                } else {
                    s.ok.value_at_quantile(q) as f64
                }
            };
            points.push(crate::metrics::TimeSeriesPoint {
                t_s: t.round().max(1.0) as u64,
                ops: s.ok.len() + s.errors,
                errors: s.errors,
                p50_us: q(0.5),
                p99_us: q(0.99),
                p90_us: q(0.9),
                max_us: if s.ok.is_empty() {
                    0.0
                } else {
                    s.ok.max() as f64
                },
            });
        }
    }

    pub fn into_map(
        self,
    ) -> std::collections::BTreeMap<String, Vec<crate::metrics::TimeSeriesPoint>> {
        self.names.into_iter().zip(self.points).collect()
    }
}
