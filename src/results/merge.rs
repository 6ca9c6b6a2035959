//! Merging results of one scenario run by several generator processes at the same time into
//! one results value, as if a single generator had produced all the load.
//!
//! - Per-operation and total histograms add bucket by bucket and counts add, so percentiles
//!   of the merge are those of all requests together. Throughputs of concurrent runs add.
//! - Time series align on wall-clock seconds: each run's measured window is taken to start
//!   `warmup_s` after its `started_at` (seeding time is not recorded, so runs of one scenario
//!   shift alike), and its offset from the earliest run is rounded to the nearest whole
//!   second, so a point can land up to half a second from where it happened. Per-second
//!   histograms are not stored, so a merged second's p50 is the success-weighted mean of the
//!   parts' p50 and its p99 the largest part's p99 (an upper bound of the true p99).
//! - Targets are not re-evaluated (left empty, with a warning); integrity counts add;
//!   environment comes from the first run; numeric `extra` figures add.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::names::TOTALS;
use super::{new_run_id, start_ms, Integrity, Load, Results, ServerInfo, SCHEMA_VERSION};
use crate::metrics::{MetricsError, OpStats, TimeSeriesPoint};

/// How far after another run's estimated end a run may start and still count as made at the
/// same time, seconds: set-up time and clock differences between machines.
const DISJOINT_TOLERANCE_S: f64 = 2.0;

/// Integrity discrepancies kept in the merge, count.
const MAX_DETAILS: usize = 20;

/// Runs that cannot be merged. `index` counts the runs from 1 in the order given.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge; pass at least one results JSON file")]
    Empty,
    #[error("run {index} has schema_version {found}; this version reads {SCHEMA_VERSION}")]
    SchemaVersion { index: usize, found: u32 },
    #[error(
        "run {index} is {what} {found:?} but run 1 is {expected:?}; \
         merge runs of one scenario"
    )]
    Mismatch {
        index: usize,
        what: &'static str,
        expected: String,
        found: String,
    },
    #[error(
        "run {later} was measured after run {earlier} had ended ({gap_s:.1}s later): merge adds \
         up runs made at the same time, from several generators; to judge runs made one after \
         another, use compare"
    )]
    Disjoint {
        earlier: usize,
        later: usize,
        gap_s: f64,
    },
    #[error(
        "runs {first} and {second} are the same run ({by}): merging it twice would count its \
         load twice"
    )]
    SameRun {
        first: usize,
        second: usize,
        /// How they were found to be one: the shared run_id, or the matching fields.
        by: String,
    },
    #[error("run {index} has started_at {found:?}, which is not an RFC 3339 time")]
    StartedAt { index: usize, found: String },
    #[error("run {index}, operation {operation:?}: {source}")]
    Histogram {
        index: usize,
        operation: String,
        source: MetricsError,
    },
}

/// Merges runs of one scenario made side by side; see the module documentation.
pub fn merge_results(parts: &[Results]) -> Result<Results, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let starts = check(parts)?;
    let mut warnings = Vec::new();

    // Measured windows on one clock, milliseconds from the earliest measured start.
    let measured_ms: Vec<i64> = parts
        .iter()
        .zip(&starts)
        // Saturating: the figures come from files, which may hold anything.
        .map(|(r, s)| s.saturating_add((r.warmup_s * 1000.0).round() as i64))
        .collect();
    let origin = *measured_ms.iter().min().expect("parts is not empty");
    let offsets_ms: Vec<i64> = measured_ms
        .iter()
        .map(|m| m.saturating_sub(origin))
        .collect();
    let end_s = parts
        .iter()
        .zip(&offsets_ms)
        .map(|(r, o)| *o as f64 / 1000.0 + r.duration_s)
        .fold(0.0, f64::max);
    // Runs made one after another are not load from several generators at once. A run's
    // end is estimated generously (a per-endpoint run warms up before each endpoint, and
    // machines' clocks differ), so that only a clear gap refuses.
    for (later, (r, o)) in parts.iter().zip(&offsets_ms).enumerate() {
        let start_s = *o as f64 / 1000.0;
        for (earlier, (e, eo)) in parts.iter().zip(&offsets_ms).enumerate() {
            let phases = if e.kind == "per_endpoint" {
                e.operations.len().max(1) as f64
            } else {
                1.0
            };
            let end_s = *eo as f64 / 1000.0 + e.duration_s + e.warmup_s * (phases - 1.0);
            if start_s > end_s + DISJOINT_TOLERANCE_S
                && !(r.duration_s == 0.0 || e.duration_s == 0.0)
            {
                return Err(MergeError::Disjoint {
                    earlier: earlier + 1,
                    later: later + 1,
                    gap_s: start_s - end_s,
                });
            }
        }
    }
    let max_offset_s = *offsets_ms.iter().max().expect("parts is not empty") as f64 / 1000.0;
    let shortest = parts.iter().map(|r| r.duration_s).fold(f64::MAX, f64::min);
    if max_offset_s > 1.0 || end_s - shortest > 1.0 {
        warnings.push(format!(
            "the runs did not share one measured window (starts up to {max_offset_s:.1}s \
             apart, {shortest:.1}s to {end_s:.1}s long together); throughputs are added as if \
             they ran side by side"
        ));
    }

    let mut operations = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> =
        parts.iter().flat_map(|r| r.operations.keys()).collect();
    for name in names {
        let present: Vec<(usize, &OpStats)> = parts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.operations.get(name).map(|s| (i, s)))
            .collect();
        operations.insert(name.clone(), merge_op(name, &present, end_s)?);
    }
    let totals: Vec<(usize, &OpStats)> = parts.iter().map(|r| &r.totals).enumerate().collect();
    let totals = merge_op(TOTALS, &totals, end_s)?;

    let load = merge_load(parts)?;
    let integrity = merge_integrity(parts);
    let server = merge_server(parts, &mut warnings);
    let extra = merge_extra(parts);
    let timeseries = merge_timeseries(parts, &offsets_ms, |r| Some(&r.timeseries));
    let mut operations_timeseries = BTreeMap::new();
    for name in parts.iter().flat_map(|r| r.operations_timeseries.keys()) {
        if !operations_timeseries.contains_key(name) {
            let merged =
                merge_timeseries(parts, &offsets_ms, |r| r.operations_timeseries.get(name));
            operations_timeseries.insert(name.clone(), merged);
        }
    }

    let services: std::collections::BTreeSet<&String> = parts
        .iter()
        .flat_map(|r| r.service_time_us.keys())
        .collect();
    if !services.is_empty() {
        warnings.push(
            "open-model service times are summaries without histograms and cannot be merged; \
             see each run's file"
                .into(),
        );
    }
    if parts.iter().any(|r| !r.targets.is_empty()) {
        warnings.push(
            "targets are not re-evaluated for merged results; each run's own target checks \
             are in its file"
                .into(),
        );
    }
    let profiles: std::collections::BTreeSet<&Option<String>> =
        parts.iter().map(|r| &r.profile).collect();
    let profile = if profiles.len() == 1 {
        first.profile.clone()
    } else {
        warnings.push("the runs loaded different storage profiles; profile left empty".into());
        None
    };
    let mut targets: Vec<&str> = Vec::new();
    for r in parts {
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
    }
    let environments: std::collections::BTreeSet<(&str, &str, usize)> = parts
        .iter()
        .map(|r| {
            let e = &r.environment;
            (e.cpu.as_str(), e.os.as_str(), e.cores)
        })
        .collect();
    if environments.len() > 1 {
        warnings.push(format!(
            "the runs came from {} different machines; environment is the first run's",
            environments.len()
        ));
    }
    for (i, r) in parts.iter().enumerate() {
        warnings.extend(r.warnings.iter().map(|w| format!("run {}: {w}", i + 1)));
    }
    let aborted: Vec<String> = parts
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.aborted.as_ref().map(|a| format!("run {}: {a}", i + 1)))
        .collect();
    // A part that failed its own targets or lost writes fails the merge too.
    let exit_code = parts.iter().map(|r| r.exit_code).max().unwrap_or(0);

    Ok(Results {
        schema_version: SCHEMA_VERSION,
        run_id: Some(new_run_id()),
        run_ids: parts.iter().flat_map(Results::constituent_runs).collect(),
        scenario: first.scenario.clone(),
        kind: first.kind.clone(),
        target: targets.join(", "),
        profile,
        started_at: parts
            .iter()
            .zip(&starts)
            .min_by_key(|(_, s)| **s)
            .map(|(r, _)| r.started_at.clone())
            .expect("parts is not empty"),
        duration_s: end_s,
        warmup_s: parts.iter().map(|r| r.warmup_s).fold(0.0, f64::max),
        load,
        operations,
        totals,
        service_time_us: BTreeMap::new(),
        targets: Vec::new(),
        integrity,
        delivery: None,
        server,
        environment: first.environment.clone(),
        // Each part counted the other generators as other work: no figure for the whole.
        machine: None,
        timeseries,
        operations_timeseries,
        extra,
        errors: {
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            for r in parts {
                for (msg, n) in &r.errors {
                    *errors.entry(msg.clone()).or_default() += n;
                }
            }
            errors
        },
        warnings,
        aborted: (!aborted.is_empty()).then(|| aborted.join("; ")),
        exit_code,
        // Each part's stages and generator evidence are its own machine's; the merge keeps
        // them in the parts.
        shape: None,
        generator: None,
        levels: Vec::new(),
        knee: None,
        capacity: None,
    })
}

/// The first pair of parts that are one run: sharing a run id (their own, or one a merge
/// lists), or, where a part has no id (written before ids), the same start, target and
/// totals.
fn same_run(parts: &[Results]) -> Option<MergeError> {
    for (i, a) in parts.iter().enumerate() {
        let ids = a.constituent_runs();
        for (j, b) in parts.iter().enumerate().skip(i + 1) {
            let (first, second) = (i + 1, j + 1);
            if let Some(id) = b.constituent_runs().iter().find(|id| ids.contains(id)) {
                let by = format!("both hold run_id {id}");
                return Some(MergeError::SameRun { first, second, by });
            }
            let unidentified = a.run_id.is_none() || b.run_id.is_none();
            if unidentified
                && a.started_at == b.started_at
                && a.target == b.target
                && a.totals == b.totals
            {
                let by = format!(
                    "a file without run_id, and both started at {} against {} with the same \
                     totals",
                    a.started_at, a.target
                );
                return Some(MergeError::SameRun { first, second, by });
            }
        }
    }
    None
}

/// Checks versions and sameness; returns each run's `started_at` in epoch milliseconds.
fn check(parts: &[Results]) -> Result<Vec<i64>, MergeError> {
    if let Some(e) = same_run(parts) {
        return Err(e);
    }
    let first = &parts[0];
    parts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let index = i + 1;
            if r.schema_version != SCHEMA_VERSION {
                return Err(MergeError::SchemaVersion {
                    index,
                    found: r.schema_version,
                });
            }
            for (what, expected, found) in [
                ("scenario", &first.scenario, &r.scenario),
                ("kind", &first.kind, &r.kind),
            ] {
                if expected != found {
                    return Err(MergeError::Mismatch {
                        index,
                        what,
                        expected: expected.clone(),
                        found: found.clone(),
                    });
                }
            }
            start_ms(&r.started_at).ok_or_else(|| MergeError::StartedAt {
                index,
                found: r.started_at.clone(),
            })
        })
        .collect()
}

/// Adds one operation's stats; throughput is the sum of the parts' throughputs.
fn merge_op(
    name: &str,
    present: &[(usize, &OpStats)],
    duration_s: f64,
) -> Result<OpStats, MergeError> {
    let stats: Vec<OpStats> = present.iter().map(|(_, s)| (*s).clone()).collect();
    let mut merged = OpStats::merge_concurrent(&stats, duration_s).map_err(|source| {
        // Name the first part whose histogram does not decode.
        let index = present
            .iter()
            .find(|(_, s)| s.decode_histogram().is_err())
            .map_or(1, |(i, _)| i + 1);
        MergeError::Histogram {
            index,
            operation: name.to_string(),
            source,
        }
    })?;
    // Each part's throughput is over its own window; side by side, the rates add.
    merged.throughput = stats.iter().map(|s| s.throughput).sum();
    Ok(merged)
}

/// Concurrencies add (closed model); rates and in-flight bounds add (open model).
fn merge_load(parts: &[Results]) -> Result<Load, MergeError> {
    let mut merged = parts[0].load;
    for (i, r) in parts.iter().enumerate().skip(1) {
        merged = match (merged, &r.load) {
            (Load::Closed { concurrency: a }, Load::Closed { concurrency: b }) => {
                Load::Closed { concurrency: a + b }
            }
            (
                Load::Open {
                    rate_per_s: a,
                    max_in_flight: fa,
                },
                Load::Open {
                    rate_per_s: b,
                    max_in_flight: fb,
                },
            ) => Load::Open {
                rate_per_s: a + b,
                max_in_flight: fa + fb,
            },
            (_, other) => {
                return Err(MergeError::Mismatch {
                    index: i + 1,
                    what: "load model",
                    expected: parts[0].load.model_name().into(),
                    found: other.model_name().into(),
                })
            }
        };
    }
    Ok(merged)
}

fn merge_integrity(parts: &[Results]) -> Option<Integrity> {
    let present: Vec<&Integrity> = parts.iter().filter_map(|r| r.integrity.as_ref()).collect();
    if present.is_empty() {
        return None;
    }
    Some(Integrity {
        checked: present.iter().map(|i| i.checked).sum(),
        lost_writes: present.iter().map(|i| i.lost_writes).sum(),
        details: present
            .iter()
            .flat_map(|i| i.details.iter().cloned())
            .take(MAX_DETAILS)
            .collect(),
    })
}

/// One bundled monitor's figures as they are; several: the largest peak RSS, the CPU time
/// summed, and each monitor's own stats in an array.
fn merge_server(parts: &[Results], warnings: &mut Vec<String>) -> Option<ServerInfo> {
    let present: Vec<&ServerInfo> = parts.iter().filter_map(|r| r.server.as_ref()).collect();
    match present.as_slice() {
        [] => None,
        [one] => Some((*one).clone()),
        many => {
            warnings.push(format!(
                "{} bundled monitors ran: server peak RSS is the largest, CPU the sum, stats \
                 one per monitor",
                many.len()
            ));
            Some(ServerInfo {
                rss_peak_bytes: many.iter().map(|s| s.rss_peak_bytes).max().unwrap_or(0),
                cpu_s: many.iter().map(|s| s.cpu_s).sum(),
                stats: Value::Array(many.iter().map(|s| s.stats.clone()).collect()),
                // Each monitor's own seconds and files; side by side they do not add up.
                timeseries: Vec::new(),
                storage: None,
            })
        }
    }
}

/// Numbers add (the created and completed counts these hold are per run); any other value
/// is kept when every run agrees and otherwise becomes an array of the runs' values (null
/// where a run lacks the key). `merged_runs` counts the runs, and adds up when merges merge.
fn merge_extra(parts: &[Results]) -> Map<String, Value> {
    let mut keys: Vec<&String> = Vec::new();
    for r in parts {
        for k in r.extra.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut merged = Map::new();
    for key in keys {
        let values: Vec<Option<&Value>> = parts.iter().map(|r| r.extra.get(key)).collect();
        let numbers: Option<Vec<&serde_json::Number>> =
            values.iter().flatten().map(|v| v.as_number()).collect();
        let value = match numbers {
            Some(ns) => {
                if let Some(sum) = ns.iter().map(|n| n.as_u64()).sum::<Option<u64>>() {
                    Value::from(sum)
                } else if let Some(sum) = ns.iter().map(|n| n.as_i64()).sum::<Option<i64>>() {
                    Value::from(sum)
                } else {
                    Value::from(ns.iter().filter_map(|n| n.as_f64()).sum::<f64>())
                }
            }
            None if values.iter().all(|v| *v == values[0]) => {
                values[0].cloned().unwrap_or(Value::Null)
            }
            None => Value::Array(
                values
                    .into_iter()
                    .map(|v| v.cloned().unwrap_or(Value::Null))
                    .collect(),
            ),
        };
        merged.insert(key.clone(), value);
    }
    let runs = match parts
        .iter()
        .map(|r| r.extra.get("merged_runs"))
        .collect::<Vec<_>>()
    {
        // Already summed above when every part carries it; a part without it is one run.
        v if v.iter().any(Option::is_some) => v
            .iter()
            .map(|x| x.and_then(Value::as_u64).unwrap_or(1))
            .sum::<u64>(),
        _ => parts.len() as u64,
    };
    merged.insert("merged_runs".into(), runs.into());
    merged
}

/// Aligns each run's points (of the series `of` picks) on the wall clock and adds them
/// second by second.
fn merge_timeseries<'a>(
    parts: &'a [Results],
    offsets_ms: &[i64],
    of: impl Fn(&'a Results) -> Option<&'a Vec<TimeSeriesPoint>>,
) -> Vec<TimeSeriesPoint> {
    #[derive(Default)]
    struct Second {
        ops: u64,
        errors: u64,
        // Σ successes · p50, Σ successes: for the weighted mean.
        p50_weighted: f64,
        successes: u64,
        p99_us: f64,
        p90_us: f64,
        max_us: f64,
    }
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    for (r, offset_ms) in parts.iter().zip(offsets_ms) {
        // Round half up to whole seconds: offsets are never negative.
        let shift = (offset_ms.saturating_add(500) / 1000) as u64;
        for p in of(r).into_iter().flatten() {
            let s = seconds.entry(p.t_s.saturating_add(shift)).or_default();
            s.ops = s.ops.saturating_add(p.ops);
            s.errors = s.errors.saturating_add(p.errors);
            let ok = p.ops.saturating_sub(p.errors);
            s.successes = s.successes.saturating_add(ok);
            s.p50_weighted += ok as f64 * p.p50_us;
            // Upper percentiles and the maximum: the largest of the parts' (conservative).
            s.p99_us = s.p99_us.max(p.p99_us);
            s.p90_us = s.p90_us.max(p.p90_us);
            s.max_us = s.max_us.max(p.max_us);
        }
    }
    let Some(&last) = seconds.keys().next_back() else {
        return Vec::new();
    };
    // Points count from t_s = 1; seconds before a late run's first point are filled in.
    (1..=last)
        .map(|t_s| {
            let s = seconds.remove(&t_s).unwrap_or_default();
            // A second with no successes has no latency, as in a single run's series.
            let p50_us = if s.successes > 0 {
                s.p50_weighted / s.successes as f64
            } else {
                0.0
            };
            TimeSeriesPoint {
                t_s,
                ops: s.ops,
                errors: s.errors,
                p50_us,
                p99_us: s.p99_us,
                p90_us: s.p90_us,
                max_us: s.max_us,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::compare::tests::run;
    use crate::metrics::Recorder;
    use crate::results::targets::TargetResult;

    fn point(t_s: u64, ops: u64, errors: u64, p50_us: f64, p99_us: f64) -> TimeSeriesPoint {
        TimeSeriesPoint {
            t_s,
            ops,
            errors,
            p50_us,
            p99_us,
            p90_us: p99_us,
            max_us: p99_us,
        }
    }

    /// Two runs of 10 s: A starting at :00, B 2.4 s later (its points shift by 2 s).
    fn two_runs() -> (Results, Results) {
        let mut a = run("stress", "2024-05-01T10:00:00.000Z", 100.0, 500.0, 0);
        let mut b = run("stress", "2024-05-01T10:00:02.400Z", 300.0, 1500.0, 5);
        a.timeseries = vec![
            point(1, 100, 0, 500.0, 600.0),
            point(2, 100, 0, 500.0, 700.0),
        ];
        b.timeseries = vec![point(1, 300, 5, 1500.0, 1800.0)];
        a.integrity = Some(Integrity {
            checked: 10,
            lost_writes: 0,
            details: vec![],
        });
        b.integrity = Some(Integrity {
            checked: 20,
            lost_writes: 1,
            details: vec!["execution 7 missing".into()],
        });
        a.extra.insert("created".into(), 10.into());
        b.extra.insert("created".into(), 20.into());
        a.extra.insert("note".into(), "x".into());
        b.extra.insert("note".into(), "y".into());
        a.targets.push(TargetResult {
            metric: "totals.p99".into(),
            target: "< 5ms".into(),
            measured: 1.0,
            unit: "ms".into(),
            passed: true,
            implied: false,
        });
        b.exit_code = 1;
        (a, b)
    }

    #[test]
    fn histograms_counts_and_throughputs_add() {
        let (a, b) = two_runs();
        let m = merge_results(&[a.clone(), b.clone()]).unwrap();
        for (name, merged) in m
            .operations
            .iter()
            .chain(std::iter::once((&"totals".to_string(), &m.totals)))
        {
            let (sa, sb) = if name == "totals" {
                (&a.totals, &b.totals)
            } else {
                (&a.operations[name], &b.operations[name])
            };
            assert_eq!(merged.count, sa.count + sb.count, "{name}");
            assert_eq!(merged.errors, sa.errors + sb.errors, "{name}");
            assert!((merged.throughput - (sa.throughput + sb.throughput)).abs() < 1e-9);
            let mut h = sa.decode_histogram().unwrap();
            h.add(sb.decode_histogram().unwrap()).unwrap();
            assert_eq!(merged.decode_histogram().unwrap(), h, "{name}: lossless");
        }
        // 1000 samples near 500 µs and 3000 near 1500 µs: the median is in the slow part.
        assert!(
            m.totals.latency_us.p50 > 1300.0,
            "{:?}",
            m.totals.latency_us
        );
        assert!((m.totals.throughput - 400.0).abs() < 1e-9);
    }

    #[test]
    fn timeseries_align_on_the_wall_clock() {
        let (a, b) = two_runs();
        let m = merge_results(&[a, b]).unwrap();
        // B's offset of 2.4 s rounds to 2 s: its first point lands on t_s = 3.
        assert_eq!(
            m.timeseries,
            vec![
                point(1, 100, 0, 500.0, 600.0),
                point(2, 100, 0, 500.0, 700.0),
                point(3, 300, 5, 1500.0, 1800.0),
            ]
        );
        assert!((m.duration_s - 12.4).abs() < 1e-9);
        assert_eq!(m.started_at, "2024-05-01T10:00:00.000Z");
    }

    #[test]
    fn overlapping_seconds_add_with_weighted_p50_and_largest_p99() {
        let (a, mut b) = two_runs();
        b.started_at = "2024-05-01T10:00:00.300Z".into();
        let m = merge_results(&[a, b]).unwrap();
        let first = &m.timeseries[0];
        assert_eq!((first.t_s, first.ops, first.errors), (1, 400, 5));
        // (100 · 500 + 295 · 1500) / 395
        assert!((first.p50_us - 492_500.0 / 395.0).abs() < 1e-9);
        assert_eq!(first.p99_us, 1800.0);
        assert_eq!(m.timeseries.len(), 2);
        assert!(
            m.warnings.iter().all(|w| !w.contains("window")),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn the_rest_merges_sensibly() {
        let (a, b) = two_runs();
        let m = merge_results(&[a.clone(), b]).unwrap();
        assert_eq!(m.load, Load::Closed { concurrency: 8 });
        let i = m.integrity.unwrap();
        assert_eq!((i.checked, i.lost_writes, i.details.len()), (30, 1, 1));
        assert_eq!(m.extra["created"], 30);
        assert_eq!(m.extra["note"], serde_json::json!(["x", "y"]));
        assert_eq!(m.extra["merged_runs"], 2);
        assert!(m.targets.is_empty());
        assert!(m.warnings.iter().any(|w| w.contains("not re-evaluated")));
        assert!(m.warnings.iter().any(|w| w.contains("window")));
        assert_eq!(m.exit_code, 1);
        assert_eq!(m.environment.cpu, a.environment.cpu);
        assert_eq!(m.schema_version, SCHEMA_VERSION);

        // Merging a merge with a third run counts three runs.
        let another = |r: &Results| Results {
            run_id: Some(new_run_id()),
            ..r.clone()
        };
        let pair = merge_results(&[a.clone(), another(&a)]).unwrap();
        let again = merge_results(&[pair, another(&a)]).unwrap();
        assert_eq!(again.extra["merged_runs"], 3);
        assert_eq!(again.totals.count, 3 * 1000);
    }

    #[test]
    fn runs_made_one_after_another_are_refused() {
        // 10 s runs with 1 s warm-up: B measures from 13.4 s after A's start, 2.4 s after A's
        // end, past the tolerance; 1.4 s after is within it.
        let a = run("stress", "2024-05-01T10:00:00.000Z", 100.0, 500.0, 0);
        let b = run("stress", "2024-05-01T10:00:12.400Z", 100.0, 500.0, 0);
        assert!(matches!(
            merge_results(&[a.clone(), b]),
            Err(MergeError::Disjoint {
                earlier: 1,
                later: 2,
                ..
            })
        ));
        let b = run("stress", "2024-05-01T10:00:11.400Z", 100.0, 500.0, 0);
        assert!(merge_results(&[a.clone(), b.clone()]).is_ok());
        // Per-endpoint runs warm up before each endpoint (here 2 endpoints, one more warm-up
        // second): the same 12.4 s start is within the tolerance of their later end.
        let (mut a, mut b) = (
            a,
            run("stress", "2024-05-01T10:00:12.400Z", 100.0, 500.0, 0),
        );
        for r in [&mut a, &mut b] {
            r.kind = "per_endpoint".into();
            let op = r.operations["get_execution"].clone();
            r.operations.insert("health".into(), op);
        }
        assert!(merge_results(&[a, b]).is_ok());
    }

    #[test]
    fn one_run_merges_to_itself() {
        let (a, _) = two_runs();
        let m = merge_results(std::slice::from_ref(&a)).unwrap();
        assert_eq!(m.totals, a.totals);
        assert_eq!(m.operations, a.operations);
        assert_eq!(m.timeseries, a.timeseries);
        assert_eq!(m.duration_s, a.duration_s);
    }

    #[test]
    fn mismatched_runs_are_rejected() {
        let (a, b) = two_runs();
        let mut other = b.clone();
        other.scenario = "api".into();
        let mut old = b.clone();
        old.schema_version = 0;
        let mut open = b.clone();
        open.load = Load::Open {
            rate_per_s: 10.0,
            max_in_flight: 4,
        };
        let mut no_time = b.clone();
        no_time.started_at = "yesterday".into();
        let mut garbage = b;
        garbage.totals.histogram = "!!".into();
        assert!(matches!(merge_results(&[]), Err(MergeError::Empty)));
        assert!(matches!(
            merge_results(&[a.clone(), other]),
            Err(MergeError::Mismatch {
                index: 2,
                what: "scenario",
                ..
            })
        ));
        assert!(matches!(
            merge_results(&[a.clone(), old]),
            Err(MergeError::SchemaVersion { index: 2, found: 0 })
        ));
        assert!(matches!(
            merge_results(&[a.clone(), open]),
            Err(MergeError::Mismatch {
                what: "load model",
                ..
            })
        ));
        assert!(matches!(
            merge_results(&[a.clone(), no_time]),
            Err(MergeError::StartedAt { index: 2, .. })
        ));
        assert!(matches!(
            merge_results(&[a, garbage]),
            Err(MergeError::Histogram { index: 2, .. })
        ));
    }

    #[test]
    fn the_same_run_given_twice_is_refused_and_a_merge_lists_its_runs() {
        let (a, b) = two_runs();
        // The same run_id, directly or inside a merge.
        assert!(matches!(
            merge_results(&[a.clone(), b.clone(), a.clone()]),
            Err(MergeError::SameRun {
                first: 1,
                second: 3,
                ..
            })
        ));
        let m = merge_results(&[a.clone(), b.clone()]).unwrap();
        let ids = |r: &Results| r.run_id.clone().unwrap();
        assert_eq!(m.run_ids, [ids(&a), ids(&b)]);
        assert!(m.run_id.is_some() && m.run_id != a.run_id && m.run_id != b.run_id);
        assert!(matches!(
            merge_results(&[m.clone(), b.clone()]),
            Err(MergeError::SameRun {
                first: 1,
                second: 2,
                ..
            })
        ));
        // A merge of merges lists every run once.
        let (c, d) = two_runs();
        let mm = merge_results(&[m, merge_results(&[c.clone(), d.clone()]).unwrap()]).unwrap();
        assert_eq!(mm.run_ids, [ids(&a), ids(&b), ids(&c), ids(&d)]);

        // Files from before run ids: the same start, target and totals are the same run;
        // another start is not.
        let old = Results {
            run_id: None,
            ..a.clone()
        };
        let e = merge_results(&[old.clone(), old.clone()]).unwrap_err();
        assert!(matches!(e, MergeError::SameRun { .. }), "{e}");
        assert!(e.to_string().contains("without run_id"), "{e}");
        assert!(matches!(
            merge_results(&[a.clone(), old.clone()]),
            Err(MergeError::SameRun { .. })
        ));
        let later = Results {
            started_at: "2024-05-01T10:00:00.500Z".into(),
            ..old.clone()
        };
        let m = merge_results(&[old, later]).unwrap();
        assert!(m.run_ids.is_empty() && m.run_id.is_some());
    }

    #[test]
    fn merged_results_round_trip_through_json() {
        let (a, b) = two_runs();
        let m = merge_results(&[a, b]).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        // serde_json may round floats by an ulp; counts and histograms come back exactly.
        assert_eq!(
            (
                back.totals.count,
                back.totals.errors,
                &back.totals.histogram
            ),
            (m.totals.count, m.totals.errors, &m.totals.histogram)
        );
        assert_eq!(back.timeseries.len(), m.timeseries.len());
        assert_eq!((&back.run_id, &back.run_ids), (&m.run_id, &m.run_ids));
        // An empty recorder's stats merge with the rest without changing them.
        let mut empty = m.clone();
        (empty.run_id, empty.run_ids) = (Some(new_run_id()), Vec::new());
        empty.operations.clear();
        empty.totals = Recorder::new().summarize(1.0);
        let merged = merge_results(&[m.clone(), empty]).unwrap();
        assert_eq!(merged.totals.count, m.totals.count);
    }
}
