//! Where in a scenario file an error is: the line of a span or a key, and TOML's own errors
//! turned into a message that names the file, line and key.

use super::*;

pub(super) struct Ctx<'a> {
    pub(super) src: &'a str,
    pub(super) origin: &'a str,
}

impl Ctx<'_> {
    pub(super) fn line_at(&self, offset: usize) -> usize {
        let offset = offset.min(self.src.len());
        self.src.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn error(
        &self,
        line: Option<usize>,
        key: Option<&str>,
        message: String,
    ) -> ScenarioError {
        ScenarioError {
            origin: self.origin.to_string(),
            line,
            key: key.map(str::to_string),
            message,
        }
    }

    pub(super) fn at(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.error(Some(self.line_at(span.start)), Some(key), message.into())
    }

    /// A whole number of the file checked against its bound (`bounds`).
    pub(super) fn count(
        &self,
        value: &Spanned<i64>,
        key: &str,
        bound: Count,
    ) -> Result<u64, ScenarioError> {
        bound
            .check(*value.get_ref())
            .map_err(|message| self.at(value.span(), key, message))
    }

    /// `count` for keys held as u32 (every bound that fits one).
    pub(super) fn count_u32(
        &self,
        value: &Spanned<i64>,
        key: &str,
        bound: Count,
    ) -> Result<u32, ScenarioError> {
        self.count(value, key, bound)
            .map(|v| u32::try_from(v).expect("the bound fits u32"))
    }

    pub(super) fn number(
        &self,
        value: &Spanned<f64>,
        key: &str,
        bound: Number,
    ) -> Result<f64, ScenarioError> {
        bound
            .check(*value.get_ref())
            .map_err(|message| self.at(value.span(), key, message))
    }

    pub(super) fn span(
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
    pub(super) fn at_key(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        let line = self.src.lines().position(|l| {
            let l = l.trim_start();
            let header = l.trim_start_matches('[').trim_end().trim_end_matches(']');
            l.starts_with('[') && header.trim() == key
                || l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        self.error(line.map(|i| i + 1), Some(key), message.into())
    }

    pub(super) fn toml_error(&self, err: &toml::de::Error) -> ScenarioError {
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
    pub(super) fn key_before(&self, offset: usize) -> Option<String> {
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
}
