//! The page's server panels: the bundled monitor's (or a target's) own figures, its samples
//! over time, memory by phase and the storage's footprint.

use super::*;

pub(super) fn server(out: &mut String, runs: &[&Results]) {
    if runs.iter().all(|r| r.server.is_none()) {
        return;
    }
    out.push_str(
        "<h2>The server's side</h2><table><tr><th>run</th><th>peak RSS</th>\
        <th>CPU</th><th>commit p99</th><th>WAL peak</th></tr>",
    );
    for (i, r) in runs.iter().enumerate() {
        let Some(s) = &r.server else { continue };
        let commit = s
            .stats
            .pointer("/db/commit/p99_us")
            .and_then(|v| v.as_f64())
            .map_or("-".into(), fmt_latency_us);
        let wal = s
            .stats
            .pointer("/wal/peak_pages")
            .and_then(|v| v.as_u64())
            .map_or("-".into(), |p| format!("{p} pages"));
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.2} s</td><td>{}</td><td>{}</td></tr>",
            escape(&run_name(runs, i)),
            fmt_bytes(s.rss_peak_bytes),
            s.cpu_s,
            commit,
            wal
        );
    }
    out.push_str("</table>");
    server_over_time(out, runs);
    memory_by_phase(out, runs);
    storage_footprint(out, runs);
}

/// The server's samples of every run, as series of `f` (None: not drawn).
pub(super) fn server_series(
    runs: &[&Results],
    what: &str,
    color_offset: usize,
    f: fn(&crate::results::ServerSample) -> f64,
) -> Vec<Series> {
    runs.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let samples = &r.server.as_ref()?.timeseries;
            (!samples.is_empty()).then(|| Series {
                name: format!("{} {what}", run_name(runs, i)),
                color: color(2 * i + color_offset),
                points: samples.iter().map(|p| (p.t_s, f(p))).collect(),
                dashed: false,
            })
        })
        .collect()
}

pub(super) fn server_over_time(out: &mut String, runs: &[&Results]) {
    if runs
        .iter()
        .all(|r| r.server.as_ref().is_none_or(|s| s.timeseries.is_empty()))
    {
        return;
    }
    let chart = |id, title, y_label| Chart {
        id,
        title,
        x_label: "seconds since the measured start (negative: set-up and warm-up)",
        y_label,
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        x_tick_label: None,
    };
    let mut memory = server_series(runs, "RSS", 0, |p| p.rss_bytes as f64 / 1_048_576.0);
    memory.extend(server_series(runs, "WAL", 1, |p| {
        p.wal_bytes as f64 / 1_048_576.0
    }));
    out.push_str(&line_chart(
        &chart("server-memory", "Server memory and WAL size", "MiB"),
        &memory,
    ));
    out.push_str(&line_chart(
        &chart("server-cpu", "Server CPU", "% of one core"),
        &server_series(runs, "CPU", 0, |p| p.cpu_pct),
    ));
    let mut writer = server_series(runs, "queue depth", 0, |p| p.writer_queue_depth as f64);
    writer.extend(server_series(runs, "writes per commit", 1, |p| {
        p.batch_size
    }));
    out.push_str(&line_chart(
        &chart(
            "server-writer",
            "Writer queue depth and group-commit batch size",
            "writes",
        ),
        &writer,
    ));
}

/// The write-up's "memory by test phase": baseline (first sample), peak and mean RSS of
/// each phase.
pub(super) fn memory_by_phase(out: &mut String, runs: &[&Results]) {
    let mut rows = String::new();
    for (i, r) in runs.iter().enumerate() {
        let Some(s) = &r.server else { continue };
        for phase in ["set-up", "warm-up", "measured", "read-back"] {
            let rss: Vec<f64> = s
                .timeseries
                .iter()
                .filter(|p| p.phase == phase)
                .map(|p| p.rss_bytes as f64)
                .collect();
            let Some(first) = rss.first() else { continue };
            let peak = rss.iter().copied().fold(0.0, f64::max);
            let mean = rss.iter().sum::<f64>() / rss.len() as f64;
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{phase}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&run_name(runs, i)),
                rss.len(),
                fmt_bytes(*first as u64),
                fmt_bytes(peak as u64),
                fmt_bytes(mean as u64)
            );
        }
    }
    if !rows.is_empty() {
        let _ = write!(
            out,
            "<h3>Memory by phase</h3><table><tr><th>run</th><th>phase</th><th>samples</th>\
             <th>first</th><th>peak</th><th>mean</th></tr>{rows}</table>"
        );
    }
}

pub(super) fn storage_footprint(out: &mut String, runs: &[&Results]) {
    let mut rows = String::new();
    for (i, r) in runs.iter().enumerate() {
        let Some(f) = r.server.as_ref().and_then(|s| s.storage.as_ref()) else {
            continue;
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&run_name(runs, i)),
            fmt_bytes(f.db_bytes),
            fmt_bytes(f.wal_bytes),
            fmt_bytes(f.shm_bytes),
            f.executions.map_or("-".into(), |n| n.to_string()),
            f.bytes_per_execution
                .map_or("-".into(), |b| format!("{b:.0} B"))
        );
    }
    if !rows.is_empty() {
        let _ = write!(
            out,
            "<h3>Storage efficiency</h3><table><tr><th>run</th><th>database</th><th>WAL</th>\
             <th>shared memory</th><th>executions</th><th>per execution</th></tr>{rows}</table>"
        );
    }
}
