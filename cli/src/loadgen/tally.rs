//! What the clients measured: counts and latencies per event-loop thread
//! ([`Tally`]), how each client ended ([`ClientEnd`]), and the counters the
//! progress line reads while the run goes on ([`Live`]).
//!
//! Latencies go into one histogram per thread, not per client: a histogram
//! is about 35 KiB, too much to keep for each of 15,000 connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::check::ReplyCheck;
use super::histogram::Histogram;

/// Counts of one event-loop thread, summed over its clients.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of every reply, in nanoseconds.
    pub latencies: Histogram,
    /// Replies received (right or wrong).
    pub replies: u64,
    /// Replies that differ from the oracle (some of `replies`).
    pub wrong: u64,
    /// UDP: requests that got no reply within the timeout.
    pub lost: u64,
    /// UDP: replies to requests already answered or counted as lost.
    pub late: u64,
    /// `replies` and `wrong` as last added to [`Live`].
    published: (u64, u64),
}

/// How one client ended.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClientEnd {
    /// Whether its socket connected (TCP) or opened (UDP).
    pub connected: bool,
    /// What its first wrong reply looked like.
    pub first_wrong: Option<String>,
    /// What ended it early (failed connect, I/O error, timeout).
    pub error: Option<String>,
}

impl ClientEnd {
    /// The client is over: keep the first `error` that ended it, if any.
    pub fn finish(&mut self, error: Option<String>) {
        if let Some(error) = error {
            self.error.get_or_insert(error);
        }
    }
}

/// Counters the progress line reads while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    /// Replies received.
    pub replies: AtomicU64,
    /// Replies that differ from the oracle.
    pub wrong: AtomicU64,
    /// Set on Ctrl-C: every client stops at once, and the run reports what
    /// it measured so far.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Tally {
    /// Count a reply to the request sent at `sent`, and time it: its
    /// latency ends at `received`, when its last byte was read (checking it
    /// against the oracle is the client's work, not the server's).
    pub fn record(
        &mut self,
        sent: Instant,
        received: Instant,
        check: ReplyCheck,
        end: &mut ClientEnd,
    ) {
        let latency = received.saturating_duration_since(sent);
        self.latencies.record(latency.as_nanos() as u64);
        self.replies += 1;
        self.count_wrong(check, end);
    }

    /// Count a UDP reply that answers no request in flight (a duplicate, or
    /// one after its request was counted as lost): not timed, and not among
    /// the replies, so not among the wrong ones either (`wrong` never
    /// exceeds `replies`).
    pub fn late(&mut self) {
        self.late += 1;
    }

    fn count_wrong(&mut self, check: ReplyCheck, end: &mut ClientEnd) {
        if let ReplyCheck::Wrong(what) = check {
            self.wrong += 1;
            end.first_wrong.get_or_insert(what);
        }
    }

    /// Add what was counted since the last call to `live` (once per turn of
    /// the event loop, not once per reply: the threads share its counters).
    pub fn publish(&mut self, live: &Live) {
        let (replies, wrong) = self.published;
        live.replies
            .fetch_add(self.replies - replies, Ordering::Relaxed);
        live.wrong.fetch_add(self.wrong - wrong, Ordering::Relaxed);
        self.published = (self.replies, self.wrong);
    }

    /// Add the counts of another thread.
    pub fn merge(&mut self, other: &Tally) {
        self.latencies.merge(&other.latencies);
        self.replies += other.replies;
        self.wrong += other.wrong;
        self.lost += other.lost;
        self.late += other.late;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn replies_are_timed_and_the_first_wrong_one_is_kept() {
        let (mut tally, mut end, live) = (Tally::default(), ClientEnd::default(), Live::default());
        let sent = Instant::now();
        tally.record(
            sent,
            sent + Duration::from_micros(5),
            ReplyCheck::Right,
            &mut end,
        );
        tally.record(sent, sent, ReplyCheck::Wrong("first".into()), &mut end);
        tally.late();
        assert_eq!((tally.replies, tally.wrong, tally.late), (2, 1, 1));
        assert_eq!(tally.latencies.count(), 2);
        assert_eq!(end.first_wrong.as_deref(), Some("first"));
        tally.publish(&live);
        tally.publish(&live);
        assert_eq!(live.replies.load(Ordering::Relaxed), 2);
        assert_eq!(live.wrong.load(Ordering::Relaxed), 1);
    }
}
