//! Latency recording for the load generator: per-operation HDR histograms, their summaries
//! (`OpStats`) and per-second time series. Pure: nothing here measures time or does I/O.

mod summary;
mod timeseries;

pub use summary::{LatencySummary, OpStats};
pub use timeseries::{TimeSeries, TimeSeriesPoint};

use hdrhistogram::Histogram;

/// Lowest latency the histograms distinguish, nanoseconds.
pub const LOWEST_NS: u64 = 1;
/// Highest latency the histograms hold, nanoseconds (10 minutes); larger values saturate here.
pub const HIGHEST_NS: u64 = 600_000_000_000;
/// Significant decimal digits kept by every latency histogram (0.1 % relative error).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Errors from decoding or merging serialized histograms.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram is not a valid HDR V2 histogram: {0}")]
    Deserialize(#[from] hdrhistogram::serialization::DeserializeError),
    #[error("histograms cannot be merged: {0}")]
    Merge(#[from] hdrhistogram::AdditionError),
}

/// A latency histogram with the crate-wide configuration: nanoseconds, 1 ns to 10 min,
/// 3 significant digits, fixed size.
pub fn new_latency_histogram() -> Histogram<u64> {
    // new_with_bounds leaves auto-resize off, which bounds memory (~250 KiB per histogram).
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Everything measured for one operation during one run (or one worker of it).
///
/// Errors are counted, and their latencies go to a histogram of their own: a fast failure
/// (connection refused, 500 from an empty pool) must not make the success percentiles look
/// better, yet how long failures took is still worth knowing.
#[derive(Debug, Clone)]
pub struct Recorder {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    error_latency: Histogram<u64>,
    errors: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            latency: new_latency_histogram(),
            service: new_latency_histogram(),
            error_latency: new_latency_histogram(),
            errors: 0,
        }
    }

    /// Records a successful request. `latency_ns` runs from the intended send time (equal to
    /// the actual send in the closed model), `service_ns` from the actual send.
    pub fn record_ok(&mut self, latency_ns: u64, service_ns: u64) {
        self.latency.saturating_record(latency_ns);
        self.service.saturating_record(service_ns);
    }

    /// Records a failed request; its latency is kept apart from the successes.
    pub fn record_error(&mut self, latency_ns: u64) {
        self.errors += 1;
        self.error_latency.saturating_record(latency_ns);
    }

    /// Adds `other` into `self` without loss: histograms add bucket by bucket.
    pub fn merge(&mut self, other: &Recorder) {
        const SAME_CONFIG: &str = "recorders share one histogram configuration";
        self.latency.add(&other.latency).expect(SAME_CONFIG);
        self.service.add(&other.service).expect(SAME_CONFIG);
        self.error_latency
            .add(&other.error_latency)
            .expect(SAME_CONFIG);
        self.errors += other.errors;
    }

    /// Requests completed, successful or not.
    pub fn count(&self) -> u64 {
        self.latency.len() + self.errors
    }

    /// Requests that failed.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Latency of successful requests from their intended send time, nanoseconds.
    pub fn latency(&self) -> &Histogram<u64> {
        &self.latency
    }

    /// Service time of successful requests from their actual send, nanoseconds.
    pub fn service_time(&self) -> &Histogram<u64> {
        &self.service
    }

    /// Latency of failed requests, nanoseconds.
    pub fn error_latency(&self) -> &Histogram<u64> {
        &self.error_latency
    }

    /// Summarizes the successful latencies over a measured window of `duration_s` seconds,
    /// and the failed ones apart.
    pub fn summarize(&self, duration_s: f64) -> OpStats {
        OpStats::from_histogram(&self.latency, self.count(), self.errors, duration_s)
            .with_error_latency(&self.error_latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;

    /// Asserts `actual` is within HDR's 3-significant-digit precision of `expected`.
    fn assert_close(what: &str, actual: f64, expected: f64) {
        let tolerance = expected.abs() * 0.001 + 1e-9;
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: got {actual}, expected {expected} ± {tolerance}"
        );
    }

    #[test]
    fn percentiles_match_known_data() {
        struct Case {
            name: &'static str,
            values_us: Vec<u64>,
            // (figure, expected µs)
            expect: Vec<(&'static str, f64)>,
        }
        let cases = [
            Case {
                name: "1..=1000 µs",
                values_us: (1..=1000).collect(),
                expect: vec![
                    ("min", 1.0),
                    ("p50", 500.0),
                    ("p90", 900.0),
                    ("p95", 950.0),
                    ("p99", 990.0),
                    ("p999", 999.0),
                    ("max", 1000.0),
                    ("mean", 500.5),
                ],
            },
            Case {
                name: "single value",
                values_us: vec![1234],
                expect: vec![
                    ("min", 1234.0),
                    ("p50", 1234.0),
                    ("p99", 1234.0),
                    ("max", 1234.0),
                    ("mean", 1234.0),
                ],
            },
            Case {
                name: "all equal",
                values_us: vec![250; 10_000],
                expect: vec![
                    ("min", 250.0),
                    ("p50", 250.0),
                    ("p999", 250.0),
                    ("max", 250.0),
                    ("mean", 250.0),
                ],
            },
            Case {
                name: "one slow outlier in a hundred",
                values_us: std::iter::repeat_n(100, 99).chain([50_000]).collect(),
                expect: vec![
                    ("p50", 100.0),
                    ("p99", 100.0),
                    ("p999", 50_000.0),
                    ("max", 50_000.0),
                ],
            },
        ];
        for case in cases {
            let mut recorder = Recorder::new();
            for v in &case.values_us {
                recorder.record_ok(v * US, v * US);
            }
            let stats = recorder.summarize(1.0);
            assert_eq!(stats.count, case.values_us.len() as u64, "{}", case.name);
            for (figure, expected) in case.expect {
                let l = &stats.latency_us;
                let actual = match figure {
                    "min" => l.min,
                    "mean" => l.mean,
                    "p50" => l.p50,
                    "p90" => l.p90,
                    "p95" => l.p95,
                    "p99" => l.p99,
                    "p999" => l.p999,
                    "max" => l.max,
                    _ => unreachable!(),
                };
                assert_close(&format!("{} {figure}", case.name), actual, expected);
            }
        }
    }

    #[test]
    fn values_beyond_the_range_saturate() {
        let mut recorder = Recorder::new();
        recorder.record_ok(u64::MAX, u64::MAX);
        recorder.record_error(u64::MAX);
        assert_eq!(recorder.count(), 2);
        assert!(recorder.latency().max() >= HIGHEST_NS);
        assert!(recorder.error_latency().max() >= HIGHEST_NS);
    }

    #[test]
    fn errors_are_counted_but_kept_out_of_success_latency() {
        let mut recorder = Recorder::new();
        recorder.record_ok(100 * US, 90 * US);
        recorder.record_error(1);
        recorder.record_error(1);
        let stats = recorder.summarize(2.0);
        assert_eq!((stats.count, stats.errors), (3, 2));
        assert_eq!(recorder.latency().len(), 1);
        assert_eq!(recorder.error_latency().len(), 2);
        assert_close("min", stats.latency_us.min, 100.0);
        // Only the one success counts toward throughput.
        assert_close("throughput", stats.throughput, 0.5);
        assert_close("error rate", stats.error_rate(), 200.0 / 3.0);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        let mut all = Recorder::new();
        for v in 1..=2000u64 {
            let (latency, service) = (v * 7 * US, v * 5 * US);
            if v % 3 == 0 {
                a.record_ok(latency, service);
            } else {
                b.record_ok(latency, service);
            }
            all.record_ok(latency, service);
        }
        for (target, v) in [(&mut a, 9), (&mut b, 11)] {
            target.record_error(v * US);
            all.record_error(v * US);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        assert_eq!(a.errors(), all.errors());
        assert_eq!(a.latency(), all.latency());
        assert_eq!(a.service_time(), all.service_time());
        assert_eq!(a.error_latency(), all.error_latency());
        assert_eq!(a.summarize(3.0), all.summarize(3.0));
    }

    #[test]
    fn empty_recorder_summarizes_to_zeros() {
        let stats = Recorder::new().summarize(0.0);
        assert_eq!((stats.count, stats.errors), (0, 0));
        assert_eq!(stats.throughput, 0.0);
        assert_eq!(stats.error_rate(), 0.0);
        assert_eq!(stats.latency_us, LatencySummary::default());
        assert!(stats.decode_histogram().unwrap().is_empty());
    }
}
