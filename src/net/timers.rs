//! One event loop's deadlines: a min-heap of `(when, slot, generation)`.
//!
//! Why lazy entries: a framed connection's idle deadline moves later at every
//! frame, and updating a heap entry in place costs a search. Instead a
//! connection keeps at most one *armed* entry, the earliest deadline it has
//! asked for; a later deadline waits until that entry fires (the connection
//! then finds nothing due and arms its real deadline). An entry whose slot
//! was reused (another generation) or re-armed earlier is stale and skipped.
//! Stale entries are purged when they outnumber the live ones, so a flood of
//! short connections cannot grow the heap without bound.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Which connection a deadline belongs to: its slot and the slot's
/// generation when it was armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TimerKey {
    pub(crate) slot: usize,
    pub(crate) generation: u32,
}

/// The deadlines of one event loop.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl Timers {
    /// Add an entry. The caller remembers `when` as the key's armed deadline.
    pub(crate) fn arm(&mut self, when: Instant, key: TimerKey) {
        self.heap.push(Reverse((when, key)));
    }

    /// The earliest entry's deadline (possibly stale): how long `poll` may sleep.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((when, _))| *when)
    }

    /// Remove and return the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.heap.peek() {
            Some(Reverse((when, _))) if *when <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    /// Drop stale entries once there are more than twice as many entries as
    /// `live` connections (plus some slack); `is_armed` says whether an entry
    /// is still some connection's armed deadline.
    pub(crate) fn purge_if_bloated(
        &mut self,
        live: usize,
        is_armed: impl Fn(Instant, TimerKey) -> bool,
    ) {
        if self.heap.len() <= 2 * live + 1024 {
            return;
        }
        let entries = std::mem::take(&mut self.heap).into_vec();
        self.heap = entries
            .into_iter()
            .filter(|Reverse((when, key))| is_armed(*when, *key))
            .collect();
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(slot: usize) -> TimerKey {
        TimerKey {
            slot,
            generation: 0,
        }
    }

    #[test]
    fn entries_come_out_in_deadline_order_only_when_due() {
        let start = Instant::now();
        let mut timers = Timers::default();
        timers.arm(start + Duration::from_secs(3), key(3));
        timers.arm(start + Duration::from_secs(1), key(1));
        timers.arm(start + Duration::from_secs(2), key(2));
        assert_eq!(timers.next_deadline(), Some(start + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(start), None);
        let now = start + Duration::from_secs(2);
        assert_eq!(timers.pop_due(now).map(|(_, k)| k.slot), Some(1));
        assert_eq!(timers.pop_due(now).map(|(_, k)| k.slot), Some(2));
        assert_eq!(timers.pop_due(now), None);
    }

    #[test]
    fn stale_entries_are_purged_once_they_dominate() {
        let start = Instant::now();
        let mut timers = Timers::default();
        for slot in 0..5000 {
            timers.arm(start, key(slot));
        }
        // Only slot 7 is still armed.
        timers.purge_if_bloated(1, |_, key| key.slot == 7);
        assert_eq!(timers.len(), 1);
        // Below the threshold nothing is touched.
        timers.arm(start, key(8));
        timers.purge_if_bloated(1, |_, _| false);
        assert_eq!(timers.len(), 2);
    }

    #[test]
    fn entries_are_purged_past_twice_the_live_connections_plus_1024() {
        let start = Instant::now();
        let mut timers = Timers::default();
        // 2 × 1000 live + 1024 entries: not yet bloated.
        for slot in 0..3024 {
            timers.arm(start, key(slot));
        }
        timers.purge_if_bloated(1000, |_, _| false);
        assert_eq!(timers.len(), 3024);
        timers.arm(start, key(3024));
        timers.purge_if_bloated(1000, |_, key| key.slot < 10);
        assert_eq!(timers.len(), 10);
    }
}
