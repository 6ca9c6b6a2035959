//! What the command line changes in a scenario: the load flags, and the read share of a
//! mix. Errors are messages naming the flag; the caller makes them bad usage (exit 2).

use super::*;
use crate::load::bounds;

/// The load flags every load command shares; unset flags leave the scenario's values alone.
/// Their values are in range already (their parsers check `bounds`, as scenario files do).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadFlags {
    pub rate: Option<f64>,
    pub max_in_flight: Option<u32>,
    pub concurrency: Option<u32>,
    pub warmup: Option<Duration>,
}

impl Scenario {
    /// Applies the load flags; a flag the scenario's kind has no use for is refused.
    pub fn apply_flags(&mut self, flags: &LoadFlags) -> Result<(), String> {
        // A burst sends its requests at once and a flow runs whole executions: neither has
        // a send rate nor a warm-up.
        if matches!(self.kind, ScenarioKind::Burst | ScenarioKind::Flow) {
            let not_here = |flag: &str, instead: &str| {
                format!(
                    "{flag} does not apply to scenario {} (kind {}){instead}",
                    self.name,
                    self.kind.name()
                )
            };
            if flags.rate.is_some() {
                return Err(not_here("--rate", "; use --concurrency"));
            }
            if flags.warmup.is_some() {
                return Err(not_here(
                    "--warmup",
                    ": it has no warm-up, every request it sends is measured",
                ));
            }
        }
        if let Some(w) = flags.warmup {
            self.warmup = w;
        }
        if let Some(rate) = flags.rate {
            self.load = LoadModel::Open {
                rate_per_s: rate,
                max_in_flight: flags.max_in_flight,
            };
        }
        if let Some(c) = flags.concurrency {
            self.load = LoadModel::Closed {
                concurrency: Some(c),
            };
        }
        Ok(())
    }

    /// Rescales weights so reads make up `ratio` of the mix, keeping proportions within
    /// each side.
    pub fn set_read_ratio(&mut self, ratio: f64) -> Result<(), String> {
        bounds::READ_RATIO
            .check(ratio)
            .map_err(|e| format!("--read-ratio {e}"))?;
        let sum = |reads: bool| -> u64 {
            self.operations
                .iter()
                .filter(|o| o.spec.is_read() == reads)
                .map(|o| u64::from(o.weight))
                .sum()
        };
        let (reads, writes) = (sum(true), sum(false));
        if (ratio > 0.0 && reads == 0) || (ratio < 1.0 && writes == 0) {
            return Err(format!(
                "--read-ratio {ratio} needs both read and write operations in scenario {}",
                self.name
            ));
        }
        let scale = 10_000.0;
        self.operations.retain(|o| {
            let side = o.spec.is_read();
            !(side && ratio == 0.0 || !side && ratio == 1.0)
        });
        for o in &mut self.operations {
            let (side_sum, share) = if o.spec.is_read() {
                (reads, ratio)
            } else {
                (writes, 1.0 - ratio)
            };
            o.weight = ((f64::from(o.weight) / side_sum as f64) * share * scale)
                .round()
                .max(1.0) as u32;
        }
        Ok(())
    }
}
