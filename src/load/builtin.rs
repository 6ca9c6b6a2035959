//! The built-in scenarios, embedded so the command line works from any directory.

use super::scenario::{Scenario, ScenarioError};
use std::path::Path;

/// (name, file text) of every file in `scenarios/`.
pub const BUILTIN: [(&str, &str); 6] = [
    (
        "api-latency",
        include_str!("../../scenarios/api-latency.toml"),
    ),
    (
        "concurrent",
        include_str!("../../scenarios/concurrent.toml"),
    ),
    ("stress", include_str!("../../scenarios/stress.toml")),
    ("simulate", include_str!("../../scenarios/simulate.toml")),
    ("ci", include_str!("../../scenarios/ci.toml")),
    ("null", include_str!("../../scenarios/null.toml")),
];

pub fn builtin(name: &str) -> Option<Result<Scenario, ScenarioError>> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Scenario::from_toml_str(text, &format!("scenarios/{n}.toml (built in)")))
}

/// A scenario named on the command line: a file path, or the name of a built-in one.
pub fn load(spec: &str) -> Result<Scenario, ScenarioError> {
    let path = Path::new(spec);
    if !path.exists() {
        let name = spec
            .trim_end_matches(".toml")
            .trim_start_matches("scenarios/");
        if let Some(s) = builtin(name) {
            return s;
        }
        if name == "fanout" {
            return Err(ScenarioError {
                origin: spec.to_string(),
                line: None,
                key: None,
                message: "the fan-out scenario runs with `stepflow-bench fanout` (its file: \
                          `fanout --scenario FILE`)"
                    .into(),
            });
        }
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        return Err(ScenarioError {
            origin: spec.to_string(),
            line: None,
            key: None,
            message: format!(
                "no such scenario file, and not a built-in scenario (those are: {})",
                names.join(", ")
            ),
        });
    }
    Scenario::from_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_lists_the_builtin_ones() {
        let e = load("nosuch").unwrap_err().to_string();
        assert!(e.starts_with("nosuch: no such scenario file"), "{e}");
        for (name, _) in BUILTIN {
            assert!(e.contains(name), "{name} missing from {e}");
        }
    }

    #[test]
    fn every_builtin_scenario_parses_and_validates() {
        for (name, text) in BUILTIN {
            let s = Scenario::from_toml_str(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.name, name, "file name and scenario name agree");
        }
    }

    #[test]
    fn every_file_in_scenarios_dir_is_built_in_and_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            // The fan-out scenario has a reader of its own (`stepflow-bench fanout`).
            .filter(|p| {
                p.file_stem().is_none_or(|s| s != "fanout") || {
                    crate::load::fanout::scenario::FanoutScenario::from_file(p)
                        .unwrap_or_else(|e| panic!("{e}"));
                    false
                }
            })
            .map(|p| {
                Scenario::from_file(&p).unwrap_or_else(|e| panic!("{e}"));
                p.file_stem().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        files.sort();
        let mut builtins: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        builtins.sort();
        assert_eq!(files, builtins);
    }
}
