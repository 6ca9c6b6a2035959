//! The open model's send clock, on the generator thread's own runtime: a timerfd armed for
//! the next intended send time, waited for in the runtime's epoll with the sockets.
//!
//! The runtime's own timer ticks in whole milliseconds, which would make every request up to
//! 1 ms late (and lateness is latency, measured from the intended time). A pacer thread
//! sleeping with the OS's high-resolution timer is precise but costs two context switches
//! per request and competes for the cores: `perf record` of `run null --rate 40000` put 22 %
//! of the generator's samples in its two pacer threads, nearly all of it switching. A
//! timerfd fires with the same precision (timer slack does not apply to it) and, at high
//! rates, is found ready in the same epoll wake-up as the answers the thread is reading.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub(super) struct SendClock {
    fd: AsyncFd<OwnedFd>,
}

impl SendClock {
    /// A clock for the current runtime (it must have I/O enabled).
    pub(super) fn new() -> io::Result<SendClock> {
        // SAFETY: timerfd_create takes constant flags and returns a new descriptor or -1.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor just returned to us and owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the OwnedFd, which keeps the descriptor open and the same
        // until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(SendClock { fd })
    }

    /// Waits `d` (a zero wait is made 1 ns: a zero timerfd would be disarmed). Arming again
    /// discards an expiry never read, so a wait given up part-way leaves nothing behind.
    pub(super) async fn sleep(&self, d: Duration) -> io::Result<()> {
        let d = d.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
            },
        };
        // SAFETY: a valid timerfd, a valid itimerspec, and no old value asked for.
        let armed =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if armed < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut ready = self.fd.readable().await?;
            let read = ready.try_io(|fd| {
                let mut expiries = [0u8; 8];
                // SAFETY: reads at most 8 bytes into an 8-byte buffer from our descriptor.
                let n = unsafe { libc::read(fd.as_raw_fd(), expiries.as_mut_ptr().cast(), 8) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match read {
                Ok(result) => return result,
                // Not expired yet (readiness left from an earlier wait): wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn waits_at_least_as_long_as_asked_and_again_after_a_wait_given_up() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let clock = SendClock::new().unwrap();
            for d in [
                Duration::ZERO,
                Duration::from_micros(300),
                Duration::from_millis(20),
            ] {
                let t = Instant::now();
                clock.sleep(d).await.unwrap();
                assert!(t.elapsed() >= d, "{d:?}: woke after {:?}", t.elapsed());
            }
            // A wait abandoned before it expired: the next one still waits its own time.
            let abandoned = tokio::time::timeout(
                Duration::from_millis(1),
                clock.sleep(Duration::from_secs(5)),
            )
            .await;
            assert!(abandoned.is_err());
            tokio::time::sleep(Duration::from_millis(2)).await;
            let t = Instant::now();
            clock.sleep(Duration::from_millis(30)).await.unwrap();
            assert!(
                t.elapsed() >= Duration::from_millis(30),
                "{:?}",
                t.elapsed()
            );
        });
    }
}
