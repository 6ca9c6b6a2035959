//! Scenario files: good ones parse to the expected plan, bad ones name the line and key.

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
        length: Some(Length::Duration(Duration::from_secs(30))),
        warmup: Duration::from_secs(2),
        seed: 0,
        load: LoadModel::Open {
            rate_per_s: 5000.0,
            max_in_flight: Some(64),
        },
        stages: Vec::new(),
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
                && s.length.is_none()
                && s.warmup == Duration::ZERO
                && s.load == LoadModel::Closed { concurrency: None }
                && s.operations[0].weight == 1
                && s.targets.is_empty()
                && s.gate == GateLimits::default()
        }),
        (
            "duration as bare number",
            format!("duration = 30\n{minimal}"),
            |s| s.length == Some(Length::Duration(Duration::from_secs(30))),
        ),
        (
            "duration as bare string",
            format!("duration = \"45\"\n{minimal}"),
            |s| s.length == Some(Length::Duration(Duration::from_secs(45))),
        ),
        (
            "requests count mode",
            format!("requests = 10\n{minimal}"),
            |s| s.length == Some(Length::Requests(10)),
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
fn error_display_names_file_line_and_key() {
    let src = file(&format!("{OP}[load]\nconcurency = 32\n"));
    let err = Scenario::from_toml_str(&src, "scenarios/x.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "scenarios/x.toml:6: key \"concurency\": unknown field, expected one of `model`, \
         `concurrency`, `rate`, `stages`"
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

mod bad_files;
mod stages;
