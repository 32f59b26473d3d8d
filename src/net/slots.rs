//! The connection limit, server-wide, and one loop's bookkeeping of it:
//! which connection to evict when the server is full (SPEC.md §9.3).
//!
//! Why eviction: a limit alone lets anyone who opens enough silent
//! connections keep everyone else out. When the server is full, a newcomer
//! from an address that holds fewer connections than the address holding
//! the most takes the slot of that address's longest-idle connection (idle:
//! no complete frame, or no raw byte, for the longest time; among addresses
//! holding equally many, the one whose idlest connection has been idle
//! longest gives it up, so that many addresses with one silent connection
//! each lose those before anyone's active one). An address can
//! therefore only ever crowd out itself; a newcomer from the biggest holder
//! is refused as before. Each loop chooses among its own connections; the
//! kernel spreads every address's connections over the loops, so the
//! biggest holder is the same everywhere in practice.
//!
//! The bookkeeping: per address, a list of its evictable connections (served,
//! not ended), least recently active first, linked through the loop's slot
//! numbers, so eviction and close are O(1); and the addresses ranked by how
//! many they hold, then by how long their idlest has been idle (O(log
//! addresses) when a connection opens or ends, or when an address's idlest
//! connection becomes active).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Serve it.
    Serve,
    /// Tell it BUSY (framed) or close it (raw): over the limit.
    Refuse {
        /// The limit, for the BUSY message.
        limit: usize,
    },
    /// Serve it in the slot of the connection in loop slot `victim`, which
    /// is to be evicted.
    Evict {
        /// The loop slot of the connection to evict.
        victim: usize,
    },
    /// Close it at once: even the connections being refused are too many.
    Drop {
        /// The limit, for the log.
        limit: usize,
    },
}

/// The server's connection limit and how many connections it serves, over
/// all loops. Touched only when a connection opens or closes.
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    max: usize,
    served: AtomicUsize,
}

impl ConnectionLimit {
    /// A limit of `max` served connections.
    pub(crate) fn new(max: usize) -> ConnectionLimit {
        ConnectionLimit {
            max,
            served: AtomicUsize::new(0),
        }
    }

    /// Take a slot if one is free.
    fn try_take(&self) -> bool {
        self.served
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |served| {
                (served < self.max).then_some(served + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.served.fetch_sub(1, Ordering::AcqRel);
    }
}

/// No slot: the end of a list.
const NIL: usize = usize::MAX;

/// An address's place in the eviction order: how many evictable
/// connections it holds, then since when its idlest has been idle (older
/// ranks higher). The address ranked last gives up a connection.
type Rank = (usize, Reverse<Instant>, IpAddr);

/// One loop's connections, as the limit and eviction see them.
#[derive(Debug)]
pub(crate) struct Slots {
    /// How many connections being refused this loop holds at most.
    max_refusing: usize,
    refusing: usize,
    /// Each address's evictable connections.
    addresses: HashMap<IpAddr, Queue>,
    /// Every address with evictable connections, by [`Rank`].
    ranking: BTreeSet<Rank>,
    /// Per loop slot: its place in its address's queue, if it is evictable.
    links: Vec<Option<Link>>,
}

/// An address's evictable connections, least recently active at `head`.
#[derive(Debug, Clone, Copy)]
struct Queue {
    len: usize,
    head: usize,
    tail: usize,
}

#[derive(Debug, Clone, Copy)]
struct Link {
    ip: IpAddr,
    prev: usize,
    next: usize,
    /// When the connection was last active (or accepted).
    since: Instant,
}

impl Slots {
    /// A loop's bookkeeping, with its share of the refusals a server of
    /// `max_connections` over `loops` loops handles at once.
    pub(crate) fn new(max_connections: usize, loops: usize) -> Slots {
        Slots {
            // Refusing costs a descriptor too; bound those (their life is
            // bounded by the BUSY deadline).
            max_refusing: (max_connections / 8 + 16).div_ceil(loops.max(1)),
            refusing: 0,
            addresses: HashMap::new(),
            ranking: BTreeSet::new(),
            links: Vec::new(),
        }
    }

    /// What to do with a new connection from `ip`. For [`Admission::Evict`]
    /// the victim is already out of its queue and counted as refused: the
    /// caller evicts it and serves the newcomer.
    pub(crate) fn admit(&mut self, ip: IpAddr, limit: &ConnectionLimit) -> Admission {
        if limit.try_take() {
            return Admission::Serve;
        }
        let held = self.addresses.get(&ip).map_or(0, |queue| queue.len);
        if let Some(&(most, _, biggest)) = self.ranking.last()
            && held < most
        {
            let victim = self.addresses[&biggest].head;
            self.dequeue(victim);
            self.refusing += 1;
            return Admission::Evict { victim };
        }
        if self.refusing >= self.max_refusing {
            return Admission::Drop { limit: limit.max };
        }
        self.refusing += 1;
        Admission::Refuse { limit: limit.max }
    }

    /// `ip`'s rank now, if it has evictable connections.
    fn rank(&self, ip: IpAddr) -> Option<Rank> {
        let queue = self.addresses.get(&ip)?;
        let head = self.links.get(queue.head).copied().flatten()?;
        Some((queue.len, Reverse(head.since), ip))
    }

    /// Replace `ip`'s rank `before` (taken before a change) by its rank now.
    fn rerank(&mut self, ip: IpAddr, before: Option<Rank>) {
        let after = self.rank(ip);
        if before != after {
            if let Some(before) = before {
                self.ranking.remove(&before);
            }
            if let Some(after) = after {
                self.ranking.insert(after);
            }
        }
    }

    /// A served connection from `ip`, accepted (or active) at `now`, sits in
    /// loop slot `slot`: it is evictable, as the most recently active of
    /// its address.
    pub(crate) fn enqueue(&mut self, slot: usize, ip: IpAddr, now: Instant) {
        if self.links.len() <= slot {
            self.links.resize(slot + 1, None);
        }
        if self.links[slot].is_some() {
            return;
        }
        let before = self.rank(ip);
        let queue = self.addresses.entry(ip).or_insert(Queue {
            len: 0,
            head: NIL,
            tail: NIL,
        });
        let old_tail = queue.tail;
        queue.len += 1;
        queue.tail = slot;
        if old_tail == NIL {
            queue.head = slot;
        } else if let Some(tail) = self.links[old_tail].as_mut() {
            tail.next = slot;
        }
        self.links[slot] = Some(Link {
            ip,
            prev: old_tail,
            next: NIL,
            since: now,
        });
        self.rerank(ip, before);
    }

    /// The connection in `slot` is not evictable any more (it ended, closed
    /// or was evicted). Nothing happens if it was not queued.
    pub(crate) fn dequeue(&mut self, slot: usize) {
        let Some(link) = self.links.get(slot).copied().flatten() else {
            return;
        };
        let before = self.rank(link.ip);
        let Some(queue) = self.addresses.get_mut(&link.ip) else {
            return;
        };
        match link.prev {
            NIL => queue.head = link.next,
            prev => {
                if let Some(prev) = self.links[prev].as_mut() {
                    prev.next = link.next;
                }
            }
        }
        match link.next {
            NIL => queue.tail = link.prev,
            next => {
                if let Some(next) = self.links[next].as_mut() {
                    next.prev = link.prev;
                }
            }
        }
        queue.len -= 1;
        if queue.len == 0 {
            self.addresses.remove(&link.ip);
        }
        self.links[slot] = None;
        self.rerank(link.ip, before);
    }

    /// The connection in `slot` was active at `now`: it becomes the last of
    /// its address to be evicted.
    pub(crate) fn touch(&mut self, slot: usize, now: Instant) {
        let Some(link) = self.links.get(slot).copied().flatten() else {
            return;
        };
        if link.next == NIL {
            // Already its address's most recent: only its time changes
            // (and with it the rank, if it is the only one).
            let before = self.rank(link.ip);
            if let Some(link) = self.links[slot].as_mut() {
                link.since = now;
            }
            self.rerank(link.ip, before);
            return;
        }
        self.dequeue(slot);
        self.enqueue(slot, link.ip, now);
    }

    /// A connection is gone: a refused (or evicted) one, or a served one
    /// whose slot returns to the limit.
    pub(crate) fn release(&mut self, slot: Option<usize>, refusing: bool, limit: &ConnectionLimit) {
        if let Some(slot) = slot {
            self.dequeue(slot);
        }
        if refusing {
            self.refusing -= 1;
        } else {
            limit.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    /// Slots over a full server limit of `max`, slots 0.. served from the
    /// given addresses in order (slot 0 least recently active).
    fn full(max: usize, from: &[u8]) -> (Slots, ConnectionLimit) {
        let limit = ConnectionLimit::new(max);
        let mut slots = Slots::new(max, 1);
        for (slot, &last) in from.iter().enumerate() {
            assert_eq!(slots.admit(ip(last), &limit), Admission::Serve);
            slots.enqueue(slot, ip(last), at(slot));
        }
        (slots, limit)
    }

    /// The `n`th second of a test's clock.
    fn at(n: usize) -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now) + std::time::Duration::from_secs(n as u64)
    }

    #[test]
    fn a_full_server_evicts_the_longest_idle_of_the_biggest_holder() {
        let (mut slots, limit) = full(6, &[1, 3, 1, 3, 1, 1]);
        // Slot 0 is 127.0.0.1's longest idle, until it is active again.
        slots.touch(0, at(10));
        assert_eq!(slots.admit(ip(2), &limit), Admission::Evict { victim: 2 });
        assert_eq!(slots.admit(ip(2), &limit), Admission::Evict { victim: 4 });
        // 127.0.0.1 keeps slots 5 and 0; once 5 has ended, 127.0.0.3
        // (slots 1 and 3) holds the most.
        slots.dequeue(5);
        assert_eq!(slots.admit(ip(2), &limit), Admission::Evict { victim: 1 });
    }

    #[test]
    fn among_equal_holders_the_longest_idle_connection_goes() {
        // Four addresses with one connection each; 127.0.0.3's (slot 2)
        // has been idle longest once the others were active again.
        let (mut slots, limit) = full(4, &[1, 2, 3, 4]);
        slots.touch(0, at(10));
        slots.touch(1, at(11));
        slots.touch(3, at(12));
        assert_eq!(slots.admit(ip(9), &limit), Admission::Evict { victim: 2 });
        // Then 127.0.0.1's (active at 10 s).
        assert_eq!(slots.admit(ip(9), &limit), Admission::Evict { victim: 0 });
    }

    #[test]
    fn the_biggest_holder_cannot_crowd_out_anyone_but_itself() {
        let (mut slots, limit) = full(3, &[1, 1, 2]);
        assert_eq!(slots.admit(ip(1), &limit), Admission::Refuse { limit: 3 });
        // An address holding as many as the biggest is refused too.
        let (mut slots, limit) = full(4, &[1, 1, 2, 2]);
        assert_eq!(slots.admit(ip(2), &limit), Admission::Refuse { limit: 4 });
    }

    #[test]
    fn ended_connections_are_not_evicted_and_a_close_frees_the_slot() {
        let (mut slots, limit) = full(2, &[1, 1]);
        slots.dequeue(0);
        slots.dequeue(1);
        assert_eq!(slots.admit(ip(2), &limit), Admission::Refuse { limit: 2 });
        slots.release(None, true, &limit);
        slots.release(Some(0), false, &limit);
        assert_eq!(slots.admit(ip(2), &limit), Admission::Serve);
    }

    #[test]
    fn refusals_beyond_their_bound_are_dropped() {
        let (mut slots, limit) = full(1, &[1]);
        slots.dequeue(0);
        for _ in 0..16 {
            assert_eq!(slots.admit(ip(1), &limit), Admission::Refuse { limit: 1 });
        }
        assert_eq!(slots.admit(ip(1), &limit), Admission::Drop { limit: 1 });
    }

    #[test]
    fn a_refusal_that_ends_makes_room_for_another() {
        let (mut slots, limit) = full(1, &[1]);
        slots.dequeue(0);
        for _ in 0..16 {
            assert_eq!(slots.admit(ip(1), &limit), Admission::Refuse { limit: 1 });
        }
        slots.release(None, true, &limit);
        assert_eq!(slots.admit(ip(1), &limit), Admission::Refuse { limit: 1 });
        assert_eq!(slots.admit(ip(1), &limit), Admission::Drop { limit: 1 });
    }
}
