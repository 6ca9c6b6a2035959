//! Parsing of human-written durations ("30", "30s", "500ms", "1.5s", "2m", "1h").

use std::time::Duration;

/// What `parse_duration` accepts, shown in every error.
pub const ACCEPTED: &str = "expected a non-negative number with an optional unit ns, us, ms, \
    s, m or h, e.g. \"30s\", \"500ms\", \"1.5s\", \"2m\" (a bare number is seconds)";

/// A duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration \"{input}\" ({reason}): {ACCEPTED}")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses a decimal number followed by an optional unit; no unit means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: s.to_string(),
        reason,
    };
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(err("empty"));
    }
    let number_len = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_len);
    let unit_ns: u128 = match unit.trim_start() {
        "" | "s" => NANOS_PER_SEC,
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        _ if number.is_empty() => return Err(err("no number")),
        _ => return Err(err("unknown unit")),
    };

    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(err("not a number"));
    }
    // Exact decimal arithmetic: "0.1s" is 100 ms exactly, which f64 would not promise.
    let digits = || whole.bytes().chain(fraction.bytes());
    let mut mantissa: u128 = 0;
    for d in digits() {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(d - b'0')))
            .ok_or_else(|| err("too large"))?;
    }
    let scale = 10u128
        .checked_pow(fraction.len() as u32)
        .ok_or_else(|| err("too many decimals"))?;
    let nanos = mantissa
        .checked_mul(unit_ns)
        .ok_or_else(|| err("too large"))?
        / scale;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| err("too large"))?;
    Ok(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let cases = [
            ("30", Duration::from_secs(30)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1_500)),
            ("1h", Duration::from_secs(3_600)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("0.1s", Duration::from_millis(100)),
            (".5s", Duration::from_millis(500)),
            ("2.", Duration::from_secs(2)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            (" 10 s ", Duration::from_secs(10)),
            ("0.0000000001s", Duration::ZERO),
            ("1.25m", Duration::from_secs(75)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn rejected_forms() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("-1", "no number"),
            ("abc", "no number"),
            ("10x", "unknown unit"),
            ("1e999", "unknown unit"),
            ("1.2.3s", "not a number"),
            (".s", "not a number"),
            ("5 minutes", "unknown unit"),
            ("99999999999999999999999h", "too large"),
            ("999999999999999999999999999999999999999999s", "too large"),
        ];
        for (input, reason) in cases {
            let err = parse_duration(input).expect_err(input);
            assert_eq!(err.reason, reason, "{input:?}");
            let message = err.to_string();
            assert!(message.contains(ACCEPTED), "{input:?}: {message}");
            assert!(message.contains(&format!("\"{input}\"")), "{message}");
        }
    }
}
