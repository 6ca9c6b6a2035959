//! Open-model pacing: when the next request is due, as a pure function of elapsed time and
//! requests sent so far (the shape of vegeta's `lib/pacer.go`). A load shape is one more
//! `Pacer`; the engine asks nothing else of it.

use std::time::Duration;

/// What the generator should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// The next request is due (or overdue): send it now.
    SendNow,
    /// The next request is due after this long.
    Wait(Duration),
    /// No further request can be scheduled (rate zero, negative or not finite).
    Stop,
}

/// When each request of the open model is due.
pub trait Pacer: Send + Sync {
    /// Scheduled offset of request `n` (0-based) from the start; None when no such request
    /// is ever due (the rate is zero or invalid, or the offset is not representable).
    /// Latency is measured from this instant, not from the actual send, so a stalled
    /// server shows in the tail.
    fn scheduled(&self, n: u64) -> Option<Duration>;

    /// Decides what to do `elapsed` after the start, with `sent` requests already sent.
    fn pace(&self, elapsed: Duration, sent: u64) -> Pace {
        match self.scheduled(sent) {
            None => Pace::Stop,
            Some(due) if due <= elapsed => Pace::SendNow,
            Some(due) => Pace::Wait(due - elapsed),
        }
    }

    /// `scheduled`, or `Duration::MAX` when request `n` is never due.
    fn intended_send_time(&self, n: u64) -> Duration {
        self.scheduled(n).unwrap_or(Duration::MAX)
    }

    /// How far the generator lags its schedule: time since the next request fell due, zero
    /// when it is on time or no request is due.
    fn behind_by(&self, elapsed: Duration, sent: u64) -> Duration {
        self.scheduled(sent)
            .map_or(Duration::ZERO, |due| elapsed.saturating_sub(due))
    }
}

/// Sends at a constant rate: request `n` (0-based) is due `n / rate` seconds after the start,
/// so the first goes out at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstantPacer {
    /// Requests per second.
    pub rate_per_s: f64,
}

impl Pacer for ConstantPacer {
    fn scheduled(&self, n: u64) -> Option<Duration> {
        if !(self.rate_per_s.is_finite() && self.rate_per_s > 0.0) {
            return None;
        }
        // Dividing n itself (rather than summing intervals) keeps rounding error from
        // accumulating over long runs.
        Duration::try_from_secs_f64(n as f64 / self.rate_per_s).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn pace_table() {
        // (name, rate, elapsed, sent, expected)
        let cases = [
            (
                "first request at t=0",
                10.0,
                Duration::ZERO,
                0,
                Pace::SendNow,
            ),
            (
                "second waits one interval",
                10.0,
                Duration::ZERO,
                1,
                Pace::Wait(ms(100)),
            ),
            ("part way to the next", 10.0, ms(130), 2, Pace::Wait(ms(70))),
            ("exactly on schedule", 10.0, ms(200), 2, Pace::SendNow),
            (
                "far behind sends now",
                10.0,
                Duration::from_secs(3600),
                5,
                Pace::SendNow,
            ),
            (
                "ahead of schedule waits",
                10.0,
                ms(50),
                10,
                Pace::Wait(ms(950)),
            ),
            (
                "half per second",
                0.5,
                Duration::ZERO,
                1,
                Pace::Wait(ms(2_000)),
            ),
            ("half per second, due", 0.5, ms(4_000), 2, Pace::SendNow),
            (
                "half per second, early",
                0.5,
                ms(3_000),
                2,
                Pace::Wait(ms(1_000)),
            ),
            (
                "huge rate never waits",
                f64::MAX,
                Duration::ZERO,
                u64::MAX,
                Pace::SendNow,
            ),
            ("rate zero stops", 0.0, Duration::ZERO, 0, Pace::Stop),
            ("negative rate stops", -5.0, ms(10), 0, Pace::Stop),
            ("NaN stops", f64::NAN, ms(10), 0, Pace::Stop),
            ("infinite rate stops", f64::INFINITY, ms(10), 0, Pace::Stop),
            (
                "unrepresentable schedule stops",
                1e-300,
                Duration::ZERO,
                1,
                Pace::Stop,
            ),
        ];
        for (name, rate_per_s, elapsed, sent, expected) in cases {
            let pace = ConstantPacer { rate_per_s }.pace(elapsed, sent);
            assert_eq!(pace, expected, "{name}");
        }
    }

    #[test]
    fn intended_send_time_table() {
        let cases = [
            (1000.0, 0, Duration::ZERO),
            (1000.0, 1, ms(1)),
            (1000.0, 2_500, ms(2_500)),
            (3.0, 3, ms(1_000)),
            (0.5, 3, ms(6_000)),
            (0.0, 1, Duration::MAX),
            (f64::NAN, 1, Duration::MAX),
        ];
        for (rate_per_s, n, expected) in cases {
            let got = ConstantPacer { rate_per_s }.intended_send_time(n);
            assert_eq!(got, expected, "rate {rate_per_s}, n {n}");
        }
    }

    #[test]
    fn behind_by_table() {
        let cases = [
            ("on time", 10.0, ms(100), 1, Duration::ZERO),
            ("ahead", 10.0, ms(0), 5, Duration::ZERO),
            ("late by 250 ms", 10.0, ms(750), 5, ms(250)),
            (
                "an hour late",
                1.0,
                Duration::from_secs(3_600),
                0,
                Duration::from_secs(3_600),
            ),
            ("invalid rate", 0.0, ms(750), 5, Duration::ZERO),
        ];
        for (name, rate_per_s, elapsed, sent, expected) in cases {
            let got = ConstantPacer { rate_per_s }.behind_by(elapsed, sent);
            assert_eq!(got, expected, "{name}");
        }
    }
}
