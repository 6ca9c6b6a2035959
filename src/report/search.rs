//! A sweep's levels and a capacity search's steps, as a table (or markdown) for people.

use super::{fmt_bytes, fmt_latency_us, fmt_rate};
use crate::results::{Load, Results};
use comfy_table::presets::{ASCII_MARKDOWN, UTF8_BORDERS_ONLY};
use comfy_table::{CellAlignment, Table};

pub fn render_search(r: &Results, markdown: bool) -> String {
    let mut out = String::new();
    let mut table = Table::new();
    table.load_preset(if markdown {
        ASCII_MARKDOWN
    } else {
        UTF8_BORDERS_ONLY
    });
    if !r.levels.is_empty() {
        let unit = match r.levels[0].results.load {
            Load::Closed { .. } => "workers",
            Load::Open { .. } => "req/s",
        };
        out.push_str(&format!(
            "sweep of {} against {}{}\n",
            r.scenario,
            r.target,
            r.profile
                .as_ref()
                .map_or(String::new(), |p| format!(" ({p} profile)"))
        ));
        table.set_header(vec![
            unit,
            "ops/s",
            "p50",
            "p95",
            "p99",
            "success %",
            "server RSS",
            "server CPU¹",
            "gen CPU",
            "",
        ]);
        for (i, l) in r.levels.iter().enumerate() {
            let t = &l.results.totals;
            let success = if t.count == 0 {
                0.0
            } else {
                100.0 - t.error_rate()
            };
            let (rss, cpu) = l
                .results
                .server
                .as_ref()
                .and_then(|s| s.measured_cpu_and_rss())
                .map_or(("-".to_string(), "-".to_string()), |(cpu, rss)| {
                    (fmt_bytes(rss), format!("{cpu:.0} %"))
                });
            let gen = l
                .results
                .generator
                .as_ref()
                .map_or("-".into(), |g| format!("{:.0} %", g.cpu_pct));
            let mark = match (&r.knee, l.generator_limited) {
                (_, true) => "generator-limited",
                (Some(k), _) if k.index == i => "← knee",
                _ => "",
            };
            let level = if unit == "workers" {
                format!("{}", l.level as u64)
            } else {
                fmt_rate(l.level)
            };
            table.add_row(vec![
                level,
                fmt_rate(t.throughput),
                fmt_latency_us(t.latency_us.p50),
                fmt_latency_us(t.latency_us.p95),
                fmt_latency_us(t.latency_us.p99),
                format!("{success:.2}"),
                rss,
                cpu,
                gen,
                mark.to_string(),
            ]);
        }
        for i in 0..9 {
            if let Some(c) = table.column_mut(i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out.push_str(&table.to_string());
        out.push('\n');
        out.push_str(
            "¹ the server's mean CPU over each level's measured window, percent of one core (its \
             RSS: the peak there); gen CPU: the generator's, percent of all cores\n",
        );
        match r.levels[0].monitor.as_deref() {
            Some("shared") => out.push_str(
                "one bundled monitor served every level, its data growing level by level \
                 (--fresh: a new one per level)\n",
            ),
            Some("fresh") => out.push_str("a fresh bundled monitor for each level\n"),
            _ => {}
        }
        match &r.knee {
            Some(k) => out.push_str(&format!("knee at {}: {}\n", fmt_rate(k.level), k.why)),
            None => out.push_str("no knee: throughput kept growing with the load\n"),
        }
    }
    if let Some(c) = &r.capacity {
        out.push_str(&format!(
            "capacity of {} against {} for {} (errors ≤ {} %)\n",
            r.scenario, r.target, c.slo, c.max_error_rate_pct
        ));
        table.set_header(vec![
            "step", "phase", "rate", "ok/s", "measured", "err %", "verdict",
        ]);
        for (i, s) in c.steps.iter().enumerate() {
            table.add_row(vec![
                (i + 1).to_string(),
                s.phase.clone(),
                format!("{:.1}", s.rate),
                fmt_rate(s.throughput),
                format!("{}", s.measured),
                format!("{:.2}", s.error_rate_pct),
                if s.generator_limited {
                    "generator-limited".into()
                } else if s.passed {
                    "PASS".into()
                } else {
                    "FAIL".into()
                },
            ]);
        }
        out.push_str(&table.to_string());
        out.push('\n');
        out.push_str(&format!(
            "capacity: {:.1} req/s max, {:.1} req/s sustainable ({:.0} % of it); {}; took \
             {:.0} s of a {:.0} s budget\n",
            c.max_rate,
            c.sustainable_rate,
            c.sustainable_fraction * 100.0,
            c.confidence,
            c.elapsed_s,
            c.budget_s
        ));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}
