//! The live progress line on stderr: phase, rate, requests done, errors and p99 so far, and
//! the read-back's progress once the load is over.

use super::engine::{Control, Length};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

pub fn print_progress(control: &Control, last: (Instant, u64), length: &Length) -> (Instant, u64) {
    let now = Instant::now();
    let ops = control.live.ops.load(Ordering::Relaxed);
    let errors = control.live.errors.load(Ordering::Relaxed);
    let rate = (ops - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
    let p99_us = control.live.p99_us();
    let phase = control
        .phase
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some((since, executions)) = phase.verifying {
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2Kload done ({ops} requests, {errors} errors); integrity check: reading back \
             {executions} executions, {:.0}s",
            now.saturating_duration_since(since).as_secs_f64()
        );
        let _ = err.flush();
        return (now, ops);
    }
    let when = match (phase.warmup_until, phase.measure_start) {
        (Some(w), _) if now < w => format!("warm-up {:.0}s left", (w - now).as_secs_f64()),
        (_, Some(s)) => match length {
            Length::Duration(d) => format!(
                "{:>5.1}s / {:.0}s",
                now.saturating_duration_since(s).as_secs_f64(),
                d.as_secs_f64()
            ),
            Length::Requests(_) => {
                format!("{:>5.1}s", now.saturating_duration_since(s).as_secs_f64())
            }
        },
        _ => "setting up".to_string(),
    };
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r\x1b[2K{when}  {rate:>9.0} ops/s  {ops:>9} done  {errors} errors  p99 {:.2} ms",
        p99_us as f64 / 1000.0
    );
    let _ = err.flush();
    (now, ops)
}
