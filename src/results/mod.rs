//! The results contract, below both the generator and the gate: a run's results as plain
//! data (schema_version 1), the integrity and target verdicts they carry, the names they
//! spell, reading and writing them whole, and merging runs made side by side.

pub mod delivery;
pub mod integrity;
pub mod io;
pub mod merge;
pub mod names;
pub mod schema;
pub mod targets;

use crate::metrics::{LatencySummary, OpStats, TimeSeriesPoint};
pub use integrity::Integrity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use targets::TargetResult;

pub const SCHEMA_VERSION: u32 = 1;

/// A new run id: 128 bits from the kernel's random source, as 32 lower-case hex digits.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if usize::try_from(n).ok() != Some(bytes.len()) {
        // No getrandom (very old kernels): time, process and a counter, mixed. Unique on
        // one machine, which is what merging needs.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mix = |mut z: u64| {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let a = mix(nanos ^ u64::from(std::process::id()) << 32);
        let b = mix(a ^ count);
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
/// One run's results; scripts and CI read these field names.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Results {
    /// The version of this contract; a reader refuses another.
    #[schemars(extend("const" = 1))]
    pub schema_version: u32,
    /// This run's own id, 128 random bits as 32 hex digits, made when it starts (a merge
    /// gets a new one); absent in files written before ids. `merge` refuses a run given
    /// twice by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    pub run_id: Option<String>,
    /// A merge: the ids of the runs merged into it, in order (the runs of merged merges
    /// included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^[0-9a-f]{32}$")))]
    pub run_ids: Vec<String>,
    /// Scenario name.
    #[schemars(length(min = 1))]
    pub scenario: String,
    /// What kind of executor ran: mix, per_endpoint, burst or flow.
    #[schemars(schema_with = "schema::scenario_kind")]
    pub kind: String,
    /// Base URL that was loaded, "direct" for the in-process storage layer, or "bundled
    /// monitor" when the bundled monitor did not start (the run is aborted).
    #[schemars(regex(pattern = r"^(https?://.+|direct|bundled monitor)$"))]
    pub target: String,
    /// Storage profile of the bundled monitor; null when an external --target was loaded.
    #[schemars(schema_with = "schema::profile")]
    pub profile: Option<String>,
    /// RFC 3339 start of the run.
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    /// Measured window, warm-up excluded, seconds. Open model: until the last answer to a
    /// request sent in it (a run cut short: until it stopped). Per-endpoint: the windows
    /// added up.
    #[schemars(range(min = 0))]
    pub duration_s: f64,
    /// Warm-up before the measured window, seconds.
    #[schemars(range(min = 0))]
    pub warmup_s: f64,
    pub load: Load,
    /// Per-operation figures, by operation name.
    pub operations: BTreeMap<String, OpStats>,
    /// All operations together (end-to-end figures such as a flow's `execution` excluded).
    pub totals: OpStats,
    /// Open model only: service time from the actual send, by operation and for all of
    /// them ("totals"), microseconds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_time_us: BTreeMap<String, LatencySummary>,
    pub targets: Vec<TargetResult>,
    /// Write-heavy scenarios: every acknowledged write read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
    /// Fan-out runs: whether every subscriber got every committed event exactly once, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<delivery::Delivery>,
    /// The bundled monitor's own figures, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,
    pub environment: Environment,
    /// How busy the machine was with other work during the run (Linux); see `MachineLoad`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineLoad>,
    /// Per-second throughput, errors and latency of the measured window.
    pub timeseries: Vec<TimeSeriesPoint>,
    /// The same per operation, by the second in which the generator's once-a-second reading
    /// saw each request completed (within about 50 ms of its completion second).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operations_timeseries: BTreeMap<String, Vec<TimeSeriesPoint>>,
    /// Kind-specific figures (a burst's created count, a flow's completed executions).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// What the reader of the figures should know (a target that cannot be met, a
    /// generator that fell behind, a read-back that could not run).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Distinct error messages of failed requests with their counts (at most 20 kinds).
    #[serde(default)]
    #[schemars(schema_with = "schema::error_counts")]
    pub errors: BTreeMap<String, u64>,
    /// Why the run stopped early (interrupted, target died); null for a complete run.
    #[serde(default)]
    pub aborted: Option<String>,
    /// The exit code this run ends with (0 pass, 1 target missed or writes lost, 3 aborted).
    #[schemars(schema_with = "schema::exit_code")]
    pub exit_code: u8,
    /// A shaped run (`[[load.stages]]`, `--stages`): each stage's figures, and the planned
    /// load beside the achieved one second by second. `load` then holds the shape's peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<ShapeResults>,
    /// The evidence that the generator was not the limit: its CPU use, how late it sent,
    /// and a Little's-law check; absent in files written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorCheck>,
    /// A sweep (`stepflow-bench sweep`): every level's own results, in order; the file's
    /// top-level figures are those of the knee level (or the last level, without a knee).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<SweepLevel>,
    /// A sweep: the last level before throughput stopped growing while latency kept
    /// growing; absent when no level is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knee: Option<Knee>,
    /// A capacity search (`stepflow-bench capacity`): the answer and every step; the file's
    /// top-level figures are the last confirmation run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

/// One level of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SweepLevel {
    /// Workers (closed model) or requests per second (open model).
    #[schemars(range(min = 0))]
    pub level: f64,
    /// Whether the generator, not the target, limited this level (`results.generator`):
    /// such a level is never taken for the knee.
    pub generator_limited: bool,
    /// The bundled monitor this level ran against: "fresh" (started for it, `--fresh`) or
    /// "shared" (the sweep's one monitor, holding every earlier level's data); absent with
    /// `--target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["fresh", "shared"]))]
    pub monitor: Option<String>,
    pub results: Results,
}

/// Where a sweep's throughput stopped growing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Knee {
    /// The knee's level (workers or requests per second), and its index in `levels`.
    #[schemars(range(min = 0))]
    pub level: f64,
    #[schemars(range(min = 0))]
    pub index: usize,
    /// Why: the next level's throughput and p99 against this one's.
    pub why: String,
}

/// The highest open-model rate at which an SLO held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Capacity {
    /// The highest rate that met the SLO in every run at it (confirmations included),
    /// requests per second; 0 when none did.
    #[schemars(range(min = 0))]
    pub max_rate: f64,
    /// The rate to plan with: `sustainable_fraction` of `max_rate`, requests per second.
    #[schemars(range(min = 0))]
    pub sustainable_rate: f64,
    #[schemars(range(min = 0, max = 1))]
    pub sustainable_fraction: f64,
    /// The SLO as given, e.g. "p99<=10ms", and the error rate allowed, percent.
    pub slo: String,
    #[schemars(range(min = 0, max = 100))]
    pub max_error_rate_pct: f64,
    /// The lowest rate that failed it, requests per second (absent when none failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_rate: Option<f64>,
    /// How sure the answer is, in words: the bracket, the confirmations, what cut it short.
    pub confidence: String,
    /// Whether the answer is the generator's ceiling rather than the target's.
    pub generator_limited: bool,
    /// The lowest rate at which the generator, not the target, was the limit, requests per
    /// second: the generator's ceiling on this machine lies between `max_rate` and it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub generator_limit_rate: Option<f64>,
    /// Every run of the search, in order.
    pub steps: Vec<CapacityStep>,
    /// Time the search took, seconds, and the budget it had.
    #[schemars(range(min = 0))]
    pub elapsed_s: f64,
    #[schemars(range(min = 0))]
    pub budget_s: f64,
}

/// One run of a capacity search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CapacityStep {
    /// probe, bisect or confirm.
    #[schemars(extend("enum" = ["probe", "bisect", "confirm"]))]
    pub phase: String,
    /// Offered rate, requests per second.
    #[schemars(range(min = 0))]
    pub rate: f64,
    /// Achieved throughput (successes per second).
    #[schemars(range(min = 0))]
    pub throughput: f64,
    /// The SLO's figure as measured (latency from the intended send time), microseconds
    /// for a latency.
    pub measured: f64,
    #[schemars(range(min = 0, max = 100))]
    pub error_rate_pct: f64,
    /// Whether the SLO and the error rate held.
    pub passed: bool,
    /// Whether the generator was the limit in this step (then it does not count as the
    /// target's).
    pub generator_limited: bool,
    /// The step's generator evidence (CPU, send lateness, Little's law) and the machine
    /// meanwhile, as a run's results hold them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineLoad>,
}
/// A shaped run's load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShapeResults {
    /// The stages in order, zero-length steps included.
    pub stages: Vec<StageResults>,
    /// Per second of the measured window: the planned load and the achieved one.
    pub per_second: Vec<PlannedPoint>,
}

/// One stage of a shaped run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageResults {
    /// 1-based position among the stages.
    #[schemars(range(min = 1))]
    pub stage: u32,
    /// The stage's planned length, seconds (0 for a step).
    #[schemars(range(min = 0))]
    pub duration_s: f64,
    /// The part of it that was measured (warm-up excluded), seconds.
    #[schemars(range(min = 0))]
    pub measured_s: f64,
    /// Planned level at its start and end: requests per second (open model) or workers
    /// (closed model).
    #[schemars(range(min = 0))]
    pub from: f64,
    #[schemars(range(min = 0))]
    pub to: f64,
    /// Mean planned level over the measured part: requests per second due, or workers.
    #[schemars(range(min = 0))]
    pub planned: f64,
    /// Mean achieved level over the measured part: requests per second sent (open model)
    /// or workers running (closed model).
    #[schemars(range(min = 0))]
    pub achieved: f64,
    /// All operations together, for requests due (open) or sent (closed) in the stage.
    pub stats: OpStats,
}

/// One second of a shaped run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedPoint {
    /// End of the second, since the measured start (as `timeseries`).
    #[schemars(range(min = 1))]
    pub t_s: u64,
    /// Planned: requests due in this second (open) or mean workers wanted (closed).
    #[schemars(range(min = 0))]
    pub planned: f64,
    /// Achieved: requests sent in this second (open) or mean workers running (closed).
    #[schemars(range(min = 0))]
    pub achieved: f64,
}

/// Whether the generator, not the target, limited a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GeneratorCheck {
    /// CPU time of the generator process over the load, percent of all cores' time
    /// (`--direct`: the storage layer's work included).
    #[schemars(range(min = 0))]
    pub cpu_pct: f64,
    /// Its busiest possible use: generator threads over cores, percent (100 when it has as
    /// many threads as cores).
    #[schemars(range(min = 0))]
    pub cpu_ceiling_pct: f64,
    /// Open model: how late requests went out after they were due (intended to actual
    /// send), microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lateness_us: Option<LatencySummary>,
    /// Little's law: requests in flight (sampled) against throughput × mean latency, and the
    /// most the generator allowed (workers, or the open model's in-flight cap).
    pub littles_law: LittlesLaw,
    /// Whether the generator, rather than the target, was what limited the load.
    pub limited: bool,
    /// What limited it: in_flight_cap, cpu, machine (a saturated machine, the generator its larger user), late_sends or idle_workers (absent when not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["in_flight_cap", "cpu", "machine", "late_sends", "idle_workers"]))]
    pub cause: Option<String>,
    /// Why it was judged limited, each with its cause and what to do (empty when not).
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// In flight = throughput × mean latency, and what bounded it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LittlesLaw {
    /// Mean requests in flight, sampled every 50 ms over the measured window.
    #[schemars(range(min = 0))]
    pub in_flight: f64,
    /// Throughput × mean latency (from the intended send time), requests.
    #[schemars(range(min = 0))]
    pub expected: f64,
    /// Most requests in flight the generator allowed: workers (closed) or the cap (open).
    #[schemars(range(min = 0))]
    pub allowed: f64,
}

/// Longest time a results file may span, seconds: a run's window (at most a day, see
/// `bounds`) plus its warm-up, and merges of runs side by side, with room to spare.
pub const MAX_SPAN_S: f64 = 7.0 * 86_400.0;

impl Results {
    /// The runs this file stands for: a merge's `run_ids`, else its own id (none for a file
    /// written before ids).
    pub fn constituent_runs(&self) -> Vec<String> {
        if self.run_ids.is_empty() {
            self.run_id.iter().cloned().collect()
        } else {
            self.run_ids.clone()
        }
    }

    /// Whether the times in a file read back are ones a run could have written; `compare`
    /// and `merge` compute with them (a series of 10^18 seconds would be laid out second by
    /// second).
    pub fn check_plausible(&self) -> Result<(), String> {
        for (name, v) in [("duration_s", self.duration_s), ("warmup_s", self.warmup_s)] {
            if !(v.is_finite() && (0.0..=MAX_SPAN_S).contains(&v)) {
                return Err(format!(
                    "{name} {v} is not a time a run measures (0 to {MAX_SPAN_S} seconds)"
                ));
            }
        }
        if let Some(p) = self.timeseries.iter().find(|p| p.t_s as f64 > MAX_SPAN_S) {
            return Err(format!(
                "timeseries point t_s {} is past any run's window ({MAX_SPAN_S} seconds)",
                p.t_s
            ));
        }
        Ok(())
    }
}

/// The machine during one run (set-up, warm-up and the load; not the read-back after it), so
/// that a run disturbed by other work can be told apart from one disturbed by the code under
/// test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MachineLoad {
    /// CPU time used by processes other than the generator and the bundled monitor, percent of
    /// all cores' time over the run; an external `--target` on this machine counts here.
    #[schemars(range(min = 0))]
    pub other_cpu_pct: f64,
    /// CPU time the hypervisor gave to other guests (steal), percent of all cores' time.
    #[schemars(range(min = 0))]
    pub steal_pct: f64,
    /// 1-minute load average when the load ended (the run's own threads included).
    #[schemars(range(min = 0))]
    pub load_avg_1m: f64,
    /// Time no core had anything to run (idle and iowait; interrupt handling is not idle
    /// here), percent of all cores' time: near 0, the machine was saturated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub idle_pct: Option<f64>,
    /// The bundled monitor's own CPU, percent of all cores' time (absent with `--target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub monitor_cpu_pct: Option<f64>,
}

/// Milliseconds since the epoch of an RFC 3339 timestamp.
pub fn start_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// How load was offered, resolved from the scenario and the flags: what the engine runs and
/// what results record.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum Load {
    /// Workers each send, await, record, repeat.
    Closed {
        #[schemars(range(min = 1))]
        concurrency: u32,
    },
    /// Requests sent on a fixed schedule, at most `max_in_flight` at once.
    Open {
        /// Requests per second.
        #[serde(rename = "rate")]
        #[schemars(extend("exclusiveMinimum" = 0))]
        rate_per_s: f64,
        #[schemars(range(min = 1))]
        max_in_flight: u32,
    },
}

impl Load {
    pub fn model_name(&self) -> &'static str {
        match self {
            Load::Closed { .. } => "closed",
            Load::Open { .. } => "open",
        }
    }
}

/// The bundled monitor's resource use and its own DB timings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ServerInfo {
    /// Peak resident memory of the server process up to the end of the load, bytes. With
    /// `--direct` the storage runs inside the generator: its whole peak, read-back included.
    pub rss_peak_bytes: u64,
    /// CPU time the server used (user + system) up to the end of the load, seconds; 0 with
    /// `--direct`, where it cannot be told apart from the generator's.
    #[schemars(range(min = 0))]
    pub cpu_s: f64,
    /// `GET /performance/stats` as the server answered it when the load ended.
    #[schemars(extend("type" = "object"))]
    pub stats: serde_json::Value,
    /// The server's figures once a second over the whole run (set-up, warm-up, measured
    /// window and read-back, each sample tagged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeseries: Vec<ServerSample>,
    /// The storage's files at the end of the run (the bundled monitor and `--direct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageFootprint>,
}

impl ServerInfo {
    /// The server's mean CPU (percent of one core) and peak resident memory over the measured
    /// window, from its once-a-second samples; None without samples in that window. Unlike
    /// `cpu_s` and `rss_peak_bytes` (since the server started), these are one run's alone,
    /// also on a server that served earlier runs.
    pub fn measured_cpu_and_rss(&self) -> Option<(f64, u64)> {
        let measured: Vec<&ServerSample> = self
            .timeseries
            .iter()
            .filter(|s| s.phase == "measured")
            .collect();
        if measured.is_empty() {
            return None;
        }
        let cpu = measured.iter().map(|s| s.cpu_pct).sum::<f64>() / measured.len() as f64;
        let rss = measured.iter().map(|s| s.rss_bytes).max().unwrap_or(0);
        Some((cpu, rss))
    }
}

/// One second of the server's own figures, from its `GET /performance/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServerSample {
    /// Seconds since the measured window began; negative in set-up and warm-up.
    pub t_s: f64,
    /// The run's phase: set-up, warm-up, measured or read-back.
    #[schemars(extend("enum" = ["set-up", "warm-up", "measured", "read-back"]))]
    pub phase: String,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// CPU used since the previous sample, percent of one core.
    #[schemars(range(min = 0))]
    pub cpu_pct: f64,
    /// Writes waiting for the writer thread.
    pub writer_queue_depth: i64,
    /// Writes per group-commit transaction since the previous sample (0: none committed).
    #[schemars(range(min = 0))]
    pub batch_size: f64,
    /// The WAL file's size, bytes.
    pub wal_bytes: u64,
    /// The server's commit p99 since it started, microseconds.
    #[schemars(range(min = 0))]
    pub commit_p99_us: f64,
}

/// What the stored data takes on disk at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StorageFootprint {
    /// stepflow.db, bytes.
    pub db_bytes: u64,
    /// stepflow.db-wal, bytes (0 when absent).
    pub wal_bytes: u64,
    /// stepflow.db-shm, bytes (0 when absent).
    pub shm_bytes: u64,
    /// Executions stored, when the service said.
    pub executions: Option<u64>,
    /// (database + WAL) / executions, bytes.
    pub bytes_per_execution: Option<f64>,
}

/// Where the figures came from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Environment {
    /// The CPU model, as /proc/cpuinfo names it.
    pub cpu: String,
    /// Cores available to the generator.
    #[schemars(range(min = 1))]
    pub cores: usize,
    pub os: String,
    /// stepflow-bench version.
    pub version: String,
    /// `git describe` of the source tree the binary was built from, when known.
    pub git: Option<String>,
    /// Generator threads used.
    #[schemars(range(min = 1))]
    pub generator_threads: usize,
}

impl Environment {
    pub fn detect(generator_threads: usize) -> Environment {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| format!("{} {}", std::env::consts::OS, r.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        let git = option_env!("STEPFLOW_GIT_DESCRIBE").map(str::to_string);
        Environment {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os,
            version: env!("CARGO_PKG_VERSION").to_string(),
            git,
            generator_threads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_128_bit_hex_and_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_run_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
    }
}
