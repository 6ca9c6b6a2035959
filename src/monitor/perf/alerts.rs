//! Alert rules over the server's own figures, their thresholds (`serve --alerts FILE`, TOML,
//! with the write-up's values as defaults) and the state of the alerts that fire.
//!
//! The write-up's monitoring strategy: "API response > 10 ms, WAL file > 50 MB, memory >
//! 500 MB, error rate > 0.1 %". Those are the `warning` thresholds; `info` is below, and
//! `critical` and `emergency` above. Latency and error rate are judged over a sliding window
//! (the last `window_s` seconds), the gauges as they are now.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Alert levels, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Critical,
    Emergency,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::Info,
        Level::Warning,
        Level::Critical,
        Level::Emergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::Emergency => "emergency",
        }
    }
}

/// The thresholds of one rule; a level left out never fires.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub info: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub emergency: Option<f64>,
}

impl Thresholds {
    const fn new(info: f64, warning: f64, critical: f64, emergency: f64) -> Self {
        Thresholds {
            info: Some(info),
            warning: Some(warning),
            critical: Some(critical),
            emergency: Some(emergency),
        }
    }

    fn get(&self, level: Level) -> Option<f64> {
        match level {
            Level::Info => self.info,
            Level::Warning => self.warning,
            Level::Critical => self.critical,
            Level::Emergency => self.emergency,
        }
    }

    /// The highest level whose threshold `value` is above, and that threshold.
    pub fn level_of(&self, value: f64) -> Option<(Level, f64)> {
        Level::ALL
            .iter()
            .rev()
            .find_map(|&l| self.get(l).filter(|t| value > *t).map(|t| (l, t)))
    }
}

/// The rules: name, unit, what it measures, the largest threshold accepted, the defaults.
pub struct Rule {
    pub name: &'static str,
    pub unit: &'static str,
    pub what: &'static str,
    pub max: f64,
    pub defaults: Thresholds,
}

pub const RULES: &[Rule] = &[
    Rule {
        name: "route_p99_ms",
        unit: "ms",
        what: "p99 latency of a route over the window",
        max: 3_600_000.0,
        defaults: Thresholds::new(5.0, 10.0, 50.0, 500.0),
    },
    Rule {
        name: "error_rate_pct",
        unit: "%",
        what: "share of answers that were 5xx over the window",
        max: 100.0,
        defaults: Thresholds::new(0.01, 0.1, 1.0, 10.0),
    },
    Rule {
        name: "wal_mb",
        unit: "MB",
        what: "size of the write-ahead log file",
        max: 1_048_576.0,
        defaults: Thresholds::new(25.0, 50.0, 64.0, 256.0),
    },
    Rule {
        name: "rss_mb",
        unit: "MB",
        what: "resident memory of the monitor",
        max: 1_048_576.0,
        defaults: Thresholds::new(250.0, 500.0, 1000.0, 4000.0),
    },
    Rule {
        name: "writer_queue_depth",
        unit: "writes",
        what: "writes queued for the writer thread, highest over the window",
        max: 100_000_000.0,
        defaults: Thresholds::new(64.0, 256.0, 1024.0, 8192.0),
    },
    Rule {
        name: "checkpoint_lag_pages",
        unit: "pages",
        what: "WAL pages not copied back into the database by the last checkpoint",
        max: 1_000_000_000.0,
        defaults: Thresholds::new(2000.0, 4000.0, 12000.0, 16000.0),
    },
];

/// Range of `window_s`, seconds.
pub const WINDOW_RANGE: (u64, u64) = (1, 3600);
/// Range of `min_requests`.
pub const MIN_REQUESTS_RANGE: (u64, u64) = (1, 1_000_000_000);

/// The alerts configuration, as `--alerts FILE` gives it or the defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertConfig {
    /// Seconds of the sliding window for latency and error rate.
    pub window_s: u64,
    /// Requests a route needs in the window before its latency or error rate is judged.
    pub min_requests: u64,
    pub rules: BTreeMap<&'static str, Thresholds>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            window_s: 60,
            min_requests: 20,
            rules: RULES.iter().map(|r| (r.name, r.defaults)).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    window_s: Option<i64>,
    min_requests: Option<i64>,
    #[serde(default)]
    rules: BTreeMap<String, Thresholds>,
}

impl AlertConfig {
    pub fn load(path: &Path) -> Result<AlertConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        AlertConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the TOML; a rule or level left out keeps its default. Every threshold must be
    /// more than 0 and at most the rule's largest, and the levels given must increase.
    pub fn parse(text: &str) -> Result<AlertConfig, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        let mut config = AlertConfig::default();
        if let Some(w) = file.window_s {
            config.window_s = check_count("window_s", w, WINDOW_RANGE)?;
        }
        if let Some(m) = file.min_requests {
            config.min_requests = check_count("min_requests", m, MIN_REQUESTS_RANGE)?;
        }
        for (name, given) in file.rules {
            let Some(rule) = RULES.iter().find(|r| r.name == name) else {
                let known: Vec<&str> = RULES.iter().map(|r| r.name).collect();
                return Err(format!(
                    "rules.{name}: no such rule; the rules are {}",
                    known.join(", ")
                ));
            };
            let t = config
                .rules
                .get_mut(rule.name)
                .expect("every rule has defaults");
            let mut last: Option<(Level, f64)> = None;
            for level in Level::ALL {
                let value = match given.get(level) {
                    Some(v) => {
                        if !(v.is_finite() && v > 0.0 && v <= rule.max) {
                            return Err(format!(
                                "rules.{name}.{}: must be more than 0 and at most {} {}, got {v}",
                                level.as_str(),
                                rule.max,
                                rule.unit
                            ));
                        }
                        Some(v)
                    }
                    None => t.get(level),
                };
                match level {
                    Level::Info => t.info = value,
                    Level::Warning => t.warning = value,
                    Level::Critical => t.critical = value,
                    Level::Emergency => t.emergency = value,
                }
                if let Some(v) = value {
                    if let Some((l, prev)) = last {
                        if v <= prev {
                            return Err(format!(
                                "rules.{name}: {} ({v}) must be above {} ({prev}); \
                                 give every level of the rule when changing its order",
                                level.as_str(),
                                l.as_str()
                            ));
                        }
                    }
                    last = Some((level, v));
                }
            }
        }
        Ok(config)
    }
}

fn check_count(key: &str, value: i64, (min, max): (u64, u64)) -> Result<u64, String> {
    u64::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| format!("{key}: must be from {min} to {max}, got {value}"))
}

/// What one rule measured for one subject (a route, or the whole server).
#[derive(Debug, Clone)]
pub struct Measured {
    pub rule: &'static str,
    pub subject: Option<&'static str>,
    pub value: f64,
}

/// An alert that fires.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub level: Level,
    pub rule: &'static str,
    /// The route, for per-route rules.
    pub subject: Option<&'static str>,
    pub value: f64,
    pub threshold: f64,
    pub unit: &'static str,
    pub message: String,
    /// When it started firing (at any level), RFC 3339.
    pub since: String,
    /// When it reached the level it is at, RFC 3339.
    pub level_since: String,
}

/// The alerts firing now, kept from one evaluation to the next so `since` survives.
#[derive(Debug, Default)]
pub struct AlertState {
    firing: BTreeMap<(&'static str, Option<&'static str>), Alert>,
}

impl AlertState {
    /// Evaluates every measurement: alerts start, change level or end.
    pub fn update(&mut self, config: &AlertConfig, measured: &[Measured], now: &str) {
        let mut next = BTreeMap::new();
        for m in measured {
            let Some(rule) = RULES.iter().find(|r| r.name == m.rule) else {
                continue;
            };
            let t = config
                .rules
                .get(rule.name)
                .copied()
                .unwrap_or(rule.defaults);
            let Some((level, threshold)) = t.level_of(m.value) else {
                continue;
            };
            let key = (rule.name, m.subject);
            let (since, level_since) = match self.firing.get(&key) {
                Some(old) if old.level == level => (old.since.clone(), old.level_since.clone()),
                Some(old) => (old.since.clone(), now.to_string()),
                None => (now.to_string(), now.to_string()),
            };
            let subject = m.subject.map(|s| format!(" on {s}")).unwrap_or_default();
            next.insert(
                key,
                Alert {
                    level,
                    rule: rule.name,
                    subject: m.subject,
                    value: m.value,
                    threshold,
                    unit: rule.unit,
                    message: format!(
                        "{}{subject}: {:.3} {} is above the {} threshold {} {}",
                        rule.what,
                        m.value,
                        rule.unit,
                        level.as_str(),
                        threshold,
                        rule.unit
                    ),
                    since,
                    level_since,
                },
            );
        }
        self.firing = next;
    }

    /// Firing alerts, the most severe first.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.firing.values().cloned().collect();
        v.sort_by(|a, b| b.level.cmp(&a.level).then(a.rule.cmp(b.rule)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_write_ups_warning_thresholds() {
        let c = AlertConfig::default();
        assert_eq!(c.rules["route_p99_ms"].warning, Some(10.0));
        assert_eq!(c.rules["wal_mb"].warning, Some(50.0));
        assert_eq!(c.rules["rss_mb"].warning, Some(500.0));
        assert_eq!(c.rules["error_rate_pct"].warning, Some(0.1));
        assert_eq!(c.window_s, 60);
    }

    #[test]
    fn a_file_overrides_some_levels_and_keeps_the_rest() {
        let c = AlertConfig::parse("window_s = 5\n[rules.route_p99_ms]\ninfo = 1\nwarning = 2\n")
            .unwrap();
        assert_eq!(c.window_s, 5);
        let t = c.rules["route_p99_ms"];
        assert_eq!(
            (t.info, t.warning, t.critical),
            (Some(1.0), Some(2.0), Some(50.0))
        );
        assert_eq!(c.rules["wal_mb"], AlertConfig::default().rules["wal_mb"]);
    }

    #[test]
    fn bad_files_are_refused_naming_the_key() {
        for (text, says) in [
            (
                "[rules.route_p99_ms]\nwarning = -1",
                "rules.route_p99_ms.warning: must be more than 0",
            ),
            ("[rules.route_p99_ms]\nwarning = 0", "must be more than 0"),
            ("[rules.error_rate_pct]\ncritical = 101", "at most 100 %"),
            (
                "[rules.wal_mb]\nwarning = 100",
                "critical (64) must be above warning (100)",
            ),
            ("[rules.nope]\nwarning = 1", "rules.nope: no such rule"),
            ("[rules.wal_mb]\nwarn = 1", "unknown field `warn`"),
            ("window_s = 0", "window_s: must be from 1 to 3600, got 0"),
            ("window_s = 100000", "window_s: must be from 1 to 3600"),
            ("min_requests = -5", "min_requests: must be from 1"),
            ("window = 5", "unknown field `window`"),
            ("[rules.rss_mb]\nwarning = inf", "must be more than 0"),
        ] {
            let err = AlertConfig::parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn alerts_start_escalate_keep_their_since_and_end() {
        let c = AlertConfig::default();
        let mut s = AlertState::default();
        let m = |v| {
            vec![Measured {
                rule: "route_p99_ms",
                subject: Some("/api/health"),
                value: v,
            }]
        };
        s.update(&c, &m(3.0), "t0");
        assert!(s.alerts().is_empty());
        s.update(&c, &m(12.0), "t1");
        let a = &s.alerts()[0];
        assert_eq!(
            (a.level, a.threshold, a.since.as_str()),
            (Level::Warning, 10.0, "t1")
        );
        s.update(&c, &m(60.0), "t2");
        let a = &s.alerts()[0];
        assert_eq!(a.level, Level::Critical);
        assert_eq!((a.since.as_str(), a.level_since.as_str()), ("t1", "t2"));
        s.update(&c, &m(10.0), "t3"); // not above 10: warning ends, info stays
        assert_eq!(s.alerts()[0].level, Level::Info);
        s.update(&c, &m(1.0), "t4");
        assert!(s.alerts().is_empty());
    }
}
