//! How busy the machine was with other work while a run ran: other processes' CPU, CPU steal
//! and the load average, read from /proc (Linux; not recorded elsewhere).

pub use crate::results::MachineLoad;

/// Cumulative CPU counters at one moment, in clock ticks (USER_HZ, as /proc reports them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSnapshot {
    /// All CPU time of the machine: every core, every state.
    total: u64,
    /// Time no process was charged for: idle, iowait and interrupt handling.
    idle: u64,
    /// Time taken by the hypervisor for other guests.
    steal: u64,
    /// Time nothing ran at all: idle and iowait (interrupt handling excluded).
    spare: u64,
    /// User and system time of this process and of the monitor child.
    own: u64,
    /// The monitor child's part of `own`.
    child: u64,
}

impl CpuSnapshot {
    /// The counters now, with `child` (the bundled monitor's pid) counted as our own; None
    /// where /proc cannot be read.
    pub fn take(child: Option<u32>) -> Option<CpuSnapshot> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let (total, idle, steal, spare) = parse_proc_stat(&stat)?;
        let own = process_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        // A child that has already exited adds nothing (the difference saturates).
        let child = child.map_or(0, |pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| process_ticks(&s))
                .unwrap_or(0)
        });
        Some(CpuSnapshot {
            total,
            idle,
            steal,
            spare,
            own: own + child,
            child,
        })
    }
}

/// The machine between two snapshots, with the load average read at the end; None when no
/// time passed or the counters went backwards.
pub fn between(start: &CpuSnapshot, end: &CpuSnapshot, load_avg_1m: f64) -> Option<MachineLoad> {
    let total = end.total.checked_sub(start.total).filter(|t| *t > 0)?;
    let busy = |s: &CpuSnapshot| s.total.saturating_sub(s.idle).saturating_sub(s.steal);
    let busy = busy(end).checked_sub(busy(start))?;
    let own = end.own.saturating_sub(start.own);
    let steal = end.steal.checked_sub(start.steal)?;
    let pct = |ticks: u64| ticks as f64 / total as f64 * 100.0;
    let had_child = end.child > 0 || start.child > 0;
    Some(MachineLoad {
        other_cpu_pct: pct(busy.saturating_sub(own)),
        steal_pct: pct(steal),
        load_avg_1m,
        idle_pct: Some(pct(end.spare.saturating_sub(start.spare))),
        monitor_cpu_pct: had_child.then(|| pct(end.child.saturating_sub(start.child))),
    })
}

/// CPU time this process has used so far (user + system, all its threads), seconds.
pub fn own_cpu_s() -> Option<f64> {
    let ticks = process_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// The 1-minute load average, from /proc/loadavg.
pub fn load_avg_1m() -> Option<f64> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// (total, idle + iowait + irq + softirq, steal, idle + iowait) from the aggregate "cpu" line
/// of /proc/stat.
/// Its fields are user nice system idle iowait irq softirq steal guest guest_nice; guest time
/// is already in user and nice, so only the first eight add up to the total. Interrupt time is
/// counted with idle, as nobody's: no process is charged for it, and on a loopback run it is
/// nearly all the run's own packets (12-15 % of the machine with nothing else running, which
/// read as "other work" on every run).
/// The last, idle and iowait alone, is the time nothing was to be done at all: a machine
/// with little of it left was saturated, whoever used it.
fn parse_proc_stat(text: &str) -> Option<(u64, u64, u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 4 {
        return None;
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    let total = (0..8).map(field).sum();
    Some((
        total,
        field(3) + field(4) + field(5) + field(6),
        field(7),
        field(3) + field(4),
    ))
}

/// utime + stime of a process, clock ticks, from its /proc/PID/stat line. The command name in
/// parentheses may hold spaces and parentheses, so fields are counted after the last ')':
/// state is the first there, utime the 12th, stime the 13th.
fn process_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_counts_the_first_eight_fields() {
        let text = "cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 50 2 25 400 10 1 1 5 3 0\nintr 1 2\n";
        assert_eq!(parse_proc_stat(text), Some((990, 825, 10, 820)));
        // Old kernels without steal and guest columns.
        assert_eq!(parse_proc_stat("cpu 1 2 3 4\n"), Some((10, 4, 0, 4)));
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 x 3 4\n"), None);
    }

    #[test]
    fn process_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (stepflow (x) bench) S 1 4242 4242 0 -1 4194304 900 0 0 0 \
                    250 75 0 0 20 0 6 0 1234 5678 90 18446744073709551615";
        assert_eq!(process_ticks(line), Some(325));
        assert_eq!(process_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn load_average_is_the_first_field() {
        assert_eq!(parse_loadavg("2.51 1.20 0.80 3/412 9999\n"), Some(2.51));
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn other_work_is_the_busy_time_that_was_not_ours() {
        let start = CpuSnapshot {
            total: 1_000,
            idle: 600,
            steal: 0,
            spare: 550,
            own: 100,
            child: 40,
        };
        // 1000 ticks pass: 200 idle (150 with nothing to do, 50 interrupts), 50 stolen, 750
        // busy of which 600 ours, 250 of it the monitor's.
        let end = CpuSnapshot {
            total: 2_000,
            idle: 800,
            steal: 50,
            spare: 700,
            own: 700,
            child: 290,
        };
        let m = between(&start, &end, 3.5).unwrap();
        assert_eq!(
            m,
            MachineLoad {
                other_cpu_pct: 15.0,
                steal_pct: 5.0,
                load_avg_1m: 3.5,
                idle_pct: Some(15.0),
                monitor_cpu_pct: Some(25.0),
            }
        );
        // Without a bundled monitor, its share is unknown, not 0.
        let alone = |s: CpuSnapshot| CpuSnapshot { child: 0, ..s };
        assert_eq!(
            between(&alone(start), &alone(end), 1.0)
                .unwrap()
                .monitor_cpu_pct,
            None
        );
        // Our own time can exceed the busy time counted (the counters are sampled apart):
        // other work is then none, not negative.
        let ours = CpuSnapshot { own: 2_000, ..end };
        assert_eq!(between(&start, &ours, 1.0).unwrap().other_cpu_pct, 0.0);
        assert_eq!(between(&start, &start, 1.0), None, "no time passed");
        assert_eq!(between(&end, &start, 1.0), None, "counters went backwards");
    }

    #[test]
    fn a_snapshot_of_this_machine_reads() {
        // Linux is where the harness runs; elsewhere nothing is recorded.
        if cfg!(target_os = "linux") {
            let a = CpuSnapshot::take(None).expect("/proc/stat and /proc/self/stat");
            assert!(a.total > 0 && a.idle <= a.total);
            assert!(load_avg_1m().is_some());
        }
    }
}
