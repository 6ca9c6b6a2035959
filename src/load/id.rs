//! Execution ids as the service under test gives them: opaque text, from a JSON string
//! (`"1c378717e5b84bfe91e62a90b2e05f94"`) or a JSON number (`42`), kept exactly as given.
//! They are compared for equality only: no order, no arithmetic, so nothing can come to
//! depend on a service numbering its executions.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fmt;
use std::sync::Arc;

/// One execution's id. Cloning it is a reference-count increment, so calls on the hot path
/// can carry it by value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ExecId(Arc<str>);

impl ExecId {
    /// The id as the service wrote it (a string's contents, a number's digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one URL path segment: characters outside RFC 3986's unreserved set are
    /// percent-encoded, so an id holding '/', '?' or a space still names one resource.
    pub fn segment(&self) -> Segment<'_> {
        Segment(&self.0)
    }

    /// The id as the storage layer's integer key, for `--direct` runs.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
}

impl From<i64> for ExecId {
    fn from(id: i64) -> ExecId {
        ExecId(id.to_string().into())
    }
}

impl From<&str> for ExecId {
    fn from(id: &str) -> ExecId {
        ExecId(id.into())
    }
}

impl fmt::Display for ExecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ExecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// See [`ExecId::segment`].
pub struct Segment<'a>(&'a str);

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

impl fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // UUIDs, hex strings and digits need no encoding: one write, no allocation.
        if self.0.bytes().all(unreserved) {
            return f.write_str(self.0);
        }
        for b in self.0.bytes() {
            if unreserved(b) {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ExecId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ExecId, D::Error> {
        // The raw JSON text keeps a number's digits exactly as written, however long (an
        // integer past u64 would otherwise come back as a rounded f64).
        let raw = <Box<RawValue>>::deserialize(deserializer)?;
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => {
                let s: String = serde_json::from_str(text).map_err(de::Error::custom)?;
                if s.is_empty() {
                    return Err(de::Error::custom("an execution id must not be empty"));
                }
                Ok(ExecId(s.into()))
            }
            Some(b'-' | b'0'..=b'9') => Ok(ExecId(text.into())),
            _ => Err(de::Error::custom(format!(
                "an execution id must be a JSON string or number, got {}",
                snippet(text, 40)
            ))),
        }
    }
}

/// The first `max` characters of `text`, with an ellipsis when cut.
pub fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Row {
        id: ExecId,
    }

    fn id_of(json: &str) -> Result<ExecId, String> {
        serde_json::from_str::<Row>(json)
            .map(|r| r.id)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn strings_and_numbers_are_kept_as_given() {
        // (JSON, the id's text)
        let cases = [
            (
                r#"{"id": "1c378717e5b84bfe91e62a90b2e05f94"}"#,
                "1c378717e5b84bfe91e62a90b2e05f94",
            ),
            (r#"{"id": 42}"#, "42"),
            (r#"{"id": -7}"#, "-7"),
            // Past u64: the digits survive, not a rounded float.
            (
                r#"{"id": 123456789012345678901234567890}"#,
                "123456789012345678901234567890",
            ),
            (r#"{"id": "a\/b c"}"#, "a/b c"),
            (r#"{"name": "x", "id": "0042"}"#, "0042"),
        ];
        for (json, text) in cases {
            assert_eq!(id_of(json).unwrap().as_str(), text, "{json}");
        }
    }

    #[test]
    fn other_json_is_refused_with_a_clear_message() {
        for json in [
            r#"{"id": null}"#,
            r#"{"id": true}"#,
            r#"{"id": {"x": 1}}"#,
            r#"{"id": [1]}"#,
            r#"{"id": ""}"#,
        ] {
            let e = id_of(json).unwrap_err();
            assert!(e.contains("execution id"), "{json}: {e}");
        }
    }

    #[test]
    fn segments_escape_what_a_path_cannot_hold() {
        let cases = [
            (
                "1c378717e5b84bfe91e62a90b2e05f94",
                "1c378717e5b84bfe91e62a90b2e05f94",
            ),
            ("42", "42"),
            ("a/b c?d", "a%2Fb%20c%3Fd"),
            ("é", "%C3%A9"),
            ("x-y_z.~", "x-y_z.~"),
        ];
        for (id, segment) in cases {
            assert_eq!(ExecId::from(id).segment().to_string(), segment);
        }
    }

    #[test]
    fn a_string_and_a_number_with_the_same_text_are_the_same_id() {
        assert_eq!(id_of(r#"{"id": "5"}"#), id_of(r#"{"id": 5}"#));
        assert_eq!(ExecId::from(5), ExecId::from("5"));
        assert_eq!(ExecId::from("5").as_i64(), Some(5));
        assert_eq!(ExecId::from("ab").as_i64(), None);
    }
}
