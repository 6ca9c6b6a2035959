//! Load shapes in scenarios and on the command line: `[[load.stages]]` tables and
//! `--stages 10s:1000,0s:5000,20s:5000`, checked against `bounds` into `Stage`s.

use super::*;
use crate::load::pacer::{Shape, Stage};

/// Which model a stage's targets are for: rates or workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageModel {
    Open,
    Closed,
}

/// One target checked for its model: rates from 0 to `STAGE_RATE.max`, workers whole
/// numbers from 0 to `STAGE_WORKERS.max`.
pub fn check_target(model: StageModel, target: f64) -> Result<f64, String> {
    match model {
        StageModel::Open => bounds::STAGE_RATE.check(target),
        StageModel::Closed => {
            if target.fract() != 0.0 || !target.is_finite() {
                return Err(format!(
                    "must be a whole number of workers {}, got {target}",
                    bounds::STAGE_WORKERS.describe()
                ));
            }
            bounds::STAGE_WORKERS.check(target as i64).map(|v| v as f64)
        }
    }
}

/// The checks on a whole shape: how many stages, its length, and that it sends anything.
pub fn check_shape(stages: &[Stage]) -> Result<(), String> {
    bounds::STAGES
        .check(stages.len() as i64)
        .map_err(|e| format!("the number of stages {e}"))?;
    let total: Duration = stages.iter().map(|s| s.duration).sum();
    bounds::DURATION
        .check(total)
        .map_err(|e| format!("the stages' total length {e}"))?;
    let shape = Shape::new(stages).ok_or("a stage's target is not usable")?;
    if shape.due_until(shape.duration()) <= 0.0 {
        return Err("every stage's target is 0: the shape offers no load".into());
    }
    Ok(())
}

/// Parses `--stages`: comma-separated `DURATION:TARGET` (`10s:1000`), a target ending in
/// `/s` being a rate (the open model), a bare one following the scenario's model. Returns
/// the stages and whether any target was written as a rate.
pub fn parse_stages(text: &str) -> Result<(Vec<Stage>, bool), String> {
    let mut stages = Vec::new();
    let mut rates = false;
    let mut bare = false;
    for (i, part) in text.split(',').enumerate() {
        let part = part.trim();
        let Some((d, t)) = part.split_once(':') else {
            return Err(format!(
                "stage {} {part:?} is not DURATION:TARGET, e.g. 10s:1000",
                i + 1
            ));
        };
        let duration = bounds::STAGE_DURATION
            .parse(d)
            .map_err(|e| format!("stage {} duration {d:?}: {e}", i + 1))?;
        let (t, is_rate) = match t.trim().strip_suffix("/s") {
            Some(rate) => (rate, true),
            None => (t.trim(), false),
        };
        rates |= is_rate;
        bare |= !is_rate;
        let target: f64 = t.parse().map_err(|_| {
            format!(
                "stage {} target {t:?} is not a number, e.g. 1000 or 1000/s",
                i + 1
            )
        })?;
        if !target.is_finite() || target < 0.0 {
            return Err(format!(
                "stage {} target {t}: must be 0 or more (a rate {} or workers {})",
                i + 1,
                bounds::STAGE_RATE.describe(),
                bounds::STAGE_WORKERS.describe()
            ));
        }
        stages.push(Stage { duration, target });
    }
    if rates && bare {
        return Err(
            "write every target as a rate (1000/s) or none: one shape is of one model".into(),
        );
    }
    check_shape(&stages)?;
    Ok((stages, rates))
}

impl Ctx<'_> {
    /// `[[load.stages]]` of a model, checked stage by stage.
    pub(super) fn validate_stages(
        &self,
        raw: Spanned<Vec<RawStage>>,
        model: StageModel,
    ) -> Result<Vec<Stage>, ScenarioError> {
        let span = raw.span();
        let mut stages = Vec::new();
        for s in raw.into_inner() {
            let duration = self.span(&s.duration, "duration", bounds::STAGE_DURATION)?;
            let target = check_target(model, *s.target.get_ref())
                .map_err(|m| self.at(s.target.span(), "target", m))?;
            stages.push(Stage { duration, target });
        }
        check_shape(&stages).map_err(|m| self.at(span, "stages", m))?;
        Ok(stages)
    }
}

impl Scenario {
    /// The scenario's load shape, if it has stages.
    pub fn shape(&self) -> Option<Shape> {
        Shape::new(&self.stages).filter(|_| !self.stages.is_empty())
    }

    /// Checks what the stages need of the rest of the run: a mix, no fixed length, and a
    /// warm-up shorter than the shape (it is the shape's first part).
    pub fn check_stages(&self) -> Result<(), String> {
        let Some(shape) = self.shape() else {
            return Ok(());
        };
        if self.kind != ScenarioKind::Mix {
            return Err(format!(
                "load stages apply to mix scenarios; scenario {} is of kind {}",
                self.name,
                self.kind.name()
            ));
        }
        if self.length.is_some() {
            return Err(format!(
                "scenario {}: the stages set the run's length ({:?}); drop --duration or \
                 --requests",
                self.name,
                shape.duration()
            ));
        }
        if self.warmup >= shape.duration() {
            return Err(format!(
                "scenario {}: the warm-up ({:?}) is the first part of the stages, which last \
                 {:?} in all; lengthen the stages or lower --warmup",
                self.name,
                self.warmup,
                shape.duration()
            ));
        }
        Ok(())
    }
}
