//! The loop's deadlines: a min-heap of (instant, connection) with lazy
//! deletion, fed by each [`Driver::poll_timeout`](sockbench_core::Driver::poll_timeout).
//!
//! ```text
//!   arm(t, conn)     push, unless the connection already waits for t' <= t
//!   next()           the earliest deadline: the loop's poll timeout
//!   pop_due(now)     entries whose time came; stale ones (the connection
//!                    closed, or re-armed) are told apart by a generation
//! ```
//!
//! A deadline that moved later (a read refreshed the idle timer) is not
//! re-pushed: when the old entry comes due, the loop asks the driver again
//! and arms the new time. So a busy connection costs no heap work per read,
//! and an idle one costs one entry. Entries left by closed connections are
//! dropped by a rebuild once they outnumber the live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// One connection's place in the heap: its slab key and the generation
/// that key had when it was armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// The slab key.
    pub key: usize,
    /// Distinguishes connections that reused a key.
    pub generation: u64,
}

/// The heap of deadlines.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Slot)>>,
    /// Entries known to be stale (closed or superseded connections).
    stale: usize,
}

impl Timers {
    /// Arms `slot` for `at`.
    pub fn arm(&mut self, at: Instant, slot: Slot) {
        self.heap.push(Reverse((at, slot)));
    }

    /// Counts an entry that will never fire for its connection.
    pub fn forget_one(&mut self) {
        self.stale += 1;
    }

    /// The earliest deadline, stale or not.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next entry whose time has come by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Slot)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries in the heap.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// When stale entries outnumber the live ones (and there are enough to
    /// matter), rebuilds the heap from `live`: every live connection's
    /// armed deadline.
    pub fn compact(&mut self, live: impl FnOnce() -> Vec<(Instant, Slot)>) {
        if self.stale < 1024 || self.stale < self.heap.len() / 2 {
            return;
        }
        self.heap = live().into_iter().map(Reverse).collect();
        self.stale = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn slot(key: usize) -> Slot {
        Slot { key, generation: 0 }
    }

    #[test]
    fn entries_come_due_in_order_and_not_before_their_time() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.arm(t0 + Duration::from_secs(3), slot(3));
        t.arm(t0 + Duration::from_secs(1), slot(1));
        t.arm(t0 + Duration::from_secs(2), slot(2));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None, "nothing is due at t0");
        let due: Vec<usize> = std::iter::from_fn(|| t.pop_due(t0 + Duration::from_secs(2)))
            .map(|(_, s)| s.key)
            .collect();
        assert_eq!(due, [1, 2]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn compaction_keeps_only_the_live_deadlines() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        for k in 0..3000 {
            t.arm(t0 + Duration::from_secs(60), slot(k));
        }
        for _ in 0..2990 {
            t.forget_one();
        }
        let live: Vec<(Instant, Slot)> = (2990..3000)
            .map(|k| (t0 + Duration::from_secs(60), slot(k)))
            .collect();
        t.compact(|| live.clone());
        assert_eq!(t.len(), 10);
        // Too few stale entries to matter: left alone.
        t.forget_one();
        t.compact(Vec::new);
        assert_eq!(t.len(), 10);
    }
}
