//! A shaped run's stages (planned against achieved) and the generator's evidence, as text
//! the table and markdown reports share.

use super::{fmt_latency_us, fmt_rate};
use crate::results::{Load, Results};

/// One line per stage: planned and achieved load, throughput, p50/p99 and errors.
pub fn stage_lines(r: &Results) -> Vec<String> {
    let Some(shape) = &r.shape else {
        return Vec::new();
    };
    let unit = match r.load {
        Load::Open { .. } => "req/s",
        Load::Closed { .. } => "workers",
    };
    let mut lines = vec![format!(
        "stages ({unit}): planned → achieved, then each stage's own figures"
    )];
    for s in &shape.stages {
        if s.duration_s == 0.0 {
            lines.push(format!(
                "  {:>2}. step {} → {}",
                s.stage,
                fmt_rate(s.from),
                fmt_rate(s.to)
            ));
            continue;
        }
        let l = &s.stats.latency_us;
        lines.push(format!(
            "  {:>2}. {:.1}s {} → {}: planned {} achieved {} · {} ok/s · p50 {} p99 {} · {:.2} % errors{}",
            s.stage,
            s.duration_s,
            fmt_rate(s.from),
            fmt_rate(s.to),
            fmt_rate(s.planned),
            fmt_rate(s.achieved),
            fmt_rate(s.stats.throughput),
            fmt_latency_us(l.p50),
            fmt_latency_us(l.p99),
            s.stats.error_rate(),
            if s.measured_s < s.duration_s {
                format!(" ({:.1}s of it measured)", s.measured_s)
            } else {
                String::new()
            }
        ));
    }
    lines
}

/// The generator's CPU, send lateness and Little's law, on one line.
pub fn generator_line(r: &Results) -> Option<String> {
    let g = r.generator.as_ref()?;
    let late = g.send_lateness_us.as_ref().map_or(String::new(), |l| {
        format!(
            ", sends late by p50 {} p99 {}",
            fmt_latency_us(l.p50),
            fmt_latency_us(l.p99)
        )
    });
    let ll = &g.littles_law;
    Some(format!(
        "generator: CPU {:.0} % of the machine (at most {:.0} %){late}; in flight {:.1} \
         (throughput × latency {:.1}, allowed {:.0}){}",
        g.cpu_pct,
        g.cpu_ceiling_pct,
        ll.in_flight,
        ll.expected,
        ll.allowed,
        if g.limited {
            " — LIMITED BY THE GENERATOR"
        } else {
            " — not the limit"
        }
    ))
}
