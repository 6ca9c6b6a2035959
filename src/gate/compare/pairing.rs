//! Pairing: which runs of the two sides go together (interleaved runs by start time), the
//! operations both sides have, and what is said of each run.

use super::*;

/// The runs of both sides in the order they started (the order given when a start time
/// does not parse), and a warning naming those that ran on a busy machine.
pub(super) fn run_infos(
    baseline: &[Results],
    candidate: &[Results],
    warnings: &mut Vec<String>,
) -> Vec<RunInfo> {
    let mut runs: Vec<RunInfo> = [(Side::Baseline, baseline), (Side::Candidate, candidate)]
        .into_iter()
        .flat_map(|(side, rs)| {
            rs.iter().enumerate().map(move |(i, r)| RunInfo {
                side,
                index: i + 1,
                started_at: r.started_at.clone(),
                throughput: r.totals.throughput,
                p99_us: r.totals.latency_us.p99,
                machine: r.machine,
            })
        })
        .collect();
    if runs.iter().all(|r| start_ms(&r.started_at).is_some()) {
        runs.sort_by_key(|r| start_ms(&r.started_at));
    }
    let busy: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let m = r.machine?;
            (m.other_cpu_pct + m.steal_pct >= BUSY_MACHINE_PCT).then(|| {
                format!(
                    "{} run {} (other processes {:.0} %, steal {:.0} %)",
                    r.side, r.index, m.other_cpu_pct, m.steal_pct
                )
            })
        })
        .collect();
    if !busy.is_empty() {
        warnings.push(format!(
            "the machine was busy with other work during {}: their figures may be the \
             machine's, not the code's; see the runs table",
            busy.join(", ")
        ));
    }
    runs
}

pub(super) fn refs(runs: &[Results]) -> Vec<&Results> {
    runs.iter().collect()
}

/// Both sides sorted by start time, when they pair up as interleaved runs.
pub(super) fn interleaved<'a>(
    baseline: &'a [Results],
    candidate: &'a [Results],
) -> Option<(Vec<&'a Results>, Vec<&'a Results>)> {
    if baseline.len() != candidate.len() || baseline.len() < 2 {
        return None;
    }
    let sorted = |runs: &'a [Results]| -> Option<Vec<(i64, &'a Results)>> {
        let mut v = runs
            .iter()
            .map(|r| Some((start_ms(&r.started_at)?, r)))
            .collect::<Option<Vec<_>>>()?;
        v.sort_by_key(|(t, _)| *t);
        Some(v)
    };
    let b = sorted(baseline)?;
    let c = sorted(candidate)?;
    let pairs: Vec<(i64, i64)> = b
        .iter()
        .zip(&c)
        .map(|((tb, _), (tc, _))| (*tb.min(tc), *tb.max(tc)))
        .collect();
    let separated = pairs.windows(2).all(|w| w[0].1 < w[1].0);
    separated.then(|| {
        (
            b.into_iter().map(|(_, r)| r).collect(),
            c.into_iter().map(|(_, r)| r).collect(),
        )
    })
}

/// Operations present in every run of both sides, by name; the others are named in a warning.
pub(super) fn common_operations(
    baseline: &[&Results],
    candidate: &[&Results],
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let all: BTreeSet<&String> = baseline
        .iter()
        .chain(candidate)
        .flat_map(|r| r.operations.keys())
        .collect();
    let mut common = Vec::new();
    for name in all {
        let missing: BTreeMap<Side, usize> =
            [(Side::Baseline, baseline), (Side::Candidate, candidate)]
                .into_iter()
                .map(|(side, runs)| {
                    let n = runs
                        .iter()
                        .filter(|r| !r.operations.contains_key(name))
                        .count();
                    (side, n)
                })
                .filter(|(_, n)| *n > 0)
                .collect();
        if missing.is_empty() {
            common.push(name.clone());
        } else {
            let detail: Vec<String> = missing
                .iter()
                .map(|(side, n)| format!("{n} {side} run(s)"))
                .collect();
            warnings.push(format!(
                "operation {name:?} not compared: missing from {}",
                detail.join(" and ")
            ));
        }
    }
    common
}
