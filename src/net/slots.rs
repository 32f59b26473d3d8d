//! The connection limit, server-wide, and one loop's bookkeeping of it:
//! which connection to evict when the server is full (SPEC.md §9.3).
//!
//! Why eviction: a limit alone lets anyone who opens enough silent
//! connections keep everyone else out. When the server is full, a newcomer
//! takes the slot of the connection that has done the least, among those
//! it may take: connections that never did anything (no complete frame, no
//! raw byte) go first, then the longest idle, then, between connections
//! idle equally long, the one whose address group holds the most.
//!
//! Why groups, and why "may take": one host has one IPv4 address but
//! usually a whole IPv6 /64, so connections are counted by *group*, the
//! same key as UDP's rate limit (SPEC.md §8.6): an IPv4 address, or the /64
//! of an IPv6 one. A newcomer may take the slot of a connection whose group
//! holds more connections than its own, or, if that connection never did
//! anything, at least as many. So however many connections one group opens,
//! and however often it reopens them, it crowds out only itself and
//! connections that never did anything; an active client of another group
//! is evicted only once no connection that has done less is left. Each
//! loop chooses among its own connections; the kernel spreads every
//! group's connections over the loops.
//!
//! The bookkeeping: per group, two lists of its evictable connections
//! (served, not ended), those that never did anything and the others, each
//! least recently active first, linked through the loop's slot numbers, so
//! eviction and close are O(1); and the groups ranked by their first
//! connection of each list (O(log groups) when a connection opens, ends or
//! becomes active). Choosing looks at the first [`CANDIDATE_GROUPS`]
//! groups of each ranking, skipping those too small to give up a
//! connection; past them it falls back to the group holding the most.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::udp::SourceKey as Group;

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

/// How many groups of a ranking eviction looks at before it falls back to
/// the group holding the most: a bound on the work of one accept.
const CANDIDATE_GROUPS: usize = 64;

/// What a connection was last active with (see [`Slots::touch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Activity {
    /// Bytes before the mode is known: idle restarts (SPEC.md §9.1), but
    /// the connection still has done nothing.
    Detecting,
    /// A complete frame, or raw bytes: it has been served.
    Served,
}

/// A group's place in a ranking: since when its first connection of that
/// list has been idle (older first), then how many connections the group
/// holds (more first).
type Rank = (Instant, Reverse<usize>, Group);

/// The two lists of a group: connections that never did anything, and
/// those that did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Fresh,
    Served,
}

/// One loop's connections, as the limit and eviction see them.
#[derive(Debug)]
pub(crate) struct Slots {
    /// How many connections being refused this loop holds at most.
    max_refusing: usize,
    refusing: usize,
    /// Each group's evictable connections.
    groups: HashMap<Group, Members>,
    /// Groups with connections that never did anything, by [`Rank`].
    fresh: BTreeSet<Rank>,
    /// Groups with connections that did, by [`Rank`].
    served: BTreeSet<Rank>,
    /// Every group by how many it holds (the fallback, and the quick
    /// refusal when no group holds more than the newcomer's).
    sizes: BTreeSet<(usize, Group)>,
    /// Per loop slot: its place in its group's lists, if it is evictable.
    links: Vec<Option<Link>>,
}

/// A group's evictable connections: how many, and its two lists.
#[derive(Debug, Clone, Copy)]
struct Members {
    len: usize,
    fresh: Queue,
    served: Queue,
}

impl Members {
    fn queue(&mut self, list: List) -> &mut Queue {
        match list {
            List::Fresh => &mut self.fresh,
            List::Served => &mut self.served,
        }
    }
}

/// A list of connections, least recently active at `head`.
#[derive(Debug, Clone, Copy)]
struct Queue {
    head: usize,
    tail: usize,
}

const EMPTY: Queue = Queue {
    head: NIL,
    tail: NIL,
};

#[derive(Debug, Clone, Copy)]
struct Link {
    group: Group,
    list: List,
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
            groups: HashMap::new(),
            fresh: BTreeSet::new(),
            served: BTreeSet::new(),
            sizes: BTreeSet::new(),
            links: Vec::new(),
        }
    }

    /// What to do with a new connection from `ip`. For [`Admission::Evict`]
    /// the victim is already out of its list and counted as refused: the
    /// caller evicts it and serves the newcomer.
    pub(crate) fn admit(&mut self, ip: IpAddr, limit: &ConnectionLimit) -> Admission {
        if limit.try_take() {
            return Admission::Serve;
        }
        if let Some(victim) = self.victim_for(Group::of(ip)) {
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

    /// The connection a newcomer of `group` may take the slot of, if any:
    /// the first that never did anything of a group holding at least as
    /// many as `group`, else the longest idle of a group holding more.
    fn victim_for(&self, group: Group) -> Option<usize> {
        let held = self.groups.get(&group).map_or(0, |members| members.len);
        let &(most, biggest) = self.sizes.last()?;
        if most < held {
            return None;
        }
        let first_of = |ranking: &BTreeSet<Rank>, big_enough: &dyn Fn(usize) -> bool| {
            ranking
                .iter()
                .take(CANDIDATE_GROUPS)
                .find(|(_, Reverse(len), _)| big_enough(*len))
                .map(|&(_, _, group)| group)
        };
        if let Some(group) = first_of(&self.fresh, &|len| len >= held) {
            return Some(self.groups[&group].fresh.head);
        }
        if let Some(group) = first_of(&self.served, &|len| len > held) {
            return Some(self.groups[&group].served.head);
        }
        // Past the groups looked at: the group holding the most.
        let members = &self.groups[&biggest];
        match (members.fresh.head, members.served.head) {
            (NIL, served) if most > held => Some(served),
            (NIL, _) => None,
            (fresh, _) => Some(fresh),
        }
    }

    /// `group`'s ranks now: in the fresh ranking, the served ranking, and by size.
    fn ranks(&self, group: Group) -> (Option<Rank>, Option<Rank>, Option<(usize, Group)>) {
        let Some(members) = self.groups.get(&group) else {
            return (None, None, None);
        };
        let rank = |queue: &Queue| {
            let head = self.links.get(queue.head).copied().flatten()?;
            Some((head.since, Reverse(members.len), group))
        };
        (
            rank(&members.fresh),
            rank(&members.served),
            Some((members.len, group)),
        )
    }

    /// Replace `group`'s ranks `before` (taken before a change) by its ranks now.
    fn rerank(
        &mut self,
        group: Group,
        before: (Option<Rank>, Option<Rank>, Option<(usize, Group)>),
    ) {
        let after = self.ranks(group);
        replace(&mut self.fresh, before.0, after.0);
        replace(&mut self.served, before.1, after.1);
        replace(&mut self.sizes, before.2, after.2);
    }

    /// A served connection from `ip`, accepted at `now`, sits in loop slot
    /// `slot`: it is evictable, as the newest that never did anything.
    pub(crate) fn enqueue(&mut self, slot: usize, ip: IpAddr, now: Instant) {
        if self.links.len() <= slot {
            self.links.resize(slot + 1, None);
        }
        if self.links[slot].is_some() {
            return;
        }
        self.link(slot, Group::of(ip), List::Fresh, now, 1);
    }

    /// Put `slot` at the tail of `group`'s `list`, the group growing by `grow`.
    fn link(&mut self, slot: usize, group: Group, list: List, since: Instant, grow: usize) {
        let before = self.ranks(group);
        let members = self.groups.entry(group).or_insert(Members {
            len: 0,
            fresh: EMPTY,
            served: EMPTY,
        });
        members.len += grow;
        let queue = members.queue(list);
        let old_tail = queue.tail;
        queue.tail = slot;
        if old_tail == NIL {
            queue.head = slot;
        } else if let Some(tail) = self.links[old_tail].as_mut() {
            tail.next = slot;
        }
        self.links[slot] = Some(Link {
            group,
            list,
            prev: old_tail,
            next: NIL,
            since,
        });
        self.rerank(group, before);
    }

    /// Take `slot` out of its list, the group shrinking by `shrink`.
    fn unlink(&mut self, slot: usize, shrink: usize) -> Option<Link> {
        let link = self.links.get(slot).copied().flatten()?;
        let before = self.ranks(link.group);
        let members = self.groups.get_mut(&link.group)?;
        members.len -= shrink;
        let queue = members.queue(link.list);
        if link.prev == NIL {
            queue.head = link.next;
        }
        if link.next == NIL {
            queue.tail = link.prev;
        }
        if members.len == 0 {
            self.groups.remove(&link.group);
        }
        if let Some(prev) = self.links.get_mut(link.prev).and_then(Option::as_mut) {
            prev.next = link.next;
        }
        if let Some(next) = self.links.get_mut(link.next).and_then(Option::as_mut) {
            next.prev = link.prev;
        }
        self.links[slot] = None;
        self.rerank(link.group, before);
        Some(link)
    }

    /// The connection in `slot` is not evictable any more (it ended, closed
    /// or was evicted). Nothing happens if it was not listed.
    pub(crate) fn dequeue(&mut self, slot: usize) {
        self.unlink(slot, 1);
    }

    /// The connection in `slot` was active at `now`: it becomes the last of
    /// its group to be evicted among those that did as much, and once it
    /// has been [served](Activity::Served), it is never again ranked with
    /// those that did nothing.
    pub(crate) fn touch(&mut self, slot: usize, now: Instant, activity: Activity) {
        let Some(link) = self.unlink(slot, 0) else {
            return;
        };
        let list = match activity {
            Activity::Served => List::Served,
            Activity::Detecting => link.list,
        };
        self.link(slot, link.group, list, now, 0);
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

/// In `set`, replace `before` by `after` (either may be absent).
fn replace<T: Ord + Copy>(set: &mut BTreeSet<T>, before: Option<T>, after: Option<T>) {
    if before != after {
        if let Some(before) = before {
            set.remove(&before);
        }
        if let Some(after) = after {
            set.insert(after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn v6(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Slots over a full server limit of `max`, slots 0.. served from the
    /// given addresses in order (slot 0 accepted first), none of them
    /// having done anything yet.
    fn full_from(max: usize, from: &[IpAddr]) -> (Slots, ConnectionLimit) {
        let limit = ConnectionLimit::new(max);
        let mut slots = Slots::new(max, 1);
        for (slot, &address) in from.iter().enumerate() {
            assert_eq!(slots.admit(address, &limit), Admission::Serve);
            slots.enqueue(slot, address, at(slot));
        }
        (slots, limit)
    }

    fn full(max: usize, from: &[u8]) -> (Slots, ConnectionLimit) {
        full_from(max, &from.iter().map(|&last| ip(last)).collect::<Vec<_>>())
    }

    /// The `n`th second of a test's clock.
    fn at(n: usize) -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now) + std::time::Duration::from_secs(n as u64)
    }

    #[test]
    fn connections_that_never_did_anything_go_first_then_the_longest_idle() {
        let (mut slots, limit) = full(4, &[1, 2, 3, 4]);
        slots.touch(0, at(10), Activity::Served);
        slots.touch(2, at(11), Activity::Served);
        // Bytes before detection restart idle but are not service.
        slots.touch(1, at(12), Activity::Detecting);
        assert_eq!(slots.admit(ip(9), &limit), Admission::Evict { victim: 3 });
        assert_eq!(slots.admit(ip(9), &limit), Admission::Evict { victim: 1 });
        assert_eq!(slots.admit(ip(9), &limit), Admission::Evict { victim: 0 });
        assert_eq!(slots.admit(ip(9), &limit), Admission::Evict { victim: 2 });
    }

    #[test]
    fn an_active_client_outlives_any_number_of_silent_ones_from_many_addresses() {
        // Slot 0 is a client at 127.0.0.2 that sends a request every
        // second; the others, and every newcomer, come from addresses of
        // their own and never send anything.
        let mut from = vec![ip(2)];
        from.extend((1..100u32).map(|n| IpAddr::from(std::net::Ipv4Addr::from((10u32 << 24) + n))));
        let (mut slots, limit) = full_from(100, &from);
        for n in 0..20_000usize {
            if n % 300 == 0 {
                slots.touch(0, at(100 + n / 300), Activity::Served);
            }
            let newcomer = IpAddr::from(std::net::Ipv4Addr::from((11u32 << 24) + n as u32));
            let Admission::Evict { victim } = slots.admit(newcomer, &limit) else {
                panic!("newcomer {n} was not served");
            };
            assert_ne!(victim, 0, "the active client was evicted by newcomer {n}");
            slots.release(None, true, &limit);
            slots.enqueue(victim, newcomer, at(100 + n / 300));
        }
    }

    #[test]
    fn between_connections_idle_as_long_the_bigger_group_gives_one_up() {
        let limit = ConnectionLimit::new(3);
        let mut slots = Slots::new(3, 1);
        for (slot, last) in [(0, 1), (1, 2), (2, 2)] {
            assert_eq!(slots.admit(ip(last), &limit), Admission::Serve);
            slots.enqueue(slot, ip(last), at(0));
        }
        assert_eq!(slots.admit(ip(9), &limit), Admission::Evict { victim: 1 });
    }

    #[test]
    fn a_group_crowds_out_only_itself_and_connections_that_did_nothing() {
        // 127.0.0.1 holds two of three; 127.0.0.2's one has been served.
        let (mut slots, limit) = full(3, &[1, 1, 2]);
        slots.touch(2, at(0), Activity::Served);
        // A newcomer of 127.0.0.1 takes the slot of its own oldest silent
        // connection, not of 127.0.0.2's (older, but active, and of a
        // smaller group).
        assert_eq!(slots.admit(ip(1), &limit), Admission::Evict { victim: 0 });
        slots.release(None, true, &limit);
        slots.enqueue(0, ip(1), at(5));
        // Once all its connections have been served, it is refused.
        slots.touch(0, at(6), Activity::Served);
        slots.touch(1, at(7), Activity::Served);
        assert_eq!(slots.admit(ip(1), &limit), Admission::Refuse { limit: 3 });
        // A newcomer of 127.0.0.2 (holding fewer) evicts 127.0.0.1's
        // longest idle, though 127.0.0.2's own has been idle longer.
        assert_eq!(slots.admit(ip(2), &limit), Admission::Evict { victim: 0 });
        // A group holding as many as the biggest is refused.
        let (mut slots, limit) = full(4, &[1, 1, 2, 2]);
        for slot in 0..4 {
            slots.touch(slot, at(slot), Activity::Served);
        }
        assert_eq!(slots.admit(ip(2), &limit), Admission::Refuse { limit: 4 });
    }

    #[test]
    fn ipv6_addresses_of_one_64_are_one_group_and_mapped_ipv4_is_ipv4() {
        // 2001:db8:0:1::1 (slot 0) has been silent longest; slots 1-3 are
        // three addresses of 2001:db8::/64.
        let (mut slots, limit) = full_from(
            4,
            &[
                v6("2001:db8:0:1::1"),
                v6("2001:db8::1"),
                v6("2001:db8::2"),
                v6("2001:db8::ffff:1"),
            ],
        );
        // A fourth address of that /64 holds three already: it may take
        // only its own group's oldest silent connection.
        assert_eq!(
            slots.admit(v6("2001:db8::9"), &limit),
            Admission::Evict { victim: 1 }
        );
        slots.release(None, true, &limit);
        slots.enqueue(1, v6("2001:db8::9"), at(9));
        for (slot, second) in [(1, 10), (2, 11), (3, 12), (0, 13)] {
            slots.touch(slot, at(second), Activity::Served);
        }
        // All served: the /64 (three) is refused, though 2001:db8:0:1::/64
        // holds only one; another /64 evicts the longest idle.
        assert_eq!(
            slots.admit(v6("2001:db8::a"), &limit),
            Admission::Refuse { limit: 4 }
        );
        assert_eq!(
            slots.admit(v6("2001:db8:0:2::1"), &limit),
            Admission::Evict { victim: 1 }
        );
        // ::ffff:127.0.0.1 is 127.0.0.1.
        assert_eq!(Group::of(v6("::ffff:127.0.0.1")), Group::of(ip(1)));
        assert_ne!(Group::of(ip(1)), Group::of(ip(2)));
    }

    #[test]
    fn past_the_groups_looked_at_the_biggest_group_gives_one_up() {
        // 100 addresses with one served connection each, idle longest,
        // then 127.0.0.1 with three: only 127.0.0.1 holds more than a
        // newcomer from one of the 100.
        let mut from: Vec<IpAddr> = (1..=100u32)
            .map(|n| IpAddr::from(std::net::Ipv4Addr::from((10u32 << 24) + n)))
            .collect();
        from.extend([ip(1); 3]);
        let (mut slots, limit) = full_from(103, &from);
        for slot in 0..103 {
            slots.touch(slot, at(slot), Activity::Served);
        }
        assert_eq!(
            slots.admit(from[0], &limit),
            Admission::Evict { victim: 100 }
        );
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
