//! The results JSON schema, derived from the results types (schemars, the serialize
//! contract: a field is required when it is always written), so that it cannot drift from
//! them. `schema/results.schema.json` is what `results_schema_text` returns; a test checks
//! that the committed file matches (`UPDATE_SCHEMA=1 cargo test --lib results::schema`
//! rewrites it).

use super::names::SCENARIO_KINDS;
use super::targets::{Figure, Unit};
use super::Results;
use crate::exit;
use schemars::generate::SchemaSettings;
use schemars::{json_schema, Schema, SchemaGenerator};

/// Where the schema is published, relative to the repository.
pub const SCHEMA_PATH: &str = "schema/results.schema.json";

/// The schema of a results file, as JSON.
pub fn results_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Results>();
    schema.insert(
        "$id".into(),
        "https://github.com/stepflow-bench/stepflow-bench/schema/results.schema.json".into(),
    );
    schema.insert(
        "title".into(),
        format!(
            "stepflow-bench results, schema_version {}",
            super::SCHEMA_VERSION
        )
        .into(),
    );
    schema.insert(
        "description".into(),
        "What one run of the load generator writes (--out FILE) and prints with --format \
         json. Scripts and CI rely on the required fields; more fields may be added without a \
         new schema_version."
            .into(),
    );
    serde_json::to_value(schema).expect("a schema is JSON")
}

/// The schema as the committed file holds it: pretty-printed, one trailing newline.
pub fn results_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&results_schema()).expect("JSON serializes");
    text.push('\n');
    text
}

pub(super) fn scenario_kind(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": SCENARIO_KINDS })
}

/// The bundled monitor's storage profiles, or null for an external target.
pub(super) fn profile(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": ["optimized", "legacy", null] })
}

pub(super) fn exit_code(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": [exit::OK, exit::FAILED, exit::ABORTED] })
}

pub(super) fn error_counts(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "type": "integer", "minimum": 1 }
    })
}

pub(super) fn target_metric(_: &mut SchemaGenerator) -> Schema {
    let figures: Vec<&str> = Figure::ALL.iter().map(|f| f.name()).collect();
    json_schema!({
        "type": "string",
        "pattern": format!("^.+\\.({})$", figures.join("|"))
    })
}

pub(super) fn target_unit(_: &mut SchemaGenerator) -> Schema {
    let units: Vec<&str> = Unit::ALL.iter().map(|u| u.symbol()).collect();
    json_schema!({ "enum": units })
}

/// A number, or null where there was nothing to measure (JSON has no NaN).
pub(super) fn number_or_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["number", "null"] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::storage::Profile;

    #[test]
    fn the_committed_schema_is_the_one_derived_from_the_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let derived = results_schema_text();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &derived).expect("write the schema");
        }
        let committed = std::fs::read_to_string(&path).expect("the committed schema");
        assert!(
            committed == derived,
            "{SCHEMA_PATH} differs from the schema derived from the results types; \
             regenerate it with UPDATE_SCHEMA=1 cargo test --lib results::schema"
        );
    }

    #[test]
    fn the_profile_names_are_the_monitors() {
        let schema = serde_json::to_value(profile(&mut SchemaGenerator::default())).unwrap();
        for p in [Profile::Optimized, Profile::Legacy] {
            assert!(
                schema["enum"]
                    .as_array()
                    .unwrap()
                    .contains(&p.as_str().into()),
                "{schema}"
            );
        }
    }
}
