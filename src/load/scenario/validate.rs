//! Validation: the raw file shape checked value by value against `bounds`, into a typed
//! `Scenario`; every error names the file, line and key.

use super::*;

impl Ctx<'_> {
    pub(super) fn validate(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
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
            (Some(duration), None) => Some(Length::Duration(self.span(
                duration,
                "duration",
                bounds::DURATION,
            )?)),
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
                Some(Length::Requests(n))
            }
            (None, None) => None,
        };

        let warmup = match &raw.warmup {
            Some(w) => self.span(w, "warmup", bounds::WARMUP)?,
            None => Duration::ZERO,
        };
        let seed = match &raw.seed {
            Some(n) => self.count_u32(n, "seed", bounds::SEED)?,
            None => 0,
        };
        let has_stages = raw.load.as_ref().is_some_and(|l| l.stages.is_some());
        if has_stages {
            if let Some(d) = &raw.duration {
                return Err(self.at(
                    d.span(),
                    "duration",
                    "the [[load.stages]] set the run's length (warm-up included); drop \
                     `duration`",
                ));
            }
            if let Some(r) = &raw.requests {
                return Err(self.at(
                    r.span(),
                    "requests",
                    "the [[load.stages]] set the run's length; drop `requests`",
                ));
            }
            if kind != ScenarioKind::Mix {
                return Err(self.at_key(
                    "load.stages",
                    format!(
                        "load stages apply to kind = \"mix\" only, not {}",
                        kind.name()
                    ),
                ));
            }
        }
        let (load, stages) = self.validate_load(raw.load, kind)?;

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
            stages,
            operations,
            flow,
            targets,
            gate,
        })
    }

    pub(super) fn validate_load(
        &self,
        raw: Option<RawLoad>,
        kind: ScenarioKind,
    ) -> Result<(LoadModel, Vec<Stage>), ScenarioError> {
        let Some(raw) = raw else {
            return Ok((LoadModel::Closed { concurrency: None }, Vec::new()));
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
        if let Some(stages) = raw.stages {
            return match model {
                ModelName::Closed => {
                    if let Some(c) = &raw.concurrency {
                        return Err(self.at(
                            c.span(),
                            "concurrency",
                            "the [[load.stages]] targets are the workers of the closed \
                             model; drop `concurrency`",
                        ));
                    }
                    if let Some(rate) = &raw.rate {
                        return Err(self.at(
                            rate.span(),
                            "rate",
                            "applies only to model = \"open\"; the closed model's stages \
                             are workers",
                        ));
                    }
                    let stages = self.validate_stages(stages, StageModel::Closed)?;
                    let peak = stages.iter().map(|s| s.target).fold(1.0, f64::max);
                    Ok((
                        LoadModel::Closed {
                            concurrency: Some(peak as u32),
                        },
                        stages,
                    ))
                }
                ModelName::Open => {
                    if let Some(rate) = &raw.rate {
                        return Err(self.at(
                            rate.span(),
                            "rate",
                            "the [[load.stages]] targets are the rates of the open model; \
                             drop `rate`",
                        ));
                    }
                    let stages = self.validate_stages(stages, StageModel::Open)?;
                    let peak = stages.iter().map(|s| s.target).fold(0.0, f64::max);
                    Ok((
                        LoadModel::Open {
                            rate_per_s: peak.max(bounds::RATE.min),
                            max_in_flight: concurrency,
                        },
                        stages,
                    ))
                }
            };
        }
        match (model, raw.rate) {
            (ModelName::Closed, Some(rate)) => Err(self.at(
                rate.span(),
                "rate",
                "applies only to model = \"open\"; the closed model is paced by `concurrency`",
            )),
            (ModelName::Closed, None) => Ok((LoadModel::Closed { concurrency }, Vec::new())),
            (ModelName::Open, None) => {
                let span = raw.model.map(|m| m.span()).unwrap_or_default();
                Err(self.at(
                    span,
                    "rate",
                    "model = \"open\" needs `rate`, requests per second (or [[load.stages]])",
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
                Ok((
                    LoadModel::Open {
                        rate_per_s,
                        max_in_flight: concurrency,
                    },
                    Vec::new(),
                ))
            }
        }
    }

    /// The operation and the span of its name, for duplicate reporting.
    pub(super) fn validate_operation(
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

    pub(super) fn validate_params(
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

    pub(super) fn validate_request(
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

    pub(super) fn validate_targets(
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

    pub(super) fn validate_gate(&self, raw: RawGate) -> Result<GateLimits, ScenarioError> {
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
