//! Did every subscriber get every event exactly once, in order? Pure bookkeeping, per
//! subscriber, over what it received: the server's sequence number and the generator's own
//! event number (which write the event came from).

pub use crate::results::delivery::{Delivery, SubscriberReport};

/// What one subscriber received, checked as it arrives.
#[derive(Debug, Clone)]
pub struct Checker {
    /// Bit `k`: the generator's event `k` has been received.
    seen: Vec<u64>,
    /// The sequence number the subscription started after (the server's hello).
    start_seq: u64,
    /// Highest sequence number received so far.
    last_seq: u64,
    /// Distinct events received.
    received: u64,
    /// Events received again.
    duplicated: u64,
    /// Events received after one with a higher sequence number.
    reordered: u64,
    /// Messages whose sequence number was at or below the subscription's start.
    stale: u64,
    /// Sequence numbers skipped between the start and the last received, for a subscription
    /// to every event, where any skip is an event that never arrived.
    seq_gaps: u64,
}

impl Checker {
    /// A subscriber that will be sent events `0..events` of this run, subscribed after the
    /// server's sequence number `start_seq`.
    pub fn new(events: u64, start_seq: u64) -> Checker {
        Checker {
            seen: vec![0; events.div_ceil(64) as usize],
            start_seq,
            last_seq: start_seq,
            received: 0,
            duplicated: 0,
            reordered: 0,
            stale: 0,
            seq_gaps: 0,
        }
    }

    /// One received event: server sequence number `seq`, generator event `k`.
    pub fn record(&mut self, seq: u64, k: u64) {
        if seq <= self.start_seq {
            self.stale += 1;
        }
        let (word, bit) = ((k / 64) as usize, 1u64 << (k % 64));
        let again = match self.seen.get_mut(word) {
            Some(w) => {
                let again = *w & bit != 0;
                *w |= bit;
                again
            }
            // An event number past what this run writes is not one of its events.
            None => return,
        };
        if again {
            self.duplicated += 1;
            return;
        }
        self.received += 1;
        if seq < self.last_seq {
            self.reordered += 1;
        } else {
            self.seq_gaps += seq - self.last_seq - 1;
            self.last_seq = seq;
        }
    }

    /// An event of the server that is not one of this run's (another client's write): it
    /// still takes up a sequence number.
    pub fn record_other(&mut self, seq: u64) {
        if seq > self.last_seq {
            self.seq_gaps += seq - self.last_seq - 1;
            self.last_seq = seq;
        } else {
            self.reordered += 1;
        }
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn has(&self, k: u64) -> bool {
        self.seen
            .get((k / 64) as usize)
            .is_some_and(|w| w & (1 << (k % 64)) != 0)
    }

    /// The verdict once no more will arrive. `expected(k)`: whether event `k` was committed
    /// (its write was acknowledged), so that this subscriber should have received it.
    pub fn finish(&self, expected: impl Fn(u64) -> bool, events: u64) -> SubscriberReport {
        let mut want = 0;
        let mut missed = 0;
        for k in 0..events {
            if expected(k) {
                want += 1;
                if !self.has(k) {
                    missed += 1;
                }
            }
        }
        SubscriberReport {
            expected: want,
            received: self.received,
            missed,
            duplicated: self.duplicated + self.stale,
            reordered: self.reordered,
            seq_gaps: self.seq_gaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: u64) -> bool {
        true
    }

    #[test]
    fn every_event_once_in_order_passes() {
        let mut c = Checker::new(100, 40);
        for k in 0..100 {
            c.record(41 + k, k);
        }
        let r = c.finish(all, 100);
        assert_eq!(
            r,
            SubscriberReport {
                expected: 100,
                received: 100,
                ..SubscriberReport::default()
            }
        );
    }

    #[test]
    fn finds_an_injected_miss() {
        let mut c = Checker::new(10, 0);
        for k in (0..10).filter(|&k| k != 6) {
            c.record(1 + k, k);
        }
        let r = c.finish(all, 10);
        assert_eq!((r.missed, r.received, r.seq_gaps), (1, 9, 1));
        let mut d = Delivery::default();
        d.add(&r, false, false);
        assert!(d.failed());
    }

    #[test]
    fn finds_an_injected_duplicate_and_reordering() {
        let mut c = Checker::new(10, 0);
        for (seq, k) in [(1, 0), (2, 1), (2, 1), (4, 3), (3, 2), (5, 4)] {
            c.record(seq, k);
        }
        let r = c.finish(|k| k < 5, 10);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.reordered, 1);
        assert_eq!(r.missed, 0);
        assert_eq!(r.received, 5);
    }

    #[test]
    fn an_unacknowledged_write_is_not_owed() {
        let mut c = Checker::new(3, 0);
        c.record(1, 0);
        c.record(2, 2);
        let r = c.finish(|k| k != 1, 3);
        assert_eq!((r.expected, r.missed), (2, 0));
        // ... but the sequence number its commit took was skipped, if it committed.
        assert_eq!(r.seq_gaps, 0);
    }

    #[test]
    fn a_dropped_subscribers_misses_are_excused_and_counted_apart() {
        let mut c = Checker::new(10, 0);
        c.record(1, 0);
        let r = c.finish(all, 10);
        let mut d = Delivery::default();
        d.add(&r, true, true);
        assert_eq!((d.dropped_slow, d.missed, d.missed_by_dropped), (1, 0, 9));
        assert!(!d.failed());
    }

    #[test]
    fn other_clients_events_take_sequence_numbers_without_gaps() {
        let mut c = Checker::new(2, 10);
        c.record(11, 0);
        c.record_other(12);
        c.record(13, 1);
        assert_eq!(c.finish(all, 2).seq_gaps, 0);
    }

    #[test]
    fn a_replayed_old_event_is_a_duplicate() {
        let mut c = Checker::new(2, 10);
        c.record(5, 0);
        assert_eq!(c.finish(all, 2).duplicated, 1);
    }
}
