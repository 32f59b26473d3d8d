//! The connection limit, server-wide, and one loop's bookkeeping of it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// The connections one loop serves and refuses.
#[derive(Debug)]
pub(crate) struct Slots {
    /// How many connections being refused this loop holds at most.
    max_refusing: usize,
    refusing: usize,
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
        }
    }

    /// Whether a new connection from `ip` is served.
    pub(crate) fn admit(&mut self, _ip: IpAddr, limit: &ConnectionLimit) -> Admission {
        if limit.try_take() {
            return Admission::Serve;
        }
        if self.refusing >= self.max_refusing {
            return Admission::Drop { limit: limit.max };
        }
        self.refusing += 1;
        Admission::Refuse { limit: limit.max }
    }

    /// A connection from `ip` is gone.
    pub(crate) fn release(&mut self, _ip: IpAddr, refusing: bool, limit: &ConnectionLimit) {
        if refusing {
            self.refusing -= 1;
        } else {
            limit.give_back();
        }
    }
}
