//! The fan-out scenario file (`scenarios/fanout.toml`, `kind = "fanout"`): its own small
//! shape, checked as strictly as the other kinds' (unknown keys are errors, every number is
//! range-checked, errors name the file, line and key).

use crate::load::bounds;
use crate::load::scenario::ScenarioError;
use crate::results::targets::Target;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

/// The operations a fan-out run reports, which targets may name (besides `totals`).
pub const OPERATIONS: [&str; 4] = ["connect", "write", "delivery", "delivery_from_ack"];

/// A validated fan-out scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct FanoutScenario {
    pub name: String,
    pub description: Option<String>,
    /// How long the writers produce events.
    pub duration: Duration,
    pub subscribers: u64,
    /// Events per second.
    pub rate: f64,
    /// Writes in flight at most.
    pub writers: u32,
    pub targets: Vec<Target>,
}

pub const BUILTIN_TEXT: &str = include_str!("../../../scenarios/fanout.toml");
pub const BUILTIN_ORIGIN: &str = "scenarios/fanout.toml (built in)";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    description: Option<String>,
    kind: Spanned<String>,
    duration: Option<Spanned<toml::Value>>,
    fanout: Option<Spanned<RawFanout>>,
    #[serde(default)]
    targets: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFanout {
    subscribers: Option<Spanned<i64>>,
    rate: Option<Spanned<toml::Value>>,
    writers: Option<Spanned<i64>>,
}

impl FanoutScenario {
    pub fn builtin() -> FanoutScenario {
        FanoutScenario::from_toml_str(BUILTIN_TEXT, BUILTIN_ORIGIN)
            .expect("the built-in fan-out scenario is valid")
    }

    pub fn from_file(path: &std::path::Path) -> Result<FanoutScenario, ScenarioError> {
        let origin = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            origin: origin.clone(),
            line: None,
            key: None,
            message: format!("could not read the scenario file: {e}"),
        })?;
        FanoutScenario::from_toml_str(&src, &origin)
    }

    pub fn from_toml_str(src: &str, origin: &str) -> Result<FanoutScenario, ScenarioError> {
        let at = |span: Option<std::ops::Range<usize>>, key: &str, message: String| ScenarioError {
            origin: origin.to_string(),
            line: span.map(|s| src[..s.start.min(src.len())].matches('\n').count() + 1),
            key: (!key.is_empty()).then(|| key.to_string()),
            message,
        };
        let raw: Raw = toml::from_str(src).map_err(|e| at(e.span(), "", e.message().into()))?;
        if raw.kind.get_ref() != "fanout" {
            return Err(at(
                Some(raw.kind.span()),
                "kind",
                format!(
                    "this is a fan-out scenario file reader; kind must be \"fanout\", got {:?} \
                     (other kinds run with `stepflow-bench run`)",
                    raw.kind.get_ref()
                ),
            ));
        }
        if raw.name.get_ref().trim().is_empty() {
            return Err(at(
                Some(raw.name.span()),
                "name",
                "must not be empty".into(),
            ));
        }
        let duration = match &raw.duration {
            None => Duration::from_secs(10),
            Some(d) => {
                let text = match d.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    other => other.to_string(),
                };
                bounds::DURATION
                    .parse(&text)
                    .map_err(|m| at(Some(d.span()), "duration", m))?
            }
        };
        let (mut subscribers, mut rate, mut writers) = (100, 100.0, 32);
        if let Some(f) = &raw.fanout {
            let f = f.get_ref();
            if let Some(n) = &f.subscribers {
                subscribers = bounds::SUBSCRIBERS
                    .check(*n.get_ref())
                    .map_err(|m| at(Some(n.span()), "subscribers", m))?;
            }
            if let Some(r) = &f.rate {
                let value = match r.get_ref() {
                    toml::Value::Integer(n) => *n as f64,
                    toml::Value::Float(x) => *x,
                    other => {
                        return Err(at(
                            Some(r.span()),
                            "rate",
                            format!("must be a number of events per second, got {other}"),
                        ))
                    }
                };
                rate = bounds::EVENT_RATE
                    .check(value)
                    .map_err(|m| at(Some(r.span()), "rate", m))?;
            }
            if let Some(n) = &f.writers {
                writers = bounds::WRITERS
                    .check(*n.get_ref())
                    .map_err(|m| at(Some(n.span()), "writers", m))?
                    as u32;
            }
        }
        let mut targets = Vec::new();
        for (key, value) in &raw.targets {
            let t = Target::parse(key.get_ref(), value.get_ref())
                .map_err(|e| at(Some(key.span()), key.get_ref(), e.to_string()))?;
            if t.subject != "totals" && !OPERATIONS.contains(&t.subject.as_str()) {
                return Err(at(
                    Some(key.span()),
                    key.get_ref(),
                    format!(
                        "no operation {:?} in a fan-out run; it reports {} and totals",
                        t.subject,
                        OPERATIONS.join(", ")
                    ),
                ));
            }
            targets.push(t);
        }
        Ok(FanoutScenario {
            name: raw.name.into_inner(),
            description: raw.description,
            duration,
            subscribers,
            rate,
            writers,
            targets,
        })
    }

    /// Events the writers produce: rate × duration, at least one.
    pub fn events(&self) -> u64 {
        ((self.rate * self.duration.as_secs_f64()).floor() as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_file_parses() {
        let s = FanoutScenario::builtin();
        assert_eq!(s.name, "fanout");
        assert_eq!(s.subscribers, 100);
        assert_eq!(s.events(), 1000);
        assert!(!s.targets.is_empty());
    }

    #[test]
    fn bad_values_name_the_line_and_key() {
        let cases = [
            (
                "name = \"f\"\nkind = \"fanout\"\n[fanout]\nsubscribers = 0\n",
                "subscribers",
                4,
            ),
            (
                "name = \"f\"\nkind = \"fanout\"\n[fanout]\nrate = 1e9\n",
                "rate",
                4,
            ),
            (
                "name = \"f\"\nkind = \"fanout\"\n[fanout]\nwriters = 5000\n",
                "writers",
                4,
            ),
            (
                "name = \"f\"\nkind = \"fanout\"\nduration = \"0s\"\n",
                "duration",
                3,
            ),
            ("name = \"f\"\nkind = \"mix\"\n", "kind", 2),
            (
                "name = \"f\"\nkind = \"fanout\"\n[targets]\n\"nosuch.p99\" = \"< 1ms\"\n",
                "nosuch.p99",
                4,
            ),
        ];
        for (src, key, line) in cases {
            let e = FanoutScenario::from_toml_str(src, "f.toml").unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
        }
        let e = FanoutScenario::from_toml_str("name = \"f\"\nkind = \"fanout\"\nx = 1\n", "f.toml")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
