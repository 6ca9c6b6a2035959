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

/// One stage of a load shape: over `duration`, the load moves linearly from the previous
/// stage's target (0 before the first) to `target`; a zero-length stage is a step.
/// Targets are requests per second in the open model and workers in the closed one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// One linear piece of a shape, laid out on its time axis.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    /// Start, seconds from the shape's start.
    t0: f64,
    /// Length, seconds (0 for a step).
    d: f64,
    /// Level at the start and at the end.
    from: f64,
    to: f64,
    /// Requests due before this segment (the integral of the rate up to `t0`).
    before: f64,
}

impl Segment {
    fn area(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.d
    }

    fn level_at(&self, t: f64) -> f64 {
        if self.d <= 0.0 {
            return self.to;
        }
        let x = ((t - self.t0) / self.d).clamp(0.0, 1.0);
        self.from + (self.to - self.from) * x
    }

    /// The integral of the level from the segment's start to `t0 + x`.
    fn area_until(&self, x: f64) -> f64 {
        if self.d <= 0.0 {
            return 0.0;
        }
        let x = x.clamp(0.0, self.d);
        let k = (self.to - self.from) / self.d;
        self.from * x + k * x * x / 2.0
    }

    /// Offset within the segment at which its integral reaches `m` (0 <= m <= area): the
    /// root of from·x + k·x²/2 = m, written so that it is stable when k is near 0 or negative.
    fn offset_of(&self, m: f64) -> f64 {
        if m <= 0.0 {
            return 0.0;
        }
        let k = (self.to - self.from) / self.d;
        let disc = (self.from * self.from + 2.0 * k * m).max(0.0);
        let denom = self.from + disc.sqrt();
        if denom <= 0.0 {
            return self.d;
        }
        (2.0 * m / denom).min(self.d)
    }
}

/// A load shape: stages laid end to end, a pure function of elapsed time.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    segments: Vec<Segment>,
    total_s: f64,
}

impl Shape {
    /// The shape of `stages`, ramping from 0; None when a stage is not usable (a target
    /// negative or not finite) or there are none.
    pub fn new(stages: &[Stage]) -> Option<Shape> {
        if stages.is_empty() {
            return None;
        }
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t, mut level, mut before) = (0.0f64, 0.0f64, 0.0f64);
        for s in stages {
            if !(s.target.is_finite() && s.target >= 0.0) {
                return None;
            }
            let seg = Segment {
                t0: t,
                d: s.duration.as_secs_f64(),
                from: level,
                to: s.target,
                before,
            };
            before += seg.area();
            t += seg.d;
            level = s.target;
            segments.push(seg);
        }
        Some(Shape {
            segments,
            total_s: t,
        })
    }

    /// How long the whole shape lasts.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.total_s)
    }

    /// The planned level at `t` from the start (rate or workers); after a step, the new
    /// level; past the end, the last target.
    pub fn level_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        // The last segment that has started by t (a step at t has started).
        let i = self.segments.partition_point(|s| s.t0 <= t).max(1) - 1;
        self.segments[i].level_at(t)
    }

    /// The highest level the shape reaches.
    pub fn peak(&self) -> f64 {
        self.segments.iter().map(|s| s.to).fold(0.0, f64::max)
    }

    /// Requests due in [0, t): the integral of the rate.
    pub fn due_until(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        let i = self.segments.partition_point(|s| s.t0 <= t).max(1) - 1;
        let s = &self.segments[i];
        s.before + s.area_until(t - s.t0)
    }

    /// Mean level over [a, b) (b > a): requests per second due, or mean workers.
    pub fn mean_between(&self, a: Duration, b: Duration) -> f64 {
        let span = b.saturating_sub(a).as_secs_f64();
        if span <= 0.0 {
            return self.level_at(a);
        }
        (self.due_until(b) - self.due_until(a)) / span
    }

    /// Index of the stage running at `t` (a zero-length stage never runs; past the end,
    /// None).
    pub fn stage_at(&self, t: Duration) -> Option<usize> {
        let t = t.as_secs_f64();
        if t >= self.total_s {
            return None;
        }
        self.segments
            .iter()
            .position(|s| s.d > 0.0 && t >= s.t0 && t < s.t0 + s.d)
    }

    /// Start and length of stage `i`.
    pub fn stage_window(&self, i: usize) -> (Duration, Duration) {
        let s = &self.segments[i];
        (Duration::from_secs_f64(s.t0), Duration::from_secs_f64(s.d))
    }

    /// Levels stage `i` starts and ends at.
    pub fn stage_levels(&self, i: usize) -> (f64, f64) {
        (self.segments[i].from, self.segments[i].to)
    }

    pub fn stages(&self) -> usize {
        self.segments.len()
    }

    /// The earliest instant at or after `after` at which the level exceeds `k` (the closed
    /// model: when worker `k`, 0-based, is wanted); None when it never does again.
    pub fn next_above(&self, k: f64, after: Duration) -> Option<Duration> {
        let after = after.as_secs_f64();
        for s in &self.segments {
            let end = s.t0 + s.d;
            if end < after || (s.d > 0.0 && end == after) {
                continue;
            }
            let start = s.t0.max(after);
            if s.d <= 0.0 {
                if s.to > k {
                    return Some(Duration::from_secs_f64(start));
                }
                continue;
            }
            if s.level_at(start) > k {
                return Some(Duration::from_secs_f64(start));
            }
            if s.to > k {
                // Rising through k within this segment.
                let x = (k - s.from) / (s.to - s.from) * s.d;
                // Just past the crossing, so that the level there is above k.
                let t = (s.t0 + x).max(start) + 1e-9;
                return Some(Duration::from_secs_f64(t.min(end)));
            }
        }
        None
    }
}

/// Open-model pacing along a shape: request `n` is due at the `t` where the integral of the
/// rate reaches `n`, so the first goes out as soon as the rate is above zero.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedPacer {
    pub shape: Shape,
}

impl Pacer for StagedPacer {
    fn scheduled(&self, n: u64) -> Option<Duration> {
        let n = n as f64;
        let segs = &self.shape.segments;
        // The segment in which the integral passes n: the last that starts at or below it
        // and has room for it.
        let i = segs.partition_point(|s| s.before <= n);
        for s in segs[..i].iter().rev() {
            if s.d > 0.0 && n < s.before + s.area() {
                let t = s.t0 + s.offset_of(n - s.before);
                return Duration::try_from_secs_f64(t).ok();
            }
            if s.before < n {
                break;
            }
        }
        None
    }
}

/// Every `stride`-th request of another pacer, starting at `offset`: how one schedule is
/// shared by several generator threads, so that together they send it evenly spaced.
pub struct Strided<P> {
    pub inner: P,
    pub stride: u64,
    pub offset: u64,
}

impl<P: Pacer> Pacer for Strided<P> {
    fn scheduled(&self, n: u64) -> Option<Duration> {
        let global = n.checked_mul(self.stride)?.checked_add(self.offset)?;
        self.inner.scheduled(global)
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

#[cfg(test)]
mod staged_tests {
    use super::*;

    fn st(secs: f64, target: f64) -> Stage {
        Stage {
            duration: Duration::from_secs_f64(secs),
            target,
        }
    }

    fn secs(v: f64) -> Duration {
        Duration::from_secs_f64(v)
    }

    fn close(a: Option<Duration>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => (a.as_secs_f64() - b).abs() < 1e-6,
            _ => false,
        }
    }

    #[test]
    fn scheduled_table() {
        let ramp = vec![st(10.0, 10.0)];
        let step_hold = vec![st(0.0, 10.0), st(10.0, 10.0)];
        let down = vec![st(0.0, 10.0), st(10.0, 0.0)];
        let spike = vec![
            st(0.0, 10.0),
            st(10.0, 10.0),
            st(0.0, 100.0),
            st(1.0, 100.0),
            st(0.0, 10.0),
            st(10.0, 10.0),
        ];
        let pause = vec![
            st(0.0, 10.0),
            st(1.0, 10.0),
            st(0.0, 0.0),
            st(5.0, 0.0),
            st(0.0, 10.0),
            st(1.0, 10.0),
        ];
        let ramp_then_hold = vec![st(2.0, 2.0), st(3.0, 2.0)];
        // (name, stages, n, due in seconds, None: never)
        let cases: Vec<(&str, &Vec<Stage>, u64, Option<f64>)> = vec![
            ("ramp: first request at once", &ramp, 0, Some(0.0)),
            ("ramp: integral t²/2 reaches 2 at 2 s", &ramp, 2, Some(2.0)),
            ("ramp: 8 at 4 s", &ramp, 8, Some(4.0)),
            ("ramp: 32 at 8 s", &ramp, 32, Some(8.0)),
            (
                "ramp: 49 just before the end",
                &ramp,
                49,
                Some(98f64.sqrt()),
            ),
            ("ramp: 50 = the whole area, never", &ramp, 50, None),
            ("step then hold: constant", &step_hold, 0, Some(0.0)),
            ("step then hold: n / rate", &step_hold, 37, Some(3.7)),
            ("step then hold: last", &step_hold, 99, Some(9.9)),
            ("step then hold: past the end", &step_hold, 100, None),
            ("ramp down: 18 at 2 s", &down, 18, Some(2.0)),
            ("ramp down: 32 at 4 s", &down, 32, Some(4.0)),
            ("ramp down: area 50", &down, 50, None),
            ("spike: before it", &spike, 99, Some(9.9)),
            ("spike: its first request at 10 s", &spike, 100, Some(10.0)),
            ("spike: 100/s within it", &spike, 150, Some(10.5)),
            ("spike: after it, 10/s again", &spike, 200, Some(11.0)),
            ("spike: after it", &spike, 210, Some(12.0)),
            ("spike: the end", &spike, 300, None),
            ("pause: last before it", &pause, 9, Some(0.9)),
            ("pause: first after it", &pause, 10, Some(6.0)),
            ("pause: second after it", &pause, 11, Some(6.1)),
            (
                "ramp then hold: in the ramp",
                &ramp_then_hold,
                1,
                Some(2f64.sqrt()),
            ),
            ("ramp then hold: at the join", &ramp_then_hold, 2, Some(2.0)),
            ("ramp then hold: in the hold", &ramp_then_hold, 5, Some(3.5)),
            ("ramp then hold: last", &ramp_then_hold, 7, Some(4.5)),
            ("ramp then hold: end", &ramp_then_hold, 8, None),
        ];
        for (name, stages, n, due) in cases {
            let pacer = StagedPacer {
                shape: Shape::new(stages).expect("valid shape"),
            };
            let got = pacer.scheduled(n);
            assert!(close(got, due), "{name}: got {got:?}, want {due:?}");
        }
    }

    #[test]
    fn zero_length_and_sad_shapes() {
        // (name, stages, usable, request 0 due)
        let cases: Vec<(&str, Vec<Stage>, bool, Option<f64>)> = vec![
            ("no stages", vec![], false, None),
            (
                "a step alone lasts nothing",
                vec![st(0.0, 10.0)],
                true,
                None,
            ),
            ("holding zero sends nothing", vec![st(5.0, 0.0)], true, None),
            ("negative target", vec![st(5.0, -1.0)], false, None),
            ("NaN target", vec![st(5.0, f64::NAN)], false, None),
            ("infinite target", vec![st(5.0, f64::INFINITY)], false, None),
            (
                "one tiny stage",
                vec![st(0.0, 1.0), st(0.5, 1.0)],
                true,
                Some(0.0),
            ),
        ];
        for (name, stages, usable, due) in cases {
            let shape = Shape::new(&stages);
            assert_eq!(shape.is_some(), usable, "{name}");
            if let Some(shape) = shape {
                let got = StagedPacer { shape }.scheduled(0);
                assert!(close(got, due), "{name}: got {got:?}");
            }
        }
        let pacer = StagedPacer {
            shape: Shape::new(&[st(0.0, 1.0), st(0.5, 1.0)]).unwrap(),
        };
        assert_eq!(
            pacer.scheduled(1),
            None,
            "only one request fits in 0.5 s at 1/s"
        );
        assert_eq!(pacer.scheduled(u64::MAX), None);
        assert_eq!(pacer.pace(secs(10.0), 1), Pace::Stop);
    }

    #[test]
    fn level_and_planned_table() {
        let shape = Shape::new(&[st(10.0, 1000.0), st(0.0, 5000.0), st(20.0, 5000.0)]).unwrap();
        assert_eq!(shape.duration(), secs(30.0));
        assert_eq!(shape.peak(), 5000.0);
        // (t, level)
        for (t, level) in [
            (0.0, 0.0),
            (5.0, 500.0),
            (9.999, 999.9),
            (10.0, 5000.0),
            (29.0, 5000.0),
            (40.0, 5000.0),
        ] {
            assert!(
                (shape.level_at(secs(t)) - level).abs() < 1e-6,
                "level at {t}"
            );
        }
        // Planned requests per second: the mean rate over each second.
        for (a, b, planned) in [
            (0.0, 1.0, 50.0),
            (9.0, 10.0, 950.0),
            (10.0, 11.0, 5000.0),
            (9.5, 10.5, 2987.5),
        ] {
            let got = shape.mean_between(secs(a), secs(b));
            assert!((got - planned).abs() < 1e-6, "[{a}, {b}): {got}");
        }
        assert!((shape.due_until(secs(30.0)) - 105_000.0).abs() < 1e-6);
        // Stages by time; the zero-length step never runs.
        for (t, stage) in [
            (0.0, Some(0)),
            (9.9, Some(0)),
            (10.0, Some(2)),
            (29.9, Some(2)),
            (30.0, None),
        ] {
            assert_eq!(shape.stage_at(secs(t)), stage, "stage at {t}");
        }
    }

    #[test]
    fn next_above_table() {
        // Closed model: worker k (0-based) runs while the level is above k.
        let up_down = Shape::new(&[st(10.0, 10.0), st(10.0, 10.0), st(10.0, 0.0)]).unwrap();
        let step = Shape::new(&[st(0.0, 2.0), st(5.0, 2.0), st(0.0, 8.0), st(5.0, 8.0)]).unwrap();
        // (name, shape, k, after, expected)
        let cases = [
            ("worker 0 starts at once", &up_down, 0.0, 0.0, Some(0.0)),
            (
                "worker 4 when the ramp passes 4",
                &up_down,
                4.0,
                0.0,
                Some(4.0),
            ),
            ("worker 9 at 9 s", &up_down, 9.0, 0.0, Some(9.0)),
            ("already running", &up_down, 4.0, 15.0, Some(15.0)),
            ("retired, never again", &up_down, 4.0, 27.0, None),
            ("never wanted", &up_down, 10.0, 0.0, None),
            ("step: worker 1 at once", &step, 1.0, 0.0, Some(0.0)),
            ("step: worker 5 at the step", &step, 5.0, 0.0, Some(5.0)),
            ("step: worker 7 at the step", &step, 7.0, 1.0, Some(5.0)),
            ("step: worker 8 never", &step, 8.0, 0.0, None),
        ];
        for (name, shape, k, after, expected) in cases {
            let got = shape.next_above(k, secs(after));
            let ok = match (got, expected) {
                (None, None) => true,
                (Some(g), Some(e)) => (g.as_secs_f64() - e).abs() < 1e-6,
                _ => false,
            };
            assert!(ok, "{name}: got {got:?}, want {expected:?}");
        }
    }

    #[test]
    fn strided_pacers_share_one_schedule() {
        let shape = Shape::new(&[st(10.0, 10.0)]).unwrap();
        let whole = StagedPacer {
            shape: shape.clone(),
        };
        let mut merged: Vec<Duration> = (0..3)
            .flat_map(|offset| {
                let p = Strided {
                    inner: StagedPacer {
                        shape: shape.clone(),
                    },
                    stride: 3,
                    offset,
                };
                (0..).map_while(move |n| p.scheduled(n)).collect::<Vec<_>>()
            })
            .collect();
        merged.sort();
        let all: Vec<Duration> = (0..).map_while(|n| whole.scheduled(n)).collect();
        assert_eq!(merged, all);
        assert_eq!(all.len(), 50);
        let constant = Strided {
            inner: ConstantPacer { rate_per_s: 100.0 },
            stride: 2,
            offset: 1,
        };
        assert_eq!(constant.scheduled(0), Some(Duration::from_millis(10)));
        assert_eq!(constant.scheduled(1), Some(Duration::from_millis(30)));
        assert_eq!(constant.scheduled(u64::MAX), None, "overflow is no request");
    }
}
