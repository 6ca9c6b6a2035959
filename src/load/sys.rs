//! The generator's process plumbing: Ctrl-C and SIGTERM as a flag every phase polls, the
//! open-files limit, and how many connections this machine lets a run hold open.

use super::bounds;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C (SIGINT) or SIGTERM has arrived since the handlers were installed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// What an interrupted run records as the reason it stopped.
pub const INTERRUPTED_WHY: &str = "interrupted (Ctrl-C / SIGTERM)";

/// `fut`'s output, or None as soon as Ctrl-C (or SIGTERM) arrives: for the steps before
/// the load, which have no `Control` to stop them yet.
pub async fn unless_interrupted<T>(fut: impl std::future::Future<Output = T>) -> Option<T> {
    let interrupt = async {
        while !interrupted() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        biased;
        r = fut => Some(r),
        () = interrupt => None,
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C or SIGTERM stops the run; what ran is reported and written. The handler is reset
/// once it has fired, so a second Ctrl-C ends the process at once.
pub fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
    // sigaction struct is zeroed and then filled in before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}

/// Raises the open-files limit to its hard maximum: a burst of 10,000 connections needs
/// that many descriptors here and in the bundled monitor, which inherits the limit.
pub fn raise_open_files_limit() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        lim.rlim_cur
    }
}

/// How many connections to one target this process can hold open at once: one open file
/// each (the limit raised to its hard maximum first, as a run does), less a reserve for the
/// files a run needs besides (the runtimes' event fds, the bundled monitor's pipes, the
/// read-back's connections), and one local port each (a target address takes as many
/// connections from one source address as there are ephemeral ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// The open-files limit (`ulimit -n`) after raising it.
    pub open_files: u64,
    /// Ephemeral ports (net.ipv4.ip_local_port_range), when known.
    pub local_ports: Option<u64>,
    /// Connections a run may hold open.
    pub usable: u64,
}

impl ConnectionBudget {
    pub fn detect(threads: usize) -> ConnectionBudget {
        let open_files = raise_open_files_limit();
        let local_ports = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| {
                let mut it = text.split_whitespace().map(|n| n.parse::<u64>().ok());
                let (low, high) = (it.next()??, it.next()??);
                high.checked_sub(low).map(|n| n + 1)
            });
        let reserve = 64 + 4 * threads as u64;
        // Unknown (getrlimit failed): no claim is made.
        let files = if open_files == 0 {
            u64::MAX
        } else {
            open_files.saturating_sub(reserve)
        };
        ConnectionBudget {
            open_files,
            local_ports,
            usable: files.min(local_ports.unwrap_or(u64::MAX)),
        }
    }

    /// Why `wanted` connections do not fit, for a message that names where the number came
    /// from; None when they fit.
    pub fn refuse(&self, wanted: u64) -> Option<String> {
        if wanted <= self.usable {
            return None;
        }
        let ports = self
            .local_ports
            .map(|p| {
                format!(
                    " and {} local ports per target address",
                    bounds::thousands(p)
                )
            })
            .unwrap_or_default();
        Some(format!(
            "that many connections held open at once is more than this machine allows: the \
             open-files limit is {} (ulimit -n, raised to its hard limit){ports}, so at most \
             {} here; lower it, or raise the hard open-files limit",
            bounds::thousands(self.open_files),
            bounds::thousands(self.usable),
        ))
    }
}
