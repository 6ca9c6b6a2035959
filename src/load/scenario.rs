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

/// What a scenario does with its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// The StepFlow operations the generator knows how to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
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

    /// The name used in scenario files and results.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Health => "health",
            OpKind::CreateExecution => "create_execution",
            OpKind::GetExecution => "get_execution",
            OpKind::ListExecutions => "list_executions",
            OpKind::UpdateStatus => "update_status",
            OpKind::AddStep => "add_step",
            OpKind::UpdateStep => "update_step",
            OpKind::AppendLogs => "append_logs",
            OpKind::GetLogs => "get_logs",
            OpKind::AddArtifact => "add_artifact",
            OpKind::ListArtifacts => "list_artifacts",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLength {
    /// Neither `duration` nor `requests` was set: the command's default for the kind applies.
    KindDefault,
    /// Measured time after warm-up.
    Duration(Duration),
    /// Requests per operation (count mode, for `per_endpoint`).
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
    pub length: RunLength,
    /// Time run before measuring; excluded from everything reported.
    pub warmup: Duration,
    /// Executions created before anything is measured, so reads find data.
    pub seed: u32,
    pub load: LoadModel,
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

// ---- raw file shape ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    description: Option<String>,
    duration: Option<Spanned<DurationValue>>,
    requests: Option<Spanned<i64>>,
    warmup: Option<Spanned<DurationValue>>,
    seed: Option<Spanned<i64>>,
    kind: Option<Spanned<ScenarioKind>>,
    load: Option<RawLoad>,
    #[serde(default)]
    operations: Vec<RawOperation>,
    flow: Option<Spanned<RawFlow>>,
    #[serde(default)]
    targets: BTreeMap<Spanned<String>, Spanned<String>>,
    gate: Option<RawGate>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum ModelName {
    Closed,
    Open,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    model: Option<Spanned<ModelName>>,
    concurrency: Option<Spanned<i64>>,
    rate: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    name: Spanned<String>,
    kind: Option<Spanned<OpKind>>,
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    body: Option<Spanned<String>>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
    expect_status: Option<Spanned<Vec<Spanned<i64>>>>,
    weight: Option<Spanned<i64>>,
    limit: Option<Spanned<i64>>,
    lines: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    executions: Spanned<i64>,
    steps: Spanned<i64>,
    artifacts: Spanned<i64>,
    log_lines: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    p50: Option<Spanned<f64>>,
    p90: Option<Spanned<f64>>,
    p99: Option<Spanned<f64>>,
    throughput: Option<Spanned<f64>>,
    error_rate: Option<Spanned<f64>>,
}

/// A duration written as a string ("30s") or a bare number of seconds.
struct DurationValue(Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"500ms\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurationValue, E> {
                parse_duration(s).map(DurationValue).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
                self.visit_str(&v.to_string())
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

fn both_kinds_of_operation(name: &str) -> String {
    format!(
        "operation \"{name}\" has `kind`, so it is built in: drop `method` and `path`, or drop \
         `kind` to send a plain request"
    )
}

// ---- validation --------------------------------------------------------------------------

struct Ctx<'a> {
    src: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn line_at(&self, offset: usize) -> usize {
        let offset = offset.min(self.src.len());
        self.src.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&self, line: Option<usize>, key: Option<&str>, message: String) -> ScenarioError {
        ScenarioError {
            origin: self.origin.to_string(),
            line,
            key: key.map(str::to_string),
            message,
        }
    }

    fn at(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ScenarioError {
        self.error(Some(self.line_at(span.start)), Some(key), message.into())
    }

    /// A whole number of the file checked against its bound (`bounds`).
    fn count(&self, value: &Spanned<i64>, key: &str, bound: Count) -> Result<u64, ScenarioError> {
        bound
            .check(*value.get_ref())
            .map_err(|message| self.at(value.span(), key, message))
    }

    /// `count` for keys held as u32 (every bound that fits one).
    fn count_u32(
        &self,
        value: &Spanned<i64>,
        key: &str,
        bound: Count,
    ) -> Result<u32, ScenarioError> {
        self.count(value, key, bound)
            .map(|v| u32::try_from(v).expect("the bound fits u32"))
    }

    fn number(&self, value: &Spanned<f64>, key: &str, bound: Number) -> Result<f64, ScenarioError> {
        bound
            .check(*value.get_ref())
            .map_err(|message| self.at(value.span(), key, message))
    }

    fn span(
        &self,
        value: &Spanned<DurationValue>,
        key: &str,
        bound: Span,
    ) -> Result<Duration, ScenarioError> {
        bound
            .check(value.get_ref().0)
            .map_err(|message| self.at(value.span(), key, message))
    }

    /// For problems with no span at hand: the first line where `key` is defined, either as
    /// `key = ...` or as a `[key]` table header.
    fn at_key(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        let line = self.src.lines().position(|l| {
            let l = l.trim_start();
            let header = l.trim_start_matches('[').trim_end().trim_end_matches(']');
            l.starts_with('[') && header.trim() == key
                || l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        self.error(line.map(|i| i + 1), Some(key), message.into())
    }

    fn toml_error(&self, err: &toml::de::Error) -> ScenarioError {
        let mut message = err.message().to_string();
        // serde names the key itself in these messages; move it to the key position.
        let named = ["unknown field `", "missing field `", "duplicate key `"]
            .iter()
            .find_map(|prefix| {
                let rest = message.strip_prefix(prefix)?;
                Some(rest[..rest.find('`')?].to_string())
            });
        let key = match &named {
            Some(key) if message.starts_with("missing field") => {
                message = "is required but missing".to_string();
                Some(key.clone())
            }
            Some(key) => {
                message = message.replacen(&format!(" `{key}`"), "", 1);
                Some(key.clone())
            }
            None => err.span().and_then(|span| self.key_before(span.start)),
        };
        let line = err.span().map(|span| self.line_at(span.start));
        self.error(line, key.as_deref(), message)
    }

    /// The key of `key = <value at offset>` on the value's line, if the text has that shape.
    fn key_before(&self, offset: usize) -> Option<String> {
        let head = self.src.get(..offset)?;
        let line_start = head.rfind('\n').map_or(0, |i| i + 1);
        let mut before = head[line_start..].trim_end();
        // A value inside an array on the key's line: `key = [200, "x"`.
        if let Some(eq) = before.rfind('=') {
            if before[eq + 1..].trim_start().starts_with('[') {
                before = &before[..=eq];
            }
        }
        let before = before.strip_suffix('=')?.trim_end();
        if let Some(quoted) = before.strip_suffix('"') {
            let open = quoted.rfind('"')?;
            return Some(quoted[open + 1..].to_string());
        }
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c)))
            .map_or(0, |i| i + 1);
        let key = &before[start..];
        (!key.is_empty()).then(|| key.to_string())
    }

    fn validate(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        if raw.name.get_ref().trim().is_empty() {
            return Err(self.at(raw.name.span(), "name", "must not be empty"));
        }
        let kind = raw
            .kind
            .as_ref()
            .map_or(ScenarioKind::Mix, |k| *k.get_ref());

        let length = match (&raw.duration, &raw.requests) {
            (Some(_), Some(requests)) => {
                return Err(self.at(
                    requests.span(),
                    "requests",
                    "set either `duration` or `requests`, not both",
                ))
            }
            (Some(duration), None) => {
                RunLength::Duration(self.span(duration, "duration", bounds::DURATION)?)
            }
            (None, Some(requests)) => {
                let n = self.count(requests, "requests", bounds::REQUESTS)?;
                if matches!(kind, ScenarioKind::Burst | ScenarioKind::Flow) {
                    return Err(self.at(
                        requests.span(),
                        "requests",
                        "applies to `mix` and `per_endpoint` scenarios only: a burst sends \
                         `load.concurrency` requests and a flow runs `flow.executions`",
                    ));
                }
                RunLength::Requests(n)
            }
            (None, None) => RunLength::KindDefault,
        };

        let warmup = match &raw.warmup {
            Some(w) => self.span(w, "warmup", bounds::WARMUP)?,
            None => Duration::ZERO,
        };
        let seed = match &raw.seed {
            Some(n) => self.count_u32(n, "seed", bounds::SEED)?,
            None => 0,
        };
        let load = self.validate_load(raw.load, kind)?;

        let mut operations = Vec::with_capacity(raw.operations.len());
        let mut seen = HashSet::new();
        for raw_op in raw.operations {
            let (op, name_span) = self.validate_operation(raw_op)?;
            if !seen.insert(op.name.clone()) {
                let message = format!("operation name \"{}\" is used twice", op.name);
                return Err(self.at(name_span, "name", message));
            }
            operations.push(op);
        }

        let flow = match (kind, raw.flow) {
            (ScenarioKind::Flow, None) => {
                return Err(self.at_key("kind", "a `flow` scenario needs a [flow] table"))
            }
            (ScenarioKind::Flow, Some(flow)) => {
                let span = flow.span();
                let flow = flow.into_inner();
                let plan = FlowPlan {
                    executions: self.count_u32(
                        &flow.executions,
                        "executions",
                        bounds::FLOW_EXECUTIONS,
                    )?,
                    steps: self.count_u32(&flow.steps, "steps", bounds::FLOW_STEPS)?,
                    artifacts: self.count_u32(
                        &flow.artifacts,
                        "artifacts",
                        bounds::FLOW_ARTIFACTS,
                    )?,
                    log_lines: self.count_u32(
                        &flow.log_lines,
                        "log_lines",
                        bounds::FLOW_LOG_LINES,
                    )?,
                };
                plan.check_total()
                    .map_err(|message| self.at(span, "flow", message))?;
                if !operations.is_empty() {
                    return Err(self.at_key(
                        "operations",
                        "a `flow` scenario performs the built-in operations itself; \
                         remove [[operations]]",
                    ));
                }
                Some(plan)
            }
            (_, Some(_)) => {
                return Err(self.at_key("flow", "[flow] applies only to kind = \"flow\""))
            }
            (_, None) => None,
        };
        match kind {
            ScenarioKind::Mix | ScenarioKind::PerEndpoint if operations.is_empty() => {
                return Err(self.error(
                    None,
                    Some("operations"),
                    "at least one [[operations]] entry is needed".to_string(),
                ));
            }
            ScenarioKind::Burst if operations.is_empty() => operations.push(Operation {
                name: OpKind::CreateExecution.name().to_string(),
                weight: 1,
                spec: OperationSpec::BuiltIn {
                    kind: OpKind::CreateExecution,
                    params: OpParams::default(),
                },
            }),
            _ => {}
        }

        let targets = self.validate_targets(raw.targets, kind, &operations)?;
        let gate = raw
            .gate
            .map(|g| self.validate_gate(g))
            .transpose()?
            .unwrap_or_default();

        Ok(Scenario {
            name: raw.name.into_inner(),
            description: raw.description,
            kind,
            length,
            warmup,
            seed,
            load,
            operations,
            flow,
            targets,
            gate,
        })
    }

    fn validate_load(
        &self,
        raw: Option<RawLoad>,
        kind: ScenarioKind,
    ) -> Result<LoadModel, ScenarioError> {
        let Some(raw) = raw else {
            return Ok(LoadModel::Closed { concurrency: None });
        };
        let concurrency = raw
            .concurrency
            .as_ref()
            .map(|c| self.count_u32(c, "concurrency", bounds::CONCURRENCY))
            .transpose()?;
        let model = raw
            .model
            .as_ref()
            .map_or(ModelName::Closed, |m| *m.get_ref());
        match (model, raw.rate) {
            (ModelName::Closed, Some(rate)) => Err(self.at(
                rate.span(),
                "rate",
                "applies only to model = \"open\"; the closed model is paced by `concurrency`",
            )),
            (ModelName::Closed, None) => Ok(LoadModel::Closed { concurrency }),
            (ModelName::Open, None) => {
                let span = raw.model.map(|m| m.span()).unwrap_or_default();
                Err(self.at(
                    span,
                    "rate",
                    "model = \"open\" needs `rate`, requests per second",
                ))
            }
            (ModelName::Open, Some(rate)) => {
                let rate_per_s = self.number(&rate, "rate", bounds::RATE)?;
                if kind == ScenarioKind::Burst {
                    let span = raw.model.map(|m| m.span()).unwrap_or_default();
                    return Err(self.at(
                        span,
                        "model",
                        "a burst puts `concurrency` requests in flight at once; \
                         use model = \"closed\"",
                    ));
                }
                Ok(LoadModel::Open {
                    rate_per_s,
                    max_in_flight: concurrency,
                })
            }
        }
    }

    /// The operation and the span of its name, for duplicate reporting.
    fn validate_operation(
        &self,
        raw: RawOperation,
    ) -> Result<(Operation, Range<usize>), ScenarioError> {
        let name_span = raw.name.span();
        let name = raw.name.into_inner();
        if name.trim().is_empty() {
            return Err(self.at(name_span, "name", "must not be empty"));
        }
        if name == TOTALS || name.contains('.') {
            // Target keys are "<operation>.<figure>", with "totals" for all operations.
            let message = format!("\"{name}\" is reserved or contains '.'; choose another name");
            return Err(self.at(name_span, "name", message));
        }
        let weight = match &raw.weight {
            Some(w) => self.count_u32(w, "weight", bounds::WEIGHT)?,
            None => 1,
        };

        const REQUEST_ONLY: &str = "applies only to plain requests (`method` + `path`)";
        const BUILT_IN_ONLY: &str = "applies only to built-in operations (`kind`)";
        let spec = match (raw.kind, raw.method, raw.path) {
            (Some(_), Some(method), _) => {
                return Err(self.at(method.span(), "method", both_kinds_of_operation(&name)))
            }
            (Some(_), None, Some(path)) => {
                return Err(self.at(path.span(), "path", both_kinds_of_operation(&name)))
            }
            (None, None, None) => {
                let message = format!(
                    "operation \"{name}\" needs `kind` (built in) or `method` and `path` \
                     (plain request)"
                );
                return Err(self.at(name_span, "name", message));
            }
            (None, Some(method), None) => {
                let message = format!("operation \"{name}\" has `method` but no `path`");
                return Err(self.at(method.span(), "method", message));
            }
            (None, None, Some(path)) => {
                let message = format!("operation \"{name}\" has `path` but no `method`");
                return Err(self.at(path.span(), "path", message));
            }
            (Some(kind), None, None) => {
                if let Some(body) = &raw.body {
                    return Err(self.at(body.span(), "body", REQUEST_ONLY));
                }
                if let Some(headers) = &raw.headers {
                    return Err(self.at(headers.span(), "headers", REQUEST_ONLY));
                }
                if let Some(expect) = &raw.expect_status {
                    return Err(self.at(expect.span(), "expect_status", REQUEST_ONLY));
                }
                let kind = kind.into_inner();
                let params = self.validate_params(kind, raw.limit, raw.lines)?;
                OperationSpec::BuiltIn { kind, params }
            }
            (None, Some(method), Some(path)) => {
                for (key, param) in [("limit", &raw.limit), ("lines", &raw.lines)] {
                    if let Some(param) = param {
                        return Err(self.at(param.span(), key, BUILT_IN_ONLY));
                    }
                }
                self.validate_request(method, path, raw.body, raw.headers, raw.expect_status)?
            }
        };
        Ok((Operation { name, weight, spec }, name_span))
    }

    fn validate_params(
        &self,
        kind: OpKind,
        limit: Option<Spanned<i64>>,
        lines: Option<Spanned<i64>>,
    ) -> Result<OpParams, ScenarioError> {
        let mut params = OpParams::default();
        if let Some(limit) = limit {
            if kind != OpKind::ListExecutions {
                return Err(self.at(
                    limit.span(),
                    "limit",
                    "applies only to kind = \"list_executions\"",
                ));
            }
            params.limit = Some(self.count_u32(&limit, "limit", bounds::LIST_LIMIT)?);
        }
        if let Some(lines) = lines {
            if kind != OpKind::AppendLogs {
                return Err(self.at(
                    lines.span(),
                    "lines",
                    "applies only to kind = \"append_logs\"",
                ));
            }
            params.lines = Some(self.count_u32(&lines, "lines", bounds::LOG_LINES)?);
        }
        Ok(params)
    }

    fn validate_request(
        &self,
        method: Spanned<String>,
        path: Spanned<String>,
        body: Option<Spanned<String>>,
        headers: Option<Spanned<BTreeMap<String, String>>>,
        expect_status: Option<Spanned<Vec<Spanned<i64>>>>,
    ) -> Result<OperationSpec, ScenarioError> {
        let m = method.get_ref();
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(self.at(
                method.span(),
                "method",
                format!("\"{m}\" is not an HTTP method such as GET or POST"),
            ));
        }
        if !path.get_ref().starts_with('/') {
            return Err(self.at(
                path.span(),
                "path",
                "must start with '/', e.g. \"/api/health\"",
            ));
        }
        let mut header_list = Vec::new();
        if let Some(headers) = headers {
            let span = headers.span();
            for (name, value) in headers.into_inner() {
                let bad_name =
                    name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                if bad_name || value.contains(['\r', '\n']) {
                    return Err(self.at(
                        span.clone(),
                        "headers",
                        format!("header \"{name}\" is not a valid HTTP header"),
                    ));
                }
                header_list.push((name, value));
            }
        }
        let mut expected = Vec::new();
        if let Some(list) = expect_status {
            if list.get_ref().is_empty() {
                return Err(self.at(
                    list.span(),
                    "expect_status",
                    "must list at least one status, e.g. [200, 204]; leave it out to accept \
                     any 2xx",
                ));
            }
            for status in list.into_inner() {
                let value = *status.get_ref();
                match u16::try_from(value) {
                    Ok(code) if (100..=599).contains(&code) => expected.push(code),
                    _ => {
                        return Err(self.at(
                            status.span(),
                            "expect_status",
                            format!("{value} is not an HTTP status (100 to 599)"),
                        ))
                    }
                }
            }
        }
        Ok(OperationSpec::Request(Arc::new(PlainRequest {
            method: method.into_inner().to_ascii_uppercase(),
            path: path.into_inner(),
            body: body.map(Spanned::into_inner),
            headers: header_list,
            expect_status: expected,
        })))
    }

    fn validate_targets(
        &self,
        raw: BTreeMap<Spanned<String>, Spanned<String>>,
        kind: ScenarioKind,
        operations: &[Operation],
    ) -> Result<Vec<Target>, ScenarioError> {
        let mut entries: Vec<_> = raw.into_iter().collect();
        // A BTreeMap sorts by key; reports should list targets in the order they were written.
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut targets = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let target = Target::parse(key.get_ref(), value.get_ref()).map_err(|err| {
                let span = match err {
                    TargetError::Metric { .. } => key.span(),
                    _ => value.span(),
                };
                self.at(span, key.get_ref(), err.to_string())
            })?;
            // A flow's operations are the built-in kinds it performs, named after the kind,
            // plus `execution`, one whole simulated execution end to end.
            let flow_op = |name: &str| {
                kind == ScenarioKind::Flow
                    && (name == FLOW_EXECUTION || OpKind::ALL.iter().any(|k| k.name() == name))
            };
            let known = target.subject == TOTALS
                || operations.iter().any(|op| op.name == target.subject)
                || flow_op(&target.subject);
            if !known {
                let mut names: Vec<&str> = vec![TOTALS];
                names.extend(operations.iter().map(|op| op.name.as_str()));
                if kind == ScenarioKind::Flow {
                    names.push(FLOW_EXECUTION);
                    names.extend(OpKind::ALL.iter().map(|k| k.name()));
                }
                return Err(self.at(
                    key.span(),
                    key.get_ref(),
                    format!(
                        "no operation is named \"{}\"; expected one of: {}",
                        target.subject,
                        names.join(", ")
                    ),
                ));
            }
            targets.push(target);
        }
        Ok(targets)
    }

    fn validate_gate(&self, raw: RawGate) -> Result<GateLimits, ScenarioError> {
        // The sign is free (`throughput = -10` is a 10 % drop, as `10` is); the size is not.
        let check = |value: Option<Spanned<f64>>, key: &str, bound: Number| match value {
            Some(v) => bound
                .check(v.get_ref().abs())
                .map(|_| Some(*v.get_ref()))
                .map_err(|message| self.at(v.span(), key, message)),
            None => Ok(None),
        };
        Ok(GateLimits {
            p50: check(raw.p50, "p50", bounds::GATE_PERCENT)?,
            p90: check(raw.p90, "p90", bounds::GATE_PERCENT)?,
            p99: check(raw.p99, "p99", bounds::GATE_PERCENT)?,
            throughput: check(raw.throughput, "throughput", bounds::GATE_PERCENT)?,
            error_rate: check(raw.error_rate, "error_rate", bounds::GATE_ERROR_RATE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::targets::{Figure, Relation, Unit};

    const FULL: &str = r#"name = "stress"
description = "mixed read/write"
duration = "30s"
warmup = "2s"
kind = "mix"

[load]
model = "open"
concurrency = 64
rate = 5000

[[operations]]
name = "get_execution"
kind = "get_execution"
weight = 30

[[operations]]
name = "list"
kind = "list_executions"
limit = 10

[[operations]]
name = "health"
method = "get"
path = "/api/health"
body = '{"x": 1}'
headers = { "X-Trace" = "1" }
expect_status = [200, 204]
weight = 5

[targets]
"totals.throughput" = ">= 1000/s"
"get_execution.p99" = "< 5ms"

[gate]
throughput = -10.0
p99 = 20.0
"#;

    #[test]
    fn full_file_parses_to_the_expected_plan() {
        let scenario = Scenario::from_toml_str(FULL, "full.toml").unwrap();
        let expected = Scenario {
            name: "stress".into(),
            description: Some("mixed read/write".into()),
            kind: ScenarioKind::Mix,
            length: RunLength::Duration(Duration::from_secs(30)),
            warmup: Duration::from_secs(2),
            seed: 0,
            load: LoadModel::Open {
                rate_per_s: 5000.0,
                max_in_flight: Some(64),
            },
            operations: vec![
                Operation {
                    name: "get_execution".into(),
                    weight: 30,
                    spec: OperationSpec::BuiltIn {
                        kind: OpKind::GetExecution,
                        params: OpParams::default(),
                    },
                },
                Operation {
                    name: "list".into(),
                    weight: 1,
                    spec: OperationSpec::BuiltIn {
                        kind: OpKind::ListExecutions,
                        params: OpParams {
                            limit: Some(10),
                            lines: None,
                        },
                    },
                },
                Operation {
                    name: "health".into(),
                    weight: 5,
                    spec: OperationSpec::Request(Arc::new(PlainRequest {
                        method: "GET".into(),
                        path: "/api/health".into(),
                        body: Some(r#"{"x": 1}"#.into()),
                        headers: vec![("X-Trace".into(), "1".into())],
                        expect_status: vec![200, 204],
                    })),
                },
            ],
            flow: None,
            targets: vec![
                Target {
                    subject: "totals".into(),
                    figure: Figure::Throughput,
                    cmp: Relation::GreaterOrEqual,
                    value: 1000.0,
                    unit: Unit::PerSecond,
                },
                Target {
                    subject: "get_execution".into(),
                    figure: Figure::P99,
                    cmp: Relation::Less,
                    value: 5000.0,
                    unit: Unit::Millis,
                },
            ],
            gate: GateLimits {
                throughput: Some(-10.0),
                p99: Some(20.0),
                ..GateLimits::default()
            },
        };
        assert_eq!(scenario, expected);
    }

    #[test]
    fn small_files_get_documented_defaults() {
        let minimal = "name = \"m\"\n[[operations]]\nname = \"h\"\nkind = \"health\"\n";
        // (name, source, check)
        type Check = fn(&Scenario) -> bool;
        let cases: [(&str, String, Check); 7] = [
            ("minimal", minimal.to_string(), |s| {
                s.kind == ScenarioKind::Mix
                    && s.length == RunLength::KindDefault
                    && s.warmup == Duration::ZERO
                    && s.load == LoadModel::Closed { concurrency: None }
                    && s.operations[0].weight == 1
                    && s.targets.is_empty()
                    && s.gate == GateLimits::default()
            }),
            (
                "duration as bare number",
                format!("duration = 30\n{minimal}"),
                |s| s.length == RunLength::Duration(Duration::from_secs(30)),
            ),
            (
                "duration as bare string",
                format!("duration = \"45\"\n{minimal}"),
                |s| s.length == RunLength::Duration(Duration::from_secs(45)),
            ),
            (
                "requests count mode",
                format!("requests = 10\n{minimal}"),
                |s| s.length == RunLength::Requests(10),
            ),
            (
                "closed with concurrency",
                format!("{minimal}[load]\nconcurrency = 8\n"),
                |s| {
                    s.load
                        == LoadModel::Closed {
                            concurrency: Some(8),
                        }
                },
            ),
            (
                "burst defaults to create_execution",
                "name = \"b\"\nkind = \"burst\"\n[load]\nconcurrency = 20\n\
                 [targets]\n\"create_execution.max\" = \"< 2s\"\n"
                    .to_string(),
                |s| {
                    s.operations.len() == 1
                        && s.operations[0].name == "create_execution"
                        && s.targets.len() == 1
                },
            ),
            (
                "flow targets name built-in kinds",
                "name = \"f\"\nkind = \"flow\"\n[flow]\nexecutions = 121\nsteps = 4\n\
                 artifacts = 2\nlog_lines = 5\n[targets]\n\"append_logs.p99\" = \"< 5ms\"\n"
                    .to_string(),
                |s| {
                    s.flow
                        == Some(FlowPlan {
                            executions: 121,
                            steps: 4,
                            artifacts: 2,
                            log_lines: 5,
                        })
                        && s.operations.is_empty()
                        && s.targets[0].subject == "append_logs"
                },
            ),
        ];
        for (name, src, check) in cases {
            let scenario =
                Scenario::from_toml_str(&src, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(check(&scenario), "{name}: {scenario:#?}");
        }
    }

    /// Builds a file whose line 1 is `name`, followed by `rest`.
    fn file(rest: &str) -> String {
        format!("name = \"t\"\n{rest}")
    }

    const OP: &str = "[[operations]]\nname = \"a\"\nkind = \"health\"\n";
    const REQ: &str = "[[operations]]\nname = \"a\"\nmethod = \"GET\"\npath = \"/\"\n";

    #[test]
    fn bad_files_name_line_and_key() {
        // (case, source, line, key, fragment of the message)
        let cases = [
            (
                "unknown key in [load]",
                file(&format!("{OP}[load]\nconcurency = 32\n")),
                Some(6),
                Some("concurency"),
                "unknown field, expected one of `model`, `concurrency`, `rate`",
            ),
            (
                "unknown top-level key",
                file(&format!("durration = \"3s\"\n{OP}")),
                Some(2),
                Some("durration"),
                "unknown field",
            ),
            (
                "unknown key in an operation",
                file(&format!("{OP}wieght = 3\n")),
                Some(5),
                Some("wieght"),
                "unknown field",
            ),
            (
                "bad duration",
                file(&format!("warmup = \"1s\"\nduration = \"10x\"\n{OP}")),
                Some(3),
                Some("duration"),
                "invalid duration \"10x\"",
            ),
            (
                "zero duration",
                file(&format!("duration = \"0s\"\n{OP}")),
                Some(2),
                Some("duration"),
                "must be more than 0",
            ),
            (
                "bad warmup",
                file(&format!("warmup = \"-1\"\n{OP}")),
                Some(2),
                Some("warmup"),
                "a bare number is seconds",
            ),
            (
                "open without rate",
                file(&format!("{OP}[load]\nmodel = \"open\"\n")),
                Some(6),
                Some("rate"),
                "needs `rate`",
            ),
            (
                "closed with rate",
                file(&format!("{OP}[load]\nconcurrency = 4\nrate = 100\n")),
                Some(7),
                Some("rate"),
                "applies only to model = \"open\"",
            ),
            (
                "open with zero rate",
                file(&format!("{OP}[load]\nmodel = \"open\"\nrate = 0\n")),
                Some(7),
                Some("rate"),
                "must be from 0.001 to 10,000,000 requests per second, got 0",
            ),
            (
                "zero concurrency",
                file(&format!("{OP}[load]\nconcurrency = 0\n")),
                Some(6),
                Some("concurrency"),
                "must be from 1 to 100,000, got 0",
            ),
            (
                "unknown model",
                file(&format!("{OP}[load]\nmodel = \"poisson\"\n")),
                Some(6),
                Some("model"),
                "unknown variant `poisson`",
            ),
            (
                "duplicate operation names",
                file(&format!("{OP}{OP}")),
                Some(6),
                Some("name"),
                "\"a\" is used twice",
            ),
            (
                "target naming an unknown operation",
                file(&format!("{OP}[targets]\n\"nope.p99\" = \"< 5ms\"\n")),
                Some(6),
                Some("nope.p99"),
                "no operation is named \"nope\"; expected one of: totals, a",
            ),
            (
                "target with an unknown figure",
                file(&format!("{OP}[targets]\n\"a.p42\" = \"< 5ms\"\n")),
                Some(6),
                Some("a.p42"),
                "unknown figure",
            ),
            (
                "target with a mismatched unit",
                file(&format!("{OP}[targets]\n\"a.p99\" = \">= 10/s\"\n")),
                Some(6),
                Some("a.p99"),
                "does not fit p99",
            ),
            (
                "operation with kind and method",
                file("[[operations]]\nname = \"a\"\nkind = \"health\"\nmethod = \"GET\"\n"),
                Some(5),
                Some("method"),
                "has `kind`, so it is built in",
            ),
            (
                "operation with neither kind nor request",
                file("[[operations]]\nname = \"a\"\nweight = 2\n"),
                Some(3),
                Some("name"),
                "needs `kind`",
            ),
            (
                "method without path",
                file("[[operations]]\nname = \"a\"\nmethod = \"GET\"\n"),
                Some(4),
                Some("method"),
                "no `path`",
            ),
            (
                "path without a leading slash",
                file("[[operations]]\nname = \"a\"\nmethod = \"GET\"\npath = \"api\"\n"),
                Some(5),
                Some("path"),
                "must start with '/'",
            ),
            (
                "expect_status empty",
                file(&format!("{REQ}expect_status = []\n")),
                Some(6),
                Some("expect_status"),
                "at least one status",
            ),
            (
                "expect_status past 599",
                file(&format!("{REQ}expect_status = [200, 600]\n")),
                Some(6),
                Some("expect_status"),
                "600 is not an HTTP status (100 to 599)",
            ),
            (
                "expect_status below 100",
                file(&format!("{REQ}expect_status = [\n  99,\n]\n")),
                Some(7),
                Some("expect_status"),
                "99 is not an HTTP status",
            ),
            (
                "expect_status negative",
                file(&format!("{REQ}expect_status = [-1]\n")),
                Some(6),
                Some("expect_status"),
                "-1 is not an HTTP status",
            ),
            (
                "expect_status as a string",
                file(&format!("{REQ}expect_status = [\"200\"]\n")),
                Some(6),
                Some("expect_status"),
                "invalid type",
            ),
            (
                "expect_status on a built-in",
                file(&format!("{OP}expect_status = [200]\n")),
                Some(5),
                Some("expect_status"),
                "plain requests",
            ),
            (
                "weight zero",
                file(&format!("{OP}weight = 0\n")),
                Some(5),
                Some("weight"),
                "must be from 1 to 1,000,000, got 0",
            ),
            (
                "negative weight",
                file(&format!("{OP}weight = -1\n")),
                Some(5),
                Some("weight"),
                "must be from 1 to 1,000,000, got -1",
            ),
            (
                "unknown operation kind",
                file("[[operations]]\nname = \"a\"\nkind = \"delete_everything\"\n"),
                Some(4),
                Some("kind"),
                "unknown variant `delete_everything`",
            ),
            (
                "limit on the wrong kind",
                file(&format!("{OP}limit = 10\n")),
                Some(5),
                Some("limit"),
                "list_executions",
            ),
            (
                "body on a built-in",
                file(&format!("{OP}body = \"{{}}\"\n")),
                Some(5),
                Some("body"),
                "plain requests",
            ),
            (
                "operation named totals",
                file("[[operations]]\nname = \"totals\"\nkind = \"health\"\n"),
                Some(3),
                Some("name"),
                "reserved",
            ),
            (
                "duration and requests",
                file(&format!("duration = \"1s\"\nrequests = 5\n{OP}")),
                Some(3),
                Some("requests"),
                "not both",
            ),
            (
                "requests on a burst",
                file("kind = \"burst\"\nrequests = 5\n"),
                Some(3),
                Some("requests"),
                "mix",
            ),
            (
                "burst on the open model",
                file("kind = \"burst\"\n[load]\nmodel = \"open\"\nrate = 5\n"),
                Some(4),
                Some("model"),
                "closed",
            ),
            (
                "unknown scenario kind",
                file(&format!("kind = \"soak\"\n{OP}")),
                Some(2),
                Some("kind"),
                "unknown variant `soak`",
            ),
            (
                "flow without [flow]",
                file("kind = \"flow\"\n"),
                Some(2),
                Some("kind"),
                "needs a [flow] table",
            ),
            (
                "[flow] on a mix",
                file(&format!(
                    "{OP}[flow]\nexecutions = 1\nsteps = 1\nartifacts = 0\nlog_lines = 0\n"
                )),
                Some(5),
                Some("flow"),
                "only to kind = \"flow\"",
            ),
            (
                "unknown key in [flow]",
                file("kind = \"flow\"\n[flow]\nexecutions = 1\nstep = 1\n"),
                Some(5),
                Some("step"),
                "unknown field",
            ),
            (
                "non-finite gate limit",
                file(&format!("{OP}[gate]\np99 = nan\n")),
                Some(6),
                Some("p99"),
                "must be more than 0 and at most 1,000 percent, got NaN",
            ),
            (
                "unknown gate figure",
                file(&format!("{OP}[gate]\np98 = 10.0\n")),
                Some(6),
                Some("p98"),
                "unknown field",
            ),
            // Hostile numbers (issue 8, item 6): each once panicked or ran out of memory.
            (
                "duration of centuries",
                file(&format!("duration = \"10000000000000000000s\"\n{OP}")),
                Some(2),
                Some("duration"),
                "must be at most 24h, got 10000000000000000000s",
            ),
            (
                "warmup of centuries",
                file(&format!("warmup = \"10000000000000000000s\"\n{OP}")),
                Some(2),
                Some("warmup"),
                "must be at most 1h",
            ),
            (
                "rate too small to schedule",
                file(&format!("{OP}[load]\nmodel = \"open\"\nrate = 1e-300\n")),
                Some(7),
                Some("rate"),
                "must be from 0.001 to 10,000,000 requests per second, got 1e-300",
            ),
            (
                "rate too large",
                file(&format!("{OP}[load]\nmodel = \"open\"\nrate = 1e12\n")),
                Some(7),
                Some("rate"),
                "from 0.001 to 10,000,000",
            ),
            (
                "ten million workers",
                file(&format!("{OP}[load]\nconcurrency = 10000000\n")),
                Some(6),
                Some("concurrency"),
                "must be from 1 to 100,000, got 10000000",
            ),
            (
                "burst of ten million",
                file("kind = \"burst\"\n[load]\nconcurrency = 10000000\n"),
                Some(4),
                Some("concurrency"),
                "from 1 to 100,000",
            ),
            (
                "four billion log lines per request",
                file("[[operations]]\nname = \"a\"\nkind = \"append_logs\"\nlines = 4000000000\n"),
                Some(5),
                Some("lines"),
                "must be from 1 to 10,000, got 4000000000",
            ),
            (
                "four billion flow executions",
                file(
                    "kind = \"flow\"\n[flow]\nexecutions = 4000000000\nsteps = 1\n\
                     artifacts = 0\nlog_lines = 0\n",
                ),
                Some(4),
                Some("executions"),
                "must be from 1 to 1,000,000, got 4000000000",
            ),
            (
                "four billion log lines per flow step",
                file(
                    "kind = \"flow\"\n[flow]\nexecutions = 1\nsteps = 1\n\
                     artifacts = 0\nlog_lines = 4000000000\n",
                ),
                Some(7),
                Some("log_lines"),
                "at most 10,000",
            ),
            (
                "flow steps past the bound",
                file(
                    "kind = \"flow\"\n[flow]\nexecutions = 1\nsteps = 4000000000\n\
                     artifacts = 0\nlog_lines = 0\n",
                ),
                Some(5),
                Some("steps"),
                "at most 1,000",
            ),
            (
                "flow artifacts past the bound",
                file(
                    "kind = \"flow\"\n[flow]\nexecutions = 1\nsteps = 1\n\
                     artifacts = 4000000000\nlog_lines = 0\n",
                ),
                Some(6),
                Some("artifacts"),
                "at most 1,000",
            ),
            (
                "a flow of more than a billion requests",
                file(
                    "kind = \"flow\"\n[flow]\nexecutions = 1000000\nsteps = 1000\n\
                     artifacts = 0\nlog_lines = 0\n",
                ),
                Some(3),
                Some("flow"),
                "more than 1,000,000,000 requests",
            ),
            (
                "seed of millions",
                file(&format!("seed = 4000000000\n{OP}")),
                Some(2),
                Some("seed"),
                "must be at most 1,000,000, got 4000000000",
            ),
            (
                "requests past a billion",
                file(&format!("requests = 10000000000\n{OP}")),
                Some(2),
                Some("requests"),
                "must be from 1 to 1,000,000,000",
            ),
            (
                "weight past a million",
                file(&format!("{OP}weight = 4000000000\n")),
                Some(5),
                Some("weight"),
                "must be from 1 to 1,000,000",
            ),
            (
                "gate limit past 1000 percent",
                file(&format!("{OP}[gate]\np99 = 1e300\n")),
                Some(6),
                Some("p99"),
                "more than 0 and at most 1,000 percent",
            ),
            (
                "gate error rate past 100 points",
                file(&format!("{OP}[gate]\nerror_rate = 150.0\n")),
                Some(6),
                Some("error_rate"),
                "at most 100 percentage points",
            ),
            (
                "mix without operations",
                file(""),
                None,
                Some("operations"),
                "at least one",
            ),
            (
                "duplicate key",
                file("name = \"again\"\n"),
                Some(2),
                Some("name"),
                "duplicate key",
            ),
            (
                "missing name",
                OP.to_string(),
                Some(1),
                Some("name"),
                "is required",
            ),
            (
                "not TOML at all",
                file("this is not toml\n"),
                Some(2),
                None,
                "expected",
            ),
        ];
        // Collect every mismatch so one run shows them all.
        let mut failures = Vec::new();
        for (case, src, line, key, fragment) in cases {
            match Scenario::from_toml_str(&src, "x.toml") {
                Ok(_) => failures.push(format!("{case}: accepted")),
                Err(err) => {
                    let ok = err.origin == "x.toml"
                        && err.line == line
                        && err.key.as_deref() == key
                        && err.message.contains(fragment);
                    if !ok {
                        failures.push(format!("{case}: {err} (line {:?})", err.line));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn error_display_names_file_line_and_key() {
        let src = file(&format!("{OP}[load]\nconcurency = 32\n"));
        let err = Scenario::from_toml_str(&src, "scenarios/x.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "scenarios/x.toml:6: key \"concurency\": unknown field, expected one of `model`, \
             `concurrency`, `rate`"
        );
        let no_line = Scenario::from_toml_str(&file(""), "y.toml").unwrap_err();
        assert_eq!(
            no_line.to_string(),
            "y.toml: key \"operations\": at least one [[operations]] entry is needed"
        );
    }

    #[test]
    fn targets_keep_file_order() {
        let src = file(&format!(
            "{OP}[targets]\n\"totals.p99\" = \"< 9ms\"\n\"a.max\" = \"< 1s\"\n\"a.p50\" = \"< 1ms\"\n"
        ));
        let scenario = Scenario::from_toml_str(&src, "x.toml").unwrap();
        let order: Vec<String> = scenario.targets.iter().map(Target::metric).collect();
        assert_eq!(order, ["totals.p99", "a.max", "a.p50"]);
    }

    #[test]
    fn from_file_reads_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.toml");
        std::fs::write(&path, FULL).unwrap();
        assert_eq!(Scenario::from_file(&path).unwrap().name, "stress");

        let missing = dir.path().join("missing.toml");
        let err = Scenario::from_file(&missing).unwrap_err();
        assert!(
            err.to_string().starts_with(&missing.display().to_string()),
            "{err}"
        );
        assert!(err.message.contains("could not read"), "{err}");
    }
}
