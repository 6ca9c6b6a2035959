//! The scenario file's raw shape, as TOML deserializes it: every value with its span, so
//! that validation can name the line and key of a bad one.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Spanned<String>,
    pub(super) description: Option<String>,
    pub(super) duration: Option<Spanned<DurationValue>>,
    pub(super) requests: Option<Spanned<i64>>,
    pub(super) warmup: Option<Spanned<DurationValue>>,
    pub(super) seed: Option<Spanned<i64>>,
    pub(super) kind: Option<Spanned<ScenarioKind>>,
    pub(super) load: Option<RawLoad>,
    #[serde(default)]
    pub(super) operations: Vec<RawOperation>,
    pub(super) flow: Option<Spanned<RawFlow>>,
    #[serde(default)]
    pub(super) targets: BTreeMap<Spanned<String>, Spanned<String>>,
    pub(super) gate: Option<RawGate>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum ModelName {
    Closed,
    Open,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoad {
    pub(super) model: Option<Spanned<ModelName>>,
    pub(super) concurrency: Option<Spanned<i64>>,
    pub(super) rate: Option<Spanned<f64>>,
    pub(super) stages: Option<Spanned<Vec<RawStage>>>,
}

/// One `[[load.stages]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStage {
    pub(super) duration: Spanned<DurationValue>,
    pub(super) target: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperation {
    pub(super) name: Spanned<String>,
    pub(super) kind: Option<Spanned<OpKind>>,
    pub(super) method: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) body: Option<Spanned<String>>,
    pub(super) headers: Option<Spanned<BTreeMap<String, String>>>,
    pub(super) expect_status: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(super) weight: Option<Spanned<i64>>,
    pub(super) limit: Option<Spanned<i64>>,
    pub(super) lines: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlow {
    pub(super) executions: Spanned<i64>,
    pub(super) steps: Spanned<i64>,
    pub(super) artifacts: Spanned<i64>,
    pub(super) log_lines: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    pub(super) p50: Option<Spanned<f64>>,
    pub(super) p90: Option<Spanned<f64>>,
    pub(super) p99: Option<Spanned<f64>>,
    pub(super) throughput: Option<Spanned<f64>>,
    pub(super) error_rate: Option<Spanned<f64>>,
}

/// A duration written as a string ("30s") or a bare number of seconds.
pub(super) struct DurationValue(pub(super) Duration);

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

pub(super) fn both_kinds_of_operation(name: &str) -> String {
    format!(
        "operation \"{name}\" has `kind`, so it is built in: drop `method` and `path`, or drop \
         `kind` to send a plain request"
    )
}
