//! The per-source rate limit of the UDP service (SPEC.md §8.6): a token
//! bucket per source address, in a table of bounded size.
//!
//! Why per source: one sender that floods the socket must not take the
//! service from the others, and a forged source must not turn the server
//! into a steady stream of replies at its victim. Why bounded: sources are
//! free to invent, so the table evicts before it grows past its size.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

/// How fast one source may send: `per_second` datagrams a second on
/// average, `burst` at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRateLimit {
    /// Datagrams a second each source may send; 0 turns the limit off.
    pub per_second: u32,
    /// Datagrams a source may send at once (the bucket's size), at least 1.
    pub burst: u32,
}

impl UdpRateLimit {
    /// No limit at all.
    pub const OFF: UdpRateLimit = UdpRateLimit {
        per_second: 0,
        burst: 1,
    };

    /// Whether the limit is off.
    pub fn is_off(self) -> bool {
        self.per_second == 0
    }

    /// The burst, a bucket's size, at least one datagram.
    fn bucket_size(self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

impl Default for UdpRateLimit {
    /// 10,000 a second with bursts of 2,000: far above what one
    /// interactive client sends, far below what one socket can flood.
    fn default() -> UdpRateLimit {
        UdpRateLimit {
            per_second: 10_000,
            burst: 2_000,
        }
    }
}

/// The sources a table tracks at most (about 64 bytes each).
pub const MAX_SOURCES: usize = 16_384;

/// What a source is: an IPv4 address, or the /64 prefix of an IPv6 one,
/// since one IPv6 host usually owns a whole /64. IPv4-mapped IPv6 counts
/// as the IPv4 address. TCP's connection limit counts connections by the
/// same groups (SPEC.md §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey(IpAddr);

impl SourceKey {
    /// The key of datagrams from `ip`.
    pub fn of(ip: IpAddr) -> SourceKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => SourceKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                SourceKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// The tokens this bucket holds at `now` under `limit`.
    fn tokens_at(&self, now: Instant, limit: UdpRateLimit) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * f64::from(limit.per_second)).min(limit.bucket_size())
    }
}

/// Token buckets by source; see the module documentation.
#[derive(Debug)]
pub struct SourceLimiter {
    limit: UdpRateLimit,
    capacity: usize,
    buckets: HashMap<SourceKey, Bucket>,
}

impl SourceLimiter {
    /// A table of at most `capacity` sources (at least 1) under `limit`.
    pub fn new(limit: UdpRateLimit, capacity: usize) -> SourceLimiter {
        SourceLimiter {
            limit,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Sources tracked now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether a datagram from `source` arriving at `now` may be answered;
    /// it takes a token when it may.
    pub fn admit(&mut self, source: IpAddr, now: Instant) -> bool {
        if self.limit.is_off() {
            return true;
        }
        let key = SourceKey::of(source);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.capacity {
            self.evict(now);
        }
        let limit = self.limit;
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: limit.bucket_size(),
            updated: now,
        });
        bucket.tokens = bucket.tokens_at(now, limit);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Make room: forget the stale sources (whose bucket has refilled, the
    /// same as having none); when every source is active, forget the
    /// least recently seen eighth, which start again with a full bucket.
    fn evict(&mut self, now: Instant) {
        let limit = self.limit;
        let stale: Vec<SourceKey> = self
            .buckets
            .iter()
            .filter(|(_, bucket)| bucket.tokens_at(now, limit) >= limit.bucket_size())
            .map(|(&key, _)| key)
            .collect();
        for key in stale {
            self.buckets.remove(&key);
        }
        if self.buckets.len() < self.capacity {
            return;
        }
        let mut seen: Vec<Instant> = self.buckets.values().map(|b| b.updated).collect();
        let newest_forgotten = (seen.len() / 8).saturating_sub(1);
        let (_, &mut cutoff, _) = seen.select_nth_unstable(newest_forgotten);
        self.buckets.retain(|_, bucket| bucket.updated > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limit(per_second: u32, burst: u32) -> UdpRateLimit {
        UdpRateLimit { per_second, burst }
    }

    /// How many of `count` datagrams from `source` at `now` are admitted.
    fn admitted(limiter: &mut SourceLimiter, source: &str, now: Instant, count: usize) -> usize {
        (0..count)
            .filter(|_| limiter.admit(ip(source), now))
            .count()
    }

    #[test]
    fn a_source_gets_its_burst_then_the_rate() {
        let start = Instant::now();
        let mut limiter = SourceLimiter::new(limit(100, 5), 16);
        assert_eq!(admitted(&mut limiter, "127.0.0.1", start, 10), 5);
        let later = start + Duration::from_millis(30);
        assert_eq!(
            admitted(&mut limiter, "127.0.0.1", later, 10),
            3,
            "100/s for 30 ms"
        );
        let much_later = start + Duration::from_secs(60);
        assert_eq!(
            admitted(&mut limiter, "127.0.0.1", much_later, 10),
            5,
            "never more than the burst"
        );
    }

    #[test]
    fn sources_are_limited_apart() {
        let now = Instant::now();
        let mut limiter = SourceLimiter::new(limit(1, 2), 16);
        assert_eq!(admitted(&mut limiter, "127.0.0.1", now, 5), 2);
        assert_eq!(admitted(&mut limiter, "127.0.0.2", now, 5), 2);
    }

    #[test]
    fn an_ipv6_source_is_its_slash_64_and_a_mapped_ipv4_is_the_ipv4() {
        let now = Instant::now();
        let mut limiter = SourceLimiter::new(limit(1, 2), 16);
        assert!(limiter.admit(ip("2001:db8::1"), now));
        assert!(limiter.admit(ip("2001:db8::ffff:2"), now));
        assert!(!limiter.admit(ip("2001:db8::3"), now), "same /64");
        assert!(limiter.admit(ip("2001:db8:0:1::1"), now), "another /64");
        assert!(limiter.admit(ip("192.0.2.1"), now));
        assert!(limiter.admit(ip("::ffff:192.0.2.1"), now));
        assert!(!limiter.admit(ip("192.0.2.1"), now), "one bucket for both");
    }

    #[test]
    fn off_admits_everything() {
        let now = Instant::now();
        let mut limiter = SourceLimiter::new(UdpRateLimit::OFF, 1);
        assert_eq!(admitted(&mut limiter, "127.0.0.1", now, 1000), 1000);
        assert_eq!(limiter.len(), 0, "nothing tracked");
        assert!(!UdpRateLimit::default().is_off());
    }

    #[test]
    fn the_table_forgets_refilled_sources_first() {
        let start = Instant::now();
        let mut limiter = SourceLimiter::new(limit(10, 2), 3);
        admitted(&mut limiter, "10.0.0.1", start, 1);
        admitted(&mut limiter, "10.0.0.2", start, 1);
        // 10.0.0.3 spends its burst just before the table fills up.
        let busy = start + Duration::from_millis(150);
        assert_eq!(admitted(&mut limiter, "10.0.0.3", busy, 5), 2);
        // At 160 ms the first two have refilled (one token in 100 ms): stale.
        let later = start + Duration::from_millis(160);
        assert!(limiter.admit(ip("10.0.0.4"), later));
        assert_eq!(limiter.len(), 2, "10.0.0.3 and 10.0.0.4");
        assert!(
            !limiter.admit(ip("10.0.0.3"), later),
            "a busy source keeps its empty bucket"
        );
    }

    #[test]
    fn a_full_table_of_busy_sources_forgets_the_least_recently_seen() {
        let start = Instant::now();
        let mut limiter = SourceLimiter::new(limit(1, 1), 8);
        for n in 0..8u64 {
            let at = start + Duration::from_millis(n);
            assert!(limiter.admit(ip(&format!("10.0.0.{n}")), at));
        }
        let now = start + Duration::from_millis(8);
        assert!(
            limiter.admit(ip("10.0.0.8"), now),
            "a new source is tracked"
        );
        assert_eq!(limiter.len(), 8, "one of eight forgotten, one added");
        assert!(
            limiter.admit(ip("10.0.0.0"), now),
            "the oldest was forgotten: a full bucket again"
        );
        assert!(!limiter.admit(ip("10.0.0.7"), now), "the newest was kept");
    }

    #[test]
    fn a_tracked_source_in_a_full_table_keeps_its_empty_bucket() {
        let start = Instant::now();
        let mut limiter = SourceLimiter::new(limit(1, 1), 8);
        for n in 0..8u64 {
            let at = start + Duration::from_millis(n);
            assert!(limiter.admit(ip(&format!("10.0.0.{n}")), at));
        }
        // The least recently seen source is back: it is tracked, so the
        // table makes no room (which would forget it first).
        let now = start + Duration::from_millis(8);
        assert!(!limiter.admit(ip("10.0.0.0"), now), "its bucket is empty");
        assert_eq!(limiter.len(), 8);
    }

    #[test]
    fn a_full_table_forgets_an_eighth_of_its_sources_at_a_time() {
        let start = Instant::now();
        let mut limiter = SourceLimiter::new(limit(1, 1), 16);
        for n in 0..16u64 {
            let at = start + Duration::from_millis(n);
            assert!(limiter.admit(ip(&format!("10.0.1.{n}")), at));
        }
        let now = start + Duration::from_millis(16);
        assert!(limiter.admit(ip("10.0.2.0"), now));
        assert_eq!(limiter.len(), 15, "the two least recently seen forgotten");
        assert!(limiter.admit(ip("10.0.1.1"), now), "the second oldest went");
        assert!(!limiter.admit(ip("10.0.1.2"), now), "the third stayed");
    }
}
