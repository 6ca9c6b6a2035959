//! The range of every number a user gives the generator, in a scenario file or as a flag.
//! Scenario validation and the command line check against these same bounds, so that a
//! value refused in one is refused in the other, in the same words, before any load is sent;
//! README.md lists them. Past them lie panics (an `Instant` plus a duration of centuries),
//! memory the machine does not have (ten million connections) or runs of years.

use std::time::Duration;

/// An inclusive range of whole numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub min: u64,
    pub max: u64,
}

impl Count {
    /// `value` if it is in range, else what the range is and what was given.
    pub fn check(&self, value: i64) -> Result<u64, String> {
        match u64::try_from(value) {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(format!("must be {}, got {value}", self.describe())),
        }
    }

    /// Parses a flag's value and checks it.
    pub fn parse(&self, text: &str) -> Result<u64, String> {
        let value: i64 = text.trim().parse().map_err(|_| {
            format!(
                "{text:?} is not a whole number; it must be {}",
                self.describe()
            )
        })?;
        self.check(value)
    }

    /// `parse` for flags held as u32 (every bound that fits one).
    pub fn parse_u32(&self, text: &str) -> Result<u32, String> {
        self.parse(text)
            .map(|v| u32::try_from(v).expect("the bound fits u32"))
    }

    pub fn describe(&self) -> String {
        if self.min == 0 {
            format!("at most {}", thousands(self.max))
        } else {
            format!("from {} to {}", thousands(self.min), thousands(self.max))
        }
    }
}

/// An inclusive range of finite numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    pub min: f64,
    pub max: f64,
    /// Whether `min` itself is refused (a limit of 0 % means nothing).
    pub min_exclusive: bool,
    /// What the number counts, after it: "requests per second", "percent".
    pub unit: &'static str,
}

impl Number {
    pub fn check(&self, value: f64) -> Result<f64, String> {
        let above_min = if self.min_exclusive {
            value > self.min
        } else {
            value >= self.min
        };
        if value.is_finite() && above_min && value <= self.max {
            Ok(value)
        } else {
            // Debug writes 1e-300 as that, where Display spells out its 300 zeros.
            Err(format!("must be {}, got {value:?}", self.describe()))
        }
    }

    pub fn parse(&self, text: &str) -> Result<f64, String> {
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a number; it must be {}", self.describe()))?;
        self.check(value)
    }

    pub fn describe(&self) -> String {
        let (min, max) = (number(self.min), number(self.max));
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        if self.min_exclusive {
            format!("more than {min} and at most {max}{unit}")
        } else {
            format!("from {min} to {max}{unit}")
        }
    }
}

/// A range of durations: zero allowed or not, and a largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Whether zero is refused (a measured window or a timeout of nothing).
    pub nonzero: bool,
    pub max: Duration,
    /// The largest, as written in messages.
    pub max_text: &'static str,
}

impl Span {
    pub fn check(&self, value: Duration) -> Result<Duration, String> {
        if self.nonzero && value.is_zero() {
            Err("must be more than 0, e.g. 30s".into())
        } else if value > self.max {
            Err(format!("must be at most {}, got {value:?}", self.max_text))
        } else {
            Ok(value)
        }
    }

    pub fn parse(&self, text: &str) -> Result<Duration, String> {
        let value = super::duration::parse_duration(text).map_err(|e| e.to_string())?;
        self.check(value)
    }
}

/// Measured time of a run (`duration`, `--duration`): a day at most.
pub const DURATION: Span = Span {
    nonzero: true,
    max: Duration::from_secs(24 * 3600),
    max_text: "24h",
};
/// Warm-up before measuring (`warmup`, `--warmup`).
pub const WARMUP: Span = Span {
    nonzero: false,
    max: Duration::from_secs(3600),
    max_text: "1h",
};
/// One request's time limit (`--timeout`).
pub const TIMEOUT: Span = Span {
    nonzero: true,
    max: Duration::from_secs(3600),
    max_text: "1h",
};
/// Open model: requests per second (`load.rate`, `--rate`).
pub const RATE: Number = Number {
    min: 0.001,
    max: 10_000_000.0,
    min_exclusive: false,
    unit: "requests per second",
};
/// Workers of the closed model, requests of a burst, executions in flight in a flow, and the
/// open model's in-flight cap (`load.concurrency`, `--concurrency`, `--max-in-flight`). Each
/// is a connection held open: how many this machine allows is checked again at run time.
pub const CONCURRENCY: Count = Count {
    min: 1,
    max: 100_000,
};
/// Measured requests per operation or in total (`requests`, `--requests`).
pub const REQUESTS: Count = Count {
    min: 1,
    max: 1_000_000_000,
};
/// Executions created before measuring (`seed`).
pub const SEED: Count = Count {
    min: 0,
    max: 1_000_000,
};
/// An operation's share of a mix (`weight`).
pub const WEIGHT: Count = Count {
    min: 1,
    max: 1_000_000,
};
/// `list_executions` page size (`limit`): what the API accepts.
pub const LIST_LIMIT: Count = Count { min: 1, max: 1000 };
/// Log lines per `append_logs` request (`lines`) and per flow step (`flow.log_lines`, from
/// 0): 10,000 lines stay well under the monitor's 1 MiB body limit.
pub const LOG_LINES: Count = Count {
    min: 1,
    max: 10_000,
};
pub const FLOW_LOG_LINES: Count = Count {
    min: 0,
    max: 10_000,
};
/// Executions a flow simulates (`flow.executions`, `--executions`).
pub const FLOW_EXECUTIONS: Count = Count {
    min: 1,
    max: 1_000_000,
};
/// Steps and artifacts per simulated execution (`flow.steps`, `flow.artifacts`).
pub const FLOW_STEPS: Count = Count { min: 0, max: 1000 };
pub const FLOW_ARTIFACTS: Count = Count { min: 0, max: 1000 };
/// Requests a whole flow sends (executions × requests per execution), as `REQUESTS`.
pub const FLOW_REQUESTS: u64 = REQUESTS.max;
/// The monitor's WebSocket event buffer (`serve --ws-buffer`), events.
pub const WS_BUFFER: Count = Count {
    min: crate::monitor::events::BUFFER_MIN as u64,
    max: crate::monitor::events::BUFFER_MAX as u64,
};
/// Subscriber connections of a fan-out run (`--subscribers`, `subscribers`): each is a
/// connection held open, checked again at run time against what the machine allows.
pub const SUBSCRIBERS: Count = Count {
    min: 1,
    max: 100_000,
};
/// Events per second a fan-out run's writers produce (`--rate`, `rate`).
pub const EVENT_RATE: Number = Number {
    min: 0.1,
    max: 1_000_000.0,
    min_exclusive: false,
    unit: "events per second",
};
/// Writes a fan-out run keeps in flight at once (`--writers`, `writers`).
pub const WRITERS: Count = Count { min: 1, max: 1024 };
/// Generator threads (`--threads`).
pub const THREADS: Count = Count { min: 1, max: 256 };
/// The monitor's async worker threads (`serve --workers`).
pub const SERVE_WORKERS: Count = Count { min: 1, max: 512 };
/// Share of reads in a mix (`--read-ratio`).
pub const READ_RATIO: Number = Number {
    min: 0.0,
    max: 1.0,
    min_exclusive: false,
    unit: "",
};
/// A regression limit of `compare` in percent (`[gate]`, `--limit`); the error rate's
/// limit is in percentage points, so at most 100.
pub const GATE_PERCENT: Number = Number {
    min: 0.0,
    max: 1000.0,
    min_exclusive: true,
    unit: "percent",
};
pub const GATE_ERROR_RATE: Number = Number {
    min: 0.0,
    max: 100.0,
    min_exclusive: true,
    unit: "percentage points",
};

/// Load shapes (`[[load.stages]]`, `--stages`): how many stages, each one's length (0 is a
/// step), its target rate (open model) or workers (closed model), and the whole shape's
/// length, which is the run's (warm-up included), so at most `DURATION`'s.
pub const STAGES: Count = Count { min: 1, max: 1000 };
pub const STAGE_DURATION: Span = Span {
    nonzero: false,
    max: Duration::from_secs(24 * 3600),
    max_text: "24h",
};
pub const STAGE_RATE: Number = Number {
    min: 0.0,
    max: 10_000_000.0,
    min_exclusive: false,
    unit: "requests per second",
};
pub const STAGE_WORKERS: Count = Count {
    min: 0,
    max: 100_000,
};

/// Requests one simulated execution sends: create, per step add + two updates + a log
/// append (when it has lines), per artifact one upload, and the final status.
pub fn requests_per_flow(steps: u64, artifacts: u64, log_lines: u64) -> u64 {
    let per_step = 3 + u64::from(log_lines > 0);
    steps
        .saturating_mul(per_step)
        .saturating_add(artifacts)
        .saturating_add(2)
}

/// Checks a flow's total against `FLOW_REQUESTS`.
pub fn check_flow_total(
    executions: u64,
    steps: u64,
    artifacts: u64,
    log_lines: u64,
) -> Result<(), String> {
    let each = requests_per_flow(steps, artifacts, log_lines);
    match executions.checked_mul(each) {
        Some(total) if total <= FLOW_REQUESTS => Ok(()),
        _ => Err(format!(
            "{executions} executions of {each} requests each make more than {} requests; \
             lower flow.executions, steps or artifacts",
            thousands(FLOW_REQUESTS)
        )),
    }
}

/// 100000 as "100,000".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        thousands(v.abs() as u64)
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_numbers_and_spans_check_both_ends() {
        assert_eq!(CONCURRENCY.check(1), Ok(1));
        assert_eq!(CONCURRENCY.check(100_000), Ok(100_000));
        assert_eq!(
            CONCURRENCY.check(10_000_000),
            Err("must be from 1 to 100,000, got 10000000".into())
        );
        assert!(CONCURRENCY.check(0).is_err());
        assert!(CONCURRENCY.check(-1).is_err());
        assert_eq!(SEED.check(0), Ok(0));
        assert!(SEED
            .parse("1e3")
            .unwrap_err()
            .contains("not a whole number"));
        assert_eq!(
            SEED.check(2_000_000),
            Err("must be at most 1,000,000, got 2000000".into())
        );

        assert_eq!(RATE.check(0.001), Ok(0.001));
        for bad in [1e-300, 0.0, -5.0, 1e12, f64::NAN, f64::INFINITY] {
            let e = RATE.check(bad).unwrap_err();
            assert!(
                e.starts_with("must be from 0.001 to 10,000,000 requests per second"),
                "{e}"
            );
        }
        assert!(GATE_PERCENT.check(0.0).is_err());
        assert_eq!(GATE_PERCENT.check(1000.0), Ok(1000.0));
        assert!(GATE_ERROR_RATE.check(101.0).is_err());
        assert!(READ_RATIO.parse("nan").is_err());

        assert_eq!(
            DURATION.parse("10000000000000000000s"),
            Err("must be at most 24h, got 10000000000000000000s".into())
        );
        assert_eq!(
            DURATION.parse("0"),
            Err("must be more than 0, e.g. 30s".into())
        );
        assert_eq!(DURATION.parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(WARMUP.parse("0s"), Ok(Duration::ZERO));
        assert!(WARMUP.parse("61m").is_err());
        assert!(TIMEOUT
            .parse("soon")
            .unwrap_err()
            .contains("invalid duration"));
    }

    #[test]
    fn flow_totals_are_bounded() {
        assert_eq!(requests_per_flow(4, 2, 5), 2 + 16 + 2);
        assert_eq!(requests_per_flow(4, 2, 0), 2 + 12 + 2);
        assert!(check_flow_total(121, 4, 2, 5).is_ok());
        assert!(check_flow_total(1_000_000, 1000, 1000, 10).is_err());
        assert!(check_flow_total(u64::MAX, u64::MAX / 2, 0, 0).is_err());
    }

    #[test]
    fn thousands_groups_digits() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (100_000, "100,000"),
            (1_000_000_000, "1,000,000,000"),
        ] {
            assert_eq!(thousands(n), s);
        }
    }
}
