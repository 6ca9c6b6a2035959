//! A fan-out run's verdict (`stepflow-bench fanout`): did every WebSocket subscriber get
//! every committed event exactly once, in order.

/// `delivery` in the results JSON: the whole run's counts.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Delivery {
    /// Subscriber connections that were open when the writes began.
    pub subscribers: u64,
    /// Events the writers produced (writes sent).
    pub events: u64,
    /// Deliveries owed: for each subscriber, the acknowledged (committed) writes.
    pub expected: u64,
    /// Distinct events received, all subscribers together.
    pub received: u64,
    /// Owed deliveries that never arrived, at subscribers that were not dropped as slow.
    pub missed: u64,
    /// Events a subscriber received more than once.
    pub duplicated: u64,
    /// Events received after one with a higher sequence number.
    pub reordered: u64,
    /// Sequence numbers skipped (subscriptions to every event), not dropped subscribers.
    pub seq_gaps: u64,
    /// Subscribers the server closed as too slow (4001); their misses are in
    /// `missed_by_dropped`, not in `missed`.
    pub dropped_slow: u64,
    pub missed_by_dropped: u64,
    /// Subscribers whose connection ended for another reason before the end (their misses
    /// are in `missed`).
    pub disconnected: u64,
}

impl Delivery {
    pub fn add(&mut self, r: &SubscriberReport, dropped_slow: bool, disconnected: bool) {
        self.subscribers += 1;
        self.expected += r.expected;
        self.received += r.received;
        self.duplicated += r.duplicated;
        self.reordered += r.reordered;
        if dropped_slow {
            self.dropped_slow += 1;
            self.missed_by_dropped += r.missed;
        } else {
            self.missed += r.missed;
            self.seq_gaps += r.seq_gaps;
            if disconnected {
                self.disconnected += 1;
            }
        }
    }

    /// Whether the deliveries fail the run: anything missed, duplicated or out of order at a
    /// subscriber that was not dropped for being slow.
    pub fn failed(&self) -> bool {
        self.missed > 0 || self.duplicated > 0 || self.reordered > 0 || self.seq_gaps > 0
    }
}

/// One subscriber's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriberReport {
    pub expected: u64,
    pub received: u64,
    pub missed: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub seq_gaps: u64,
}
