//! The server-wide memory budget for buffered input and output
//! (SPEC.md §11, "Memory budget").
//!
//! Why a budget on top of the core's per-connection bounds: each connection
//! may hold a whole incomplete frame and a whole reply (up to ~4 MiB with
//! the default 1 MiB frame limit), which is harmless for one client and
//! fatal for a thousand that never read. So a connection reads freely only
//! while it holds less than a small *reserve*; beyond that what it holds is
//! charged to one budget shared by all connections of all loops, and once
//! that is spent it stops reading (TCP flow control then holds the client
//! back) until another connection's output is taken. Small request-reply
//! traffic stays within the reserve and is never held up by the budget; the
//! `--max-buffer` bound keeps a single connection from taking the whole
//! budget.
//!
//! What is charged is a connection's *weight*: its output plus three times
//! its unprocessed input, the most that input can become (SPEC.md §11,
//! "Expansion"), or the capacity of its buffers if that is more (a buffer
//! that grew by doubling holds more memory than bytes). Charging input at its size would let many connections each
//! complete a frame on a last small read and together triple what they hold
//! after the budget said stop; charged at its weight, processing input
//! never raises the charge.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes any connection may hold without touching the budget: a few
/// ordinary frames and their replies.
pub(crate) const RESERVE_PER_CONNECTION: usize = 16 * 1024;

/// The budget and its current use, shared by every loop of a server.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    /// Bytes beyond the reserves that may be buffered, over all connections.
    limit: usize,
    /// A connection stops reading while it holds this much.
    max_buffer: usize,
    /// Bytes beyond the reserves buffered now.
    charged: AtomicUsize,
    /// Output bytes not yet taken by clients, summed (for monitoring).
    pending_output: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, with a connection bound of `max_buffer`.
    pub(crate) fn new(limit: usize, max_buffer: usize) -> MemoryBudget {
        MemoryBudget {
            limit,
            max_buffer,
            charged: AtomicUsize::new(0),
            pending_output: AtomicUsize::new(0),
        }
    }

    /// How much more a connection holding `buffered` bytes may read under
    /// its own bound (`--max-buffer`). Zero: wait until its output is taken.
    pub(crate) fn own_room(&self, buffered: usize) -> usize {
        self.max_buffer.saturating_sub(buffered)
    }

    /// How much of `wanted` a connection of weight `weight` may read now:
    /// a third (each byte read weighs 3) of what is left of its reserve
    /// and of the budget.
    pub(crate) fn may_read(&self, weight: usize, wanted: usize) -> usize {
        let reserve_left = RESERVE_PER_CONNECTION.saturating_sub(weight);
        let budget_left = self
            .limit
            .saturating_sub(self.charged.load(Ordering::Relaxed));
        wanted.min(reserve_left.saturating_add(budget_left) / 3)
    }

    /// Whether any budget is left, i.e. budget-blocked connections may retry.
    pub(crate) fn has_room(&self) -> bool {
        self.charged.load(Ordering::Relaxed) < self.limit
    }

    /// Bytes beyond the reserves that may be buffered, over all connections.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged beyond the reserves now.
    pub(crate) fn charged(&self) -> usize {
        self.charged.load(Ordering::Relaxed)
    }

    /// Output bytes produced and not yet taken by clients, summed.
    pub(crate) fn pending_output(&self) -> usize {
        self.pending_output.load(Ordering::Relaxed)
    }
}

/// One connection's part of the budget's counters, kept so that only the
/// changes are written to the shared atomics (and rarely: a connection
/// whose replies are all sent charges nothing).
#[derive(Debug, Default)]
pub(crate) struct BudgetShare {
    charged: usize,
    pending_output: usize,
}

impl BudgetShare {
    /// The connection now holds `input` unprocessed bytes and
    /// `pending_output` bytes of output, in buffers of `capacity` bytes.
    pub(crate) fn update(
        &mut self,
        budget: &MemoryBudget,
        input: usize,
        pending_output: usize,
        capacity: usize,
    ) {
        let charged = weight(input, pending_output)
            .max(capacity)
            .saturating_sub(RESERVE_PER_CONNECTION);
        adjust(&budget.charged, self.charged, charged);
        adjust(&budget.pending_output, self.pending_output, pending_output);
        self.charged = charged;
        self.pending_output = pending_output;
    }

    /// The connection is gone: give everything back.
    pub(crate) fn release(&mut self, budget: &MemoryBudget) {
        self.update(budget, 0, 0, 0);
    }
}

/// What a connection's buffers may come to without reading more: its
/// output, plus up to three times its unprocessed input.
pub(crate) fn weight(input: usize, output: usize) -> usize {
    input.saturating_mul(3).saturating_add(output)
}

fn adjust(counter: &AtomicUsize, before: usize, after: usize) {
    if after > before {
        counter.fetch_add(after - before, Ordering::Relaxed);
    } else if after < before {
        counter.fetch_sub(before - after, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_free_and_beyond_it_the_budget_is_shared() {
        let budget = MemoryBudget::new(300_000, 1 << 20);
        let mut greedy = BudgetShare::default();
        // Within its reserve a connection reads without charging anything;
        // each byte read weighs 3.
        assert_eq!(budget.may_read(0, 1000), 1000);
        assert_eq!(budget.may_read(RESERVE_PER_CONNECTION, 900_000), 100_000);
        greedy.update(&budget, RESERVE_PER_CONNECTION / 3, 0, 0);
        assert_eq!(budget.charged(), 0);
        // Beyond it, the budget pays for input at three times its size,
        // and for output at its size, until it is spent.
        greedy.update(&budget, 100_000, RESERVE_PER_CONNECTION, 0);
        assert_eq!(budget.charged(), 300_000);
        assert!(!budget.has_room());
        assert_eq!(
            budget.may_read(weight(100_000, RESERVE_PER_CONNECTION), 1000),
            0
        );
        // Processing the input into its reply does not raise the charge.
        greedy.update(&budget, 0, RESERVE_PER_CONNECTION + 300_000, 0);
        assert_eq!(budget.charged(), 300_000);
        // Another connection still has its reserve.
        assert_eq!(budget.may_read(0, 1000), 1000);
        assert_eq!(budget.pending_output(), RESERVE_PER_CONNECTION + 300_000);
        // Buffers larger than their bytes are charged at their size.
        greedy.update(&budget, 0, 0, RESERVE_PER_CONNECTION + 1000);
        assert_eq!(budget.charged(), 1000);
        greedy.release(&budget);
        assert_eq!(budget.charged(), 0);
        assert_eq!(budget.pending_output(), 0);
    }

    #[test]
    fn a_connection_stops_at_its_own_bound() {
        let budget = MemoryBudget::new(usize::MAX, 4096);
        assert_eq!(budget.own_room(1000), 3096);
        assert_eq!(budget.own_room(5000), 0);
    }
}
