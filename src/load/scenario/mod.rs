//! Scenario files: TOML parsed into serde structs that reject unknown keys, then validated
//! into a typed `Scenario` plan. Every error names the file, the line and the key.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::bounds::{self, Count, Number, Span};
use super::duration::parse_duration;
use crate::results::names::{FLOW_EXECUTION, TOTALS};
pub use crate::results::targets::GateLimits;
use crate::results::targets::{Target, TargetError};

mod locate;
mod overrides;
mod raw;
mod stages;
#[cfg(test)]
mod tests;
mod validate;

pub use crate::load::pacer::Stage;
use locate::*;
pub use overrides::LoadFlags;
use raw::*;
pub use stages::{check_shape, check_target, parse_stages, StageModel};

/// What a scenario does with its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioKind {
    /// Operations picked at random in proportion to their weights.
    Mix,
    /// Each operation measured on its own, one after another.
    PerEndpoint,
    /// `load.concurrency` requests put in flight at once.
    Burst,
    /// The real-world simulation: executions with steps, logs and artifacts (`[flow]`).
    Flow,
}

impl ScenarioKind {
    pub const ALL: [ScenarioKind; 4] = [
        ScenarioKind::Mix,
        ScenarioKind::PerEndpoint,
        ScenarioKind::Burst,
        ScenarioKind::Flow,
    ];
    /// The names scenario files and results use, in the order of `ALL`.
    pub const NAMES: [&'static str; 4] = crate::results::names::SCENARIO_KINDS;

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The StepFlow operations the generator knows how to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Health,
    CreateExecution,
    GetExecution,
    ListExecutions,
    UpdateStatus,
    AddStep,
    UpdateStep,
    AppendLogs,
    GetLogs,
    AddArtifact,
    ListArtifacts,
}

impl OpKind {
    pub const ALL: [OpKind; 11] = [
        OpKind::Health,
        OpKind::CreateExecution,
        OpKind::GetExecution,
        OpKind::ListExecutions,
        OpKind::UpdateStatus,
        OpKind::AddStep,
        OpKind::UpdateStep,
        OpKind::AppendLogs,
        OpKind::GetLogs,
        OpKind::AddArtifact,
        OpKind::ListArtifacts,
    ];
    /// The names scenario files and results use, in the order of `ALL`.
    pub const NAMES: [&'static str; 11] = [
        "health",
        "create_execution",
        "get_execution",
        "list_executions",
        "update_status",
        "add_step",
        "update_step",
        "append_logs",
        "get_logs",
        "add_artifact",
        "list_artifacts",
    ];

    /// The name used in scenario files and results.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether it changes what the service stores (and so is read back afterwards).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpKind::CreateExecution
                | OpKind::UpdateStatus
                | OpKind::AddStep
                | OpKind::UpdateStep
                | OpKind::AppendLogs
                | OpKind::AddArtifact
        )
    }

    /// Whether it needs an execution to exist already (reads and updates of one).
    pub fn needs_execution(self) -> bool {
        !matches!(
            self,
            OpKind::Health | OpKind::ListExecutions | OpKind::CreateExecution
        )
    }
}

/// Deserializes an enum by the names in `names` (parallel to `all`), with serde's own
/// "unknown variant" message, so that the names are written once.
fn by_name<'de, D: Deserializer<'de>, T: Copy>(
    d: D,
    all: &[T],
    names: &'static [&'static str],
) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    names
        .iter()
        .position(|n| *n == s)
        .map(|i| all[i])
        .ok_or_else(|| de::Error::unknown_variant(&s, names))
}

impl<'de> Deserialize<'de> for OpKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        by_name(d, &OpKind::ALL, &OpKind::NAMES)
    }
}

impl<'de> Deserialize<'de> for ScenarioKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        by_name(d, &ScenarioKind::ALL, &ScenarioKind::NAMES)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long each measured phase of a run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Duration(Duration),
    /// Requests in total (mix) or per operation (per-endpoint).
    Requests(u64),
}

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadModel {
    /// Workers each send, await, record, repeat. `None`: the command's default concurrency.
    Closed { concurrency: Option<u32> },
    /// Requests sent on a fixed schedule, requests per second, optionally capped in flight.
    Open {
        rate_per_s: f64,
        max_in_flight: Option<u32>,
    },
}

/// Parameters of a built-in operation; each applies to one kind only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpParams {
    /// `list_executions`: page size, 1 to 1000.
    pub limit: Option<u32>,
    /// `append_logs`: lines per request, at least 1.
    pub lines: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationSpec {
    BuiltIn {
        kind: OpKind,
        params: OpParams,
    },
    /// A plain HTTP request, so any endpoint of any service can be loaded. Shared, so that
    /// each request sent does not copy it.
    Request(Arc<PlainRequest>),
}

impl OperationSpec {
    /// Whether it only reads: a built-in that writes nothing, or a GET or HEAD request.
    pub fn is_read(&self) -> bool {
        match self {
            OperationSpec::BuiltIn { kind, .. } => !kind.is_write(),
            OperationSpec::Request(r) => r.method == "GET" || r.method == "HEAD",
        }
    }

    /// Whether it is a built-in write (read back after the load).
    pub fn is_builtin_write(&self) -> bool {
        matches!(self, OperationSpec::BuiltIn { kind, .. } if kind.is_write())
    }
}

/// A plain request of a scenario file and what counts as its success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainRequest {
    /// Upper-case HTTP method.
    pub method: String,
    /// Path and query, starting with '/'.
    pub path: String,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Statuses that count as success (`expect_status`); empty: any 2xx.
    pub expect_status: Vec<u16>,
}

impl PlainRequest {
    /// Whether an answer with `status` is a success.
    pub fn accepts(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Unique within the scenario; results and targets use it.
    pub name: String,
    /// Relative share in a `mix`, at least 1.
    pub weight: u32,
    pub spec: OperationSpec,
}

/// The shape of the `flow` simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowPlan {
    /// Executions to create, at least 1.
    pub executions: u32,
    /// Steps per execution.
    pub steps: u32,
    /// Artifacts per execution.
    pub artifacts: u32,
    /// Log lines appended per step.
    pub log_lines: u32,
}

impl FlowPlan {
    /// Whether the whole flow stays within `bounds::FLOW_REQUESTS` requests.
    pub fn check_total(&self) -> Result<(), String> {
        bounds::check_flow_total(
            u64::from(self.executions),
            u64::from(self.steps),
            u64::from(self.artifacts),
            u64::from(self.log_lines),
        )
    }
}

/// A validated scenario: everything a run needs, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub kind: ScenarioKind,
    /// None: neither `duration` nor `requests` was set, and the command's default for the
    /// kind applies.
    pub length: Option<Length>,
    /// Time run before measuring; excluded from everything reported.
    pub warmup: Duration,
    /// Executions created before anything is measured, so reads find data.
    pub seed: u32,
    pub load: LoadModel,
    /// The load shape (`[[load.stages]]`), empty for a flat load. When set, `load` holds its
    /// peak (rate, or workers), and the shape sets the run's length, warm-up included.
    pub stages: Vec<Stage>,
    /// Non-empty for `mix` and `per_endpoint`; for `burst` a lone `create_execution` when the
    /// file lists none; empty for `flow`, whose operations are the built-in kinds it performs.
    pub operations: Vec<Operation>,
    /// Set exactly when `kind` is `flow`.
    pub flow: Option<FlowPlan>,
    /// In file order.
    pub targets: Vec<Target>,
    pub gate: GateLimits,
}

/// A scenario file that cannot be used, located as precisely as the problem allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file path (or other origin) the source came from.
    pub origin: String,
    /// 1-based line of the problem, when it has one.
    pub line: Option<usize>,
    /// The offending key as written, when there is one.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key \"{key}\"")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|err| ScenarioError {
            origin: origin.clone(),
            line: None,
            key: None,
            message: format!("could not read the scenario file: {err}"),
        })?;
        Scenario::from_toml_str(&src, &origin)
    }

    /// Parses and validates scenario TOML; `origin` names the source in errors.
    pub fn from_toml_str(src: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let ctx = Ctx { src, origin };
        let raw: RawScenario = toml::from_str(src).map_err(|err| ctx.toml_error(&err))?;
        ctx.validate(raw)
    }
}
