//! This process's own resource use: resident memory and CPU time, from /proc and getrusage.

/// Memory and CPU figures of the current process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Resident set size now, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size since start, bytes.
    pub rss_peak_bytes: u64,
    /// The anonymous part of `rss_bytes` (heap, stacks), bytes.
    pub rss_anon_bytes: u64,
    /// The file-backed part of `rss_bytes` (the memory-mapped database, the program's code),
    /// bytes. A page mapped by several mappings counts once per mapping, and SQLite maps the
    /// database once per connection.
    pub rss_file_bytes: u64,
    /// CPU time in user mode, seconds.
    pub cpu_user_s: f64,
    /// CPU time in kernel mode, seconds.
    pub cpu_system_s: f64,
}

pub fn usage() -> Usage {
    let mut u = Usage::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let kib = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(0, |v| v * 1024)
            };
            if line.starts_with("VmRSS:") {
                u.rss_bytes = kib(line);
            } else if line.starts_with("VmHWM:") {
                u.rss_peak_bytes = kib(line);
            } else if line.starts_with("RssAnon:") {
                u.rss_anon_bytes = kib(line);
            } else if line.starts_with("RssFile:") {
                u.rss_file_bytes = kib(line);
            }
        }
    }
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
        let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        u.cpu_user_s = secs(ru.ru_utime);
        u.cpu_system_s = secs(ru.ru_stime);
    }
    u
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_nonzero_memory_for_a_running_process() {
        let u = super::usage();
        assert!(u.rss_bytes > 0);
        assert!(u.rss_peak_bytes >= u.rss_bytes);
        assert!(u.rss_anon_bytes > 0 && u.rss_file_bytes > 0, "{u:?}");
        assert!(u.rss_anon_bytes + u.rss_file_bytes <= u.rss_bytes, "{u:?}");
    }
}
