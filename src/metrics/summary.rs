//! `OpStats`: the per-operation summary written to results JSON, and lossless merging of it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{new_latency_histogram, MetricsError};

/// Latency percentiles, microseconds (of the successes in `latency_us`, of the failures in
/// `errors_latency_us`); all zeros when there were none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencySummary {
    /// Lowest latency, microseconds.
    #[schemars(range(min = 0))]
    pub min: f64,
    /// Mean latency, microseconds.
    #[schemars(range(min = 0))]
    pub mean: f64,
    /// Median latency, microseconds.
    #[schemars(range(min = 0))]
    pub p50: f64,
    /// 90th percentile latency, microseconds.
    #[schemars(range(min = 0))]
    pub p90: f64,
    /// 95th percentile latency, microseconds.
    #[schemars(range(min = 0))]
    pub p95: f64,
    /// 99th percentile latency, microseconds.
    #[schemars(range(min = 0))]
    pub p99: f64,
    /// 99.9th percentile latency, microseconds.
    #[schemars(range(min = 0))]
    pub p999: f64,
    /// Highest latency, microseconds.
    #[schemars(range(min = 0))]
    pub max: f64,
}

impl LatencySummary {
    /// Summarizes a nanosecond histogram; an empty one gives all zeros.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        LatencySummary {
            min: us(h.min()),
            mean: h.mean() / 1_000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p95: us(h.value_at_quantile(0.95)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// Summary of one operation (or of all together, "totals") over the measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("dependentRequired" = {
    "errors_latency_us": ["errors_histogram"],
    "errors_histogram": ["errors_latency_us"]
}))]
pub struct OpStats {
    /// Requests completed in the measured window, successful and failed, count.
    pub count: u64,
    /// Requests among `count` that failed, count.
    pub errors: u64,
    /// Successful requests per second over the measured window, ops/s.
    #[schemars(range(min = 0))]
    pub throughput: f64,
    /// Latency of successful requests, microseconds.
    pub latency_us: LatencySummary,
    /// The successful-latency histogram (nanoseconds), HDR V2 deflate format, base64 standard.
    #[schemars(length(min = 1), regex(pattern = r"^[A-Za-z0-9+/]+={0,2}$"))]
    pub histogram: String,
    /// Latency of failed requests, microseconds: how long a failing endpoint took to fail.
    /// Present when some failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_latency_us: Option<LatencySummary>,
    /// The failed-latency histogram (nanoseconds), encoded like `histogram`. Present when
    /// some failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), regex(pattern = r"^[A-Za-z0-9+/]+={0,2}$"))]
    pub errors_histogram: Option<String>,
}

impl OpStats {
    /// Builds the summary of a nanosecond histogram of successes plus the request counts.
    pub fn from_histogram(
        latency_ns: &Histogram<u64>,
        count: u64,
        errors: u64,
        duration_s: f64,
    ) -> Self {
        let successes = count.saturating_sub(errors);
        let throughput = if duration_s.is_finite() && duration_s > 0.0 {
            successes as f64 / duration_s
        } else {
            0.0
        };
        OpStats {
            count,
            errors,
            throughput,
            latency_us: LatencySummary::from_histogram(latency_ns),
            histogram: encode_histogram(latency_ns),
            errors_latency_us: None,
            errors_histogram: None,
        }
    }

    /// Adds the latency of the failed requests (a nanosecond histogram); nothing when none
    /// failed.
    pub fn with_error_latency(mut self, errors_ns: &Histogram<u64>) -> Self {
        if !errors_ns.is_empty() {
            self.errors_latency_us = Some(LatencySummary::from_histogram(errors_ns));
            self.errors_histogram = Some(encode_histogram(errors_ns));
        }
        self
    }

    /// Requests that succeeded: the ones the latency figures describe.
    pub fn successes(&self) -> u64 {
        self.count.saturating_sub(self.errors)
    }

    /// Failed requests as a percentage of completed ones; 0 when nothing completed.
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 * 100.0 / self.count as f64
        }
    }

    /// Decodes `histogram` back into the nanosecond latency histogram.
    pub fn decode_histogram(&self) -> Result<Histogram<u64>, MetricsError> {
        decode_histogram(&self.histogram)
    }

    /// Decodes `errors_histogram`, when there is one.
    pub fn decode_errors_histogram(&self) -> Result<Option<Histogram<u64>>, MetricsError> {
        self.errors_histogram
            .as_deref()
            .map(decode_histogram)
            .transpose()
    }

    /// Merges summaries taken over the same window by generators running side by side:
    /// histograms add, counts add, and throughput is recomputed over `duration_s`, so it is
    /// the sum of the parts when they share that window.
    pub fn merge_concurrent(parts: &[OpStats], duration_s: f64) -> Result<OpStats, MetricsError> {
        // Adding into the crate's own configuration keeps the merged result comparable with
        // locally recorded ones, whatever bounds the decoded parts were written with.
        let mut merged = new_latency_histogram();
        // Failed latencies merge only when every part that had failures recorded them
        // (results written before they were kept have none): a partial one would mislead.
        let mut merged_errors = Some(new_latency_histogram());
        let (mut count, mut errors) = (0u64, 0u64);
        for part in parts {
            merged.add(part.decode_histogram()?)?;
            match (part.decode_errors_histogram()?, merged_errors.as_mut()) {
                (Some(h), Some(m)) => m.add(h)?,
                (None, _) if part.errors > 0 => merged_errors = None,
                _ => {}
            }
            // Counts come from files, which may hold anything: saturate, never wrap or panic.
            count = count.saturating_add(part.count);
            errors = errors.saturating_add(part.errors);
        }
        let stats = OpStats::from_histogram(&merged, count, errors, duration_s);
        Ok(match merged_errors {
            Some(h) => stats.with_error_latency(&h),
            None => stats,
        })
    }
}

fn decode_histogram(encoded: &str) -> Result<Histogram<u64>, MetricsError> {
    let bytes = BASE64.decode(encoded.as_bytes())?;
    Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
}

fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail with I/O, and counts never approach i64::MAX.
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing a histogram into memory");
    BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Recorder;

    fn recorder_with(values_us: impl IntoIterator<Item = u64>, errors: u64) -> Recorder {
        let mut r = Recorder::new();
        for v in values_us {
            r.record_ok(v * 1_000, v * 1_000);
        }
        for _ in 0..errors {
            r.record_error(1_000);
        }
        r
    }

    #[test]
    fn histogram_round_trips_through_base64() {
        let cases: [(&str, Recorder); 3] = [
            ("empty", Recorder::new()),
            ("one value", recorder_with([42], 0)),
            ("spread", recorder_with((1..=5_000).map(|v| v * v), 3)),
        ];
        for (name, recorder) in cases {
            let stats = recorder.summarize(1.0);
            let decoded = stats.decode_histogram().unwrap();
            assert_eq!(&decoded, recorder.latency(), "{name}");
            let json = serde_json::to_string(&stats).unwrap();
            let back: OpStats = serde_json::from_str(&json).unwrap();
            assert_eq!(back, stats, "{name}: JSON round trip");
        }
    }

    #[test]
    fn decode_rejects_garbage() {
        let cases = [
            ("not base64", "!!!"),
            ("base64 of junk", "aGVsbG8gd29ybGQ="),
            ("empty", ""),
        ];
        for (name, histogram) in cases {
            let mut stats = Recorder::new().summarize(1.0);
            stats.histogram = histogram.to_string();
            assert!(stats.decode_histogram().is_err(), "{name}");
        }
    }

    #[test]
    fn merge_concurrent_adds_counts_and_throughputs() {
        let a = recorder_with(1..=1_000, 10);
        let b = recorder_with(500..=2_500, 0);
        let c = Recorder::new();
        let parts = [a.summarize(10.0), b.summarize(10.0), c.summarize(10.0)];
        let merged = OpStats::merge_concurrent(&parts, 10.0).unwrap();

        let mut all = a.clone();
        all.merge(&b);
        assert_eq!(merged, all.summarize(10.0));
        assert_eq!(merged.count, 1_010 + 2_001);
        assert_eq!(merged.errors, 10);
        let summed: f64 = parts.iter().map(|p| p.throughput).sum();
        assert!((merged.throughput - summed).abs() < 1e-9);
    }

    #[test]
    fn failed_requests_keep_their_own_latency() {
        let mut r = Recorder::new();
        r.record_ok(100_000, 100_000);
        for us in [2_000, 4_000, 30_000] {
            r.record_error(us * 1_000);
        }
        let stats = r.summarize(1.0);
        // The successes' figures are the one success alone ...
        assert!(
            (stats.latency_us.max - 100.0).abs() <= 0.1,
            "{:?}",
            stats.latency_us
        );
        // ... and the failures have theirs, with a histogram that decodes to them.
        let errors = stats.errors_latency_us.expect("failures' latency");
        assert!((errors.min - 2_000.0).abs() <= 2.0, "{errors:?}");
        assert!((errors.max - 30_000.0).abs() <= 30.0, "{errors:?}");
        let h = stats
            .decode_errors_histogram()
            .unwrap()
            .expect("errors histogram");
        assert_eq!(h.len(), 3);
        assert_eq!(&h, r.error_latency());
        // Nothing failed: neither field, and JSON leaves them out.
        let clean = recorder_with([5], 0).summarize(1.0);
        assert_eq!(clean.errors_latency_us, None);
        let json = serde_json::to_value(&clean).unwrap();
        assert!(json.get("errors_latency_us").is_none(), "{json}");
        assert!(json.get("errors_histogram").is_none(), "{json}");
    }

    #[test]
    fn merge_concurrent_adds_failed_latencies_when_every_part_kept_them() {
        let (a, b) = (recorder_with([10], 2), recorder_with([20], 3));
        let merged = OpStats::merge_concurrent(&[a.summarize(1.0), b.summarize(1.0)], 1.0).unwrap();
        let h = merged.decode_errors_histogram().unwrap().expect("merged");
        assert_eq!(h.len(), 5);
        // A part from before failed latencies were kept: the merge claims none.
        let mut old = b.summarize(1.0);
        old.errors_latency_us = None;
        old.errors_histogram = None;
        let merged = OpStats::merge_concurrent(&[a.summarize(1.0), old], 1.0).unwrap();
        assert_eq!(merged.errors_histogram, None);
        assert_eq!(merged.errors, 5);
    }

    #[test]
    fn merge_concurrent_of_nothing_is_empty() {
        let merged = OpStats::merge_concurrent(&[], 5.0).unwrap();
        assert_eq!(merged, Recorder::new().summarize(5.0));
    }

    #[test]
    fn throughput_and_error_rate_edge_cases() {
        // (successes, errors, duration_s, throughput, error_rate %)
        let cases = [
            (100, 0, 10.0, 10.0, 0.0),
            (0, 4, 2.0, 0.0, 100.0),
            (3, 1, 0.5, 6.0, 25.0),
            (5, 0, 0.0, 0.0, 0.0),
            (5, 0, f64::NAN, 0.0, 0.0),
            (5, 0, -1.0, 0.0, 0.0),
        ];
        for (ok, errors, duration_s, throughput, error_rate) in cases {
            let stats = recorder_with(std::iter::repeat_n(10, ok), errors).summarize(duration_s);
            let case = format!("{ok} ok, {errors} errors over {duration_s} s");
            assert!((stats.throughput - throughput).abs() < 1e-9, "{case}");
            assert!((stats.error_rate() - error_rate).abs() < 1e-9, "{case}");
        }
    }
}
