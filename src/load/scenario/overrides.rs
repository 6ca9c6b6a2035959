//! What the command line changes in a scenario: the load flags, and the read share of a
//! mix. Errors are messages naming the flag; the caller makes them bad usage (exit 2).

use super::*;
use crate::load::bounds;

/// The load flags every load command shares; unset flags leave the scenario's values alone.
/// Their values are in range already (their parsers check `bounds`, as scenario files do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadFlags {
    pub rate: Option<f64>,
    pub max_in_flight: Option<u32>,
    pub concurrency: Option<u32>,
    pub warmup: Option<Duration>,
    /// `--stages`: the stages, and whether their targets were written as rates (`/s`).
    pub stages: Option<(Vec<Stage>, bool)>,
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
            if flags.stages.is_some() {
                return Err(not_here("--stages", "; load stages apply to mix scenarios"));
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
            self.stages.clear();
        }
        if let Some(c) = flags.concurrency {
            self.load = LoadModel::Closed {
                concurrency: Some(c),
            };
            self.stages.clear();
        }
        if let Some((stages, as_rates)) = &flags.stages {
            if self.kind != ScenarioKind::Mix {
                return Err(format!(
                    "--stages applies to mix scenarios; scenario {} is of kind {}",
                    self.name,
                    self.kind.name()
                ));
            }
            let open = *as_rates || matches!(self.load, LoadModel::Open { .. });
            let model = if open {
                StageModel::Open
            } else {
                StageModel::Closed
            };
            for (i, s) in stages.iter().enumerate() {
                check_target(model, s.target).map_err(|e| {
                    format!(
                        "--stages: stage {} target {} ({}): {e}",
                        i + 1,
                        s.target,
                        if open {
                            "a rate"
                        } else {
                            "workers; write 1000/s for a rate"
                        }
                    )
                })?;
            }
            let peak = stages.iter().map(|s| s.target).fold(0.0, f64::max);
            self.load = match self.load {
                LoadModel::Open { max_in_flight, .. } if open => LoadModel::Open {
                    rate_per_s: peak.max(bounds::RATE.min),
                    max_in_flight,
                },
                _ if open => LoadModel::Open {
                    rate_per_s: peak.max(bounds::RATE.min),
                    max_in_flight: None,
                },
                _ => LoadModel::Closed {
                    concurrency: Some((peak as u32).max(1)),
                },
            };
            self.stages = stages.clone();
            // The shape is the run's length.
            self.length = None;
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
