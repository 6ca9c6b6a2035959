//! Per-second time series of completed requests, errors and latency percentiles.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Per-second buckets use microseconds and 2 significant digits: a second's p50/p99 only
/// needs to show a trend, and this keeps each bucket near 24 KiB instead of ~250 KiB.
const BUCKET_HIGHEST_US: u64 = 600_000_000;
const BUCKET_SIGNIFICANT_DIGITS: u8 = 2;

/// One second of the measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimeSeriesPoint {
    /// End of this one-second interval, seconds since the measured start (warm-up excluded):
    /// the point with `t_s = 1` covers [0 s, 1 s).
    #[schemars(range(min = 1))]
    pub t_s: u64,
    /// Requests completed in this second, successful and failed, count.
    pub ops: u64,
    /// Requests among `ops` that failed, count.
    pub errors: u64,
    /// Median latency of this second's successes, microseconds (0 if none).
    #[schemars(range(min = 0))]
    pub p50_us: f64,
    /// 99th percentile latency of this second's successes, microseconds (0 if none).
    #[schemars(range(min = 0))]
    pub p99_us: f64,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    ops: u64,
    errors: u64,
    // Created on the first success so that seconds with only errors stay cheap.
    latency_us: Option<Histogram<u64>>,
}

fn new_bucket_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, BUCKET_HIGHEST_US, BUCKET_SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Completed requests bucketed by the second in which they completed.
///
/// Time is counted from the start of the measured window: the caller skips recording during
/// warm-up, so warm-up never shows up here.
#[derive(Debug, Clone, Default)]
pub struct TimeSeries {
    buckets: BTreeMap<u64, Bucket>,
}

impl TimeSeries {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a completed request, `t_since_start` after the measured start.
    pub fn record(&mut self, t_since_start: Duration, latency_ns: u64, ok: bool) {
        let bucket = self.buckets.entry(t_since_start.as_secs()).or_default();
        bucket.ops += 1;
        if ok {
            let us = latency_ns.div_ceil(1_000);
            bucket
                .latency_us
                .get_or_insert_with(new_bucket_histogram)
                .saturating_record(us);
        } else {
            bucket.errors += 1;
        }
    }

    /// Adds `other` second by second; both must count from the same measured start.
    pub fn merge(&mut self, other: &TimeSeries) {
        for (second, theirs) in &other.buckets {
            let ours = self.buckets.entry(*second).or_default();
            ours.ops += theirs.ops;
            ours.errors += theirs.errors;
            if let Some(h) = &theirs.latency_us {
                ours.latency_us
                    .get_or_insert_with(new_bucket_histogram)
                    .add(h)
                    .expect("time series buckets share one histogram configuration");
            }
        }
    }

    /// The same series moved `seconds` later, to lay consecutive phases end to end.
    pub fn shifted(&self, seconds: u64) -> TimeSeries {
        TimeSeries {
            buckets: self
                .buckets
                .iter()
                .map(|(s, b)| (s + seconds, b.clone()))
                .collect(),
        }
    }

    /// One point per second from the start to the last second with data; seconds in between
    /// with nothing completed appear with zeros, because a stall is exactly what a plot
    /// should show. The last point may cover a partial second.
    pub fn points(&self) -> Vec<TimeSeriesPoint> {
        let Some(&last) = self.buckets.keys().next_back() else {
            return Vec::new();
        };
        let empty = Bucket::default();
        (0..=last)
            .map(|second| {
                let bucket = self.buckets.get(&second).unwrap_or(&empty);
                let quantile = |q: f64| {
                    bucket
                        .latency_us
                        .as_ref()
                        .map_or(0.0, |h| h.value_at_quantile(q) as f64)
                };
                TimeSeriesPoint {
                    t_s: second + 1,
                    ops: bucket.ops,
                    errors: bucket.errors,
                    p50_us: quantile(0.50),
                    p99_us: quantile(0.99),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn requests_land_in_their_second() {
        struct Case {
            name: &'static str,
            // (t, latency µs, ok)
            records: Vec<(Duration, u64, bool)>,
            // (t_s, ops, errors)
            expect: Vec<(u64, u64, u64)>,
        }
        let cases = [
            Case {
                name: "nothing",
                records: vec![],
                expect: vec![],
            },
            Case {
                name: "first second boundaries",
                records: vec![
                    (ms(0), 10, true),
                    (ms(999), 10, false),
                    (ms(1000), 10, true),
                ],
                expect: vec![(1, 2, 1), (2, 1, 0)],
            },
            Case {
                name: "gap is filled with zeros",
                records: vec![(ms(100), 10, true), (ms(3500), 10, true)],
                expect: vec![(1, 1, 0), (2, 0, 0), (3, 0, 0), (4, 1, 0)],
            },
            Case {
                name: "only errors",
                records: vec![(ms(2500), 10, false)],
                expect: vec![(1, 0, 0), (2, 0, 0), (3, 1, 1)],
            },
        ];
        for case in cases {
            let mut series = TimeSeries::new();
            for (t, us, ok) in &case.records {
                series.record(*t, us * 1_000, *ok);
            }
            let got: Vec<_> = series
                .points()
                .iter()
                .map(|p| (p.t_s, p.ops, p.errors))
                .collect();
            assert_eq!(got, case.expect, "{}", case.name);
        }
    }

    #[test]
    fn percentiles_per_second_ignore_errors() {
        let mut series = TimeSeries::new();
        for us in 1..=100 {
            series.record(ms(10), us * 1_000, true);
        }
        series.record(ms(20), 10_000_000, false);
        series.record(ms(1_500), 7_000, true);
        let points = series.points();
        // Two significant digits: within 1 %.
        assert!((points[0].p50_us - 50.0).abs() <= 0.5, "{:?}", points[0]);
        assert!((points[0].p99_us - 99.0).abs() <= 1.0, "{:?}", points[0]);
        assert_eq!((points[1].p50_us, points[1].p99_us), (7.0, 7.0));
    }

    #[test]
    fn merge_aligns_seconds() {
        let mut a = TimeSeries::new();
        let mut b = TimeSeries::new();
        let mut all = TimeSeries::new();
        for i in 0..300u64 {
            let t = ms(i * 17);
            let latency_ns = (i % 50 + 1) * 20_000;
            let ok = i % 7 != 0;
            if i % 2 == 0 { &mut a } else { &mut b }.record(t, latency_ns, ok);
            all.record(t, latency_ns, ok);
        }
        a.merge(&b);
        assert_eq!(a.points(), all.points());
        assert_eq!(a.points().iter().map(|p| p.ops).sum::<u64>(), 300);
    }
}
