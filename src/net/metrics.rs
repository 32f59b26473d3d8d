//! Counters the server keeps for `upcase serve --metrics` (the Prometheus
//! exposition itself lives in the command, so the library needs no
//! metrics dependency: std atomics only).
//!
//! Why shards: every connection updates these on every read and write. One
//! set of atomics shared by the two cores would bounce its cache lines
//! between them on each update; instead each event loop updates a
//! [`MetricsShard`] of its own, padded to its own cache lines, and a scrape
//! sums the shards ([`ServerMetrics::snapshot`]). A shard has one writer, its
//! loop, so an update is a relaxed load and store (no locked instruction);
//! the scrape's thread only reads. A connection reports its core's
//! [`ConnectionStats`] as differences since its last report
//! ([`ConnectionMeter`]), so the protocol core counts and the shell only
//! adds. What the server already counts for itself (the memory budget, the
//! UDP service's counters) is read at scrape time from a [`GaugeSource`]
//! and costs nothing in between.
//!
//! Without `--metrics` the server has no [`ServerMetrics`] and none of
//! this runs.

use std::ops::Deref;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Add to a counter that only this thread writes (see the module docs): a
/// relaxed load and store, which readers on other threads see whole.
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

/// [`bump`] for a gauge.
fn shift(gauge: &AtomicI64, by: i64) {
    gauge.store(gauge.load(Relaxed).wrapping_add(by), Relaxed);
}
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::conn::{ConnectionStats, FrameCounts, ServerConnection, WireMode};
use crate::wire::ErrorCode;

/// How a connection speaks, as a metric label: its mode, or not yet known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeLabel {
    /// No byte decided the mode yet (or none ever did).
    Undetected,
    /// Raw mode.
    Raw,
    /// Framed mode.
    Framed,
}

impl ModeLabel {
    /// Every label, in the order of the per-mode arrays of [`MetricsSnapshot`].
    pub const ALL: [ModeLabel; 3] = [ModeLabel::Undetected, ModeLabel::Raw, ModeLabel::Framed];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            ModeLabel::Undetected => "undetected",
            ModeLabel::Raw => "raw",
            ModeLabel::Framed => "framed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl From<Option<WireMode>> for ModeLabel {
    fn from(mode: Option<WireMode>) -> ModeLabel {
        match mode {
            None => ModeLabel::Undetected,
            Some(WireMode::Raw) => ModeLabel::Raw,
            Some(WireMode::Framed) => ModeLabel::Framed,
        }
    }
}

/// What became of a connection's PROXY header (`--proxy-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// A header naming the client: its addresses are used.
    Proxied,
    /// A LOCAL header (a balancer's health check).
    Local,
    /// A header naming no addresses (v1 UNKNOWN, v2 UNIX/unspecified).
    Unknown,
    /// A missing or malformed header: closed.
    Invalid,
    /// No complete header within the header timeout: closed.
    Timeout,
    /// A peer outside `--trusted-proxy`: closed before reading.
    Untrusted,
    /// Too many sockets were already waiting for their header: closed
    /// before reading.
    Overflow,
}

impl ProxyOutcome {
    /// Every outcome, in the order of [`MetricsSnapshot::proxy_headers`].
    pub const ALL: [ProxyOutcome; 7] = [
        ProxyOutcome::Proxied,
        ProxyOutcome::Local,
        ProxyOutcome::Unknown,
        ProxyOutcome::Invalid,
        ProxyOutcome::Timeout,
        ProxyOutcome::Untrusted,
        ProxyOutcome::Overflow,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            ProxyOutcome::Proxied => "proxied",
            ProxyOutcome::Local => "local",
            ProxyOutcome::Unknown => "unknown",
            ProxyOutcome::Invalid => "invalid",
            ProxyOutcome::Timeout => "timeout",
            ProxyOutcome::Untrusted => "untrusted",
            ProxyOutcome::Overflow => "overflow",
        }
    }
}

/// The upper bounds of the reply-delay histogram's buckets, in
/// microseconds (a last, unbounded bucket follows). Replies are queued in
/// microseconds when nothing holds them; the upper buckets show requests
/// held back because their client was not reading its replies.
pub const REPLY_DELAY_BUCKETS_MICROS: [u64; 14] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000,
];

/// ERROR codes counted one by one: SPEC.md's 1 to 9; any other code is
/// counted at index 0.
pub(crate) const ERROR_SLOTS: usize = 10;

pub(crate) fn error_slot(code: ErrorCode) -> usize {
    match code.0 {
        code @ 1..=9 => usize::from(code),
        _ => 0,
    }
}

/// One server loop's counters. Aligned to 128 bytes so that two shards
/// never share a cache line (nor an adjacent-line prefetch pair).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct MetricsShard {
    accepted: AtomicU64,
    open: [AtomicI64; 3],
    closed: [AtomicU64; 3],
    refused: [AtomicU64; 3],
    evicted: [AtomicU64; 3],
    frames_in: [AtomicU64; FrameCounts::TYPES.len()],
    frames_out: [AtomicU64; FrameCounts::TYPES.len()],
    errors: [AtomicU64; ERROR_SLOTS],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    proxy_headers: [AtomicU64; ProxyOutcome::ALL.len()],
    reply_delay_buckets: [AtomicU64; REPLY_DELAY_BUCKETS_MICROS.len() + 1],
    reply_delay_nanos: AtomicU64,
}

impl MetricsShard {
    /// A connection over the limit was closed at once, before it said
    /// anything (too many were being refused already): accepted, refused
    /// and closed, never open.
    pub fn connection_dropped(&self) {
        let undetected = ModeLabel::Undetected.index();
        bump(&self.accepted, 1);
        bump(&self.refused[undetected], 1);
        bump(&self.closed[undetected], 1);
    }

    /// A PROXY header was handled this way.
    pub fn proxy_header(&self, outcome: ProxyOutcome) {
        bump(&self.proxy_headers[outcome as usize], 1);
    }

    /// `count` requests were answered `delay` after the read that brought them.
    fn reply_delay(&self, delay: Duration, count: u64) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        let bucket = REPLY_DELAY_BUCKETS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(REPLY_DELAY_BUCKETS_MICROS.len());
        bump(&self.reply_delay_buckets[bucket], count);
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        bump(&self.reply_delay_nanos, nanos.saturating_mul(count));
    }
}

/// What the server itself keeps count of, read at each scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerGauges {
    /// What is charged to the memory budget now: each connection's output
    /// plus three times its unprocessed input, beyond its small reserve.
    pub memory_budget_used: u64,
    /// The memory budget.
    pub memory_budget: u64,
    /// Output bytes queued for clients and not yet taken by them.
    pub pending_output: u64,
    /// UDP datagrams received.
    pub udp_received: u64,
    /// UDP replies sent.
    pub udp_sent: u64,
    /// UDP datagrams not answered for what they hold (reply too large,
    /// framed-only server, an ERROR over the amplification bound) or
    /// because the reply could not be sent.
    pub udp_dropped: u64,
    /// UDP datagrams dropped unread: their source was over its rate.
    pub udp_rate_limited: u64,
}

/// Where a scrape reads [`ServerGauges`]: the running server.
pub trait GaugeSource: std::fmt::Debug + Send + Sync {
    /// The figures now.
    fn gauges(&self) -> ServerGauges;
}

/// Every counter of one server, in shards (see the module docs).
#[derive(Debug)]
pub struct ServerMetrics {
    shards: Box<[MetricsShard]>,
    next_shard: AtomicUsize,
    source: OnceLock<Arc<dyn GaugeSource>>,
    /// Log lines the process dropped, counted by whoever writes its log.
    log_lines_dropped: OnceLock<Arc<AtomicU64>>,
}

impl ServerMetrics {
    /// Counters in `shards` shards (at least one): one per writing thread.
    /// A server takes one per event loop with [`claim_shard`](Self::claim_shard).
    pub fn new(shards: usize) -> ServerMetrics {
        ServerMetrics {
            shards: (0..shards.max(1))
                .map(|_| MetricsShard::default())
                .collect(),
            next_shard: AtomicUsize::new(0),
            source: OnceLock::new(),
            log_lines_dropped: OnceLock::new(),
        }
    }

    /// A shard no one has claimed yet, or `None` when all are taken. Its
    /// handle (and the [`ConnectionMeter`]s made from it) must be used by
    /// one thread at a time: two threads writing one shard would lose
    /// counts (never more: the counters stay atomic).
    pub fn claim_shard(self: &Arc<Self>) -> Option<ShardHandle> {
        let index = self.next_shard.fetch_add(1, Relaxed);
        (index < self.shards.len()).then(|| ShardHandle {
            metrics: Arc::clone(self),
            index,
        })
    }

    /// Read [`ServerGauges`] from `source` at each scrape. The first
    /// source attached stays.
    pub fn attach(&self, source: Arc<dyn GaugeSource>) {
        let _ = self.source.set(source);
    }

    /// Show `dropped` as the log lines dropped: the count of a log writer
    /// that drops lines rather than wait for its output (`upcase serve`'s
    /// queue to stderr). The first counter attached stays.
    pub fn count_log_lines_dropped(&self, dropped: Arc<AtomicU64>) {
        let _ = self.log_lines_dropped.set(dropped);
    }

    /// The shards summed, and the gauges: what a scrape shows. Counters
    /// read at slightly different moments may be off by the updates made
    /// meanwhile, never more.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut snapshot = MetricsSnapshot {
            gauges: self
                .source
                .get()
                .map(|source| source.gauges())
                .unwrap_or_default(),
            log_lines_dropped: self
                .log_lines_dropped
                .get()
                .map_or(0, |dropped| dropped.load(Relaxed)),
            ..MetricsSnapshot::default()
        };
        fn add<const N: usize>(sum: &mut [u64; N], shard: &[AtomicU64; N]) {
            for (sum, value) in sum.iter_mut().zip(shard) {
                *sum += value.load(Relaxed);
            }
        }
        for shard in &self.shards {
            let s = &mut snapshot;
            s.connections_accepted += shard.accepted.load(Relaxed);
            for (sum, value) in s.connections_open.iter_mut().zip(&shard.open) {
                *sum += value.load(Relaxed);
            }
            add(&mut s.connections_closed, &shard.closed);
            add(&mut s.connections_refused, &shard.refused);
            add(&mut s.connections_evicted, &shard.evicted);
            add(&mut s.frames_in, &shard.frames_in);
            add(&mut s.frames_out, &shard.frames_out);
            add(&mut s.errors, &shard.errors);
            s.bytes_in += shard.bytes_in.load(Relaxed);
            s.bytes_out += shard.bytes_out.load(Relaxed);
            add(&mut s.proxy_headers, &shard.proxy_headers);
            add(&mut s.reply_delay_buckets, &shard.reply_delay_buckets);
            s.reply_delay_nanos += shard.reply_delay_nanos.load(Relaxed);
        }
        // A connection moves between modes in one shard with a decrement
        // and an increment; a scrape between the two must not show -1.
        snapshot.connections_open = snapshot.connections_open.map(|open| open.max(0));
        snapshot
    }
}

/// One shard of a [`ServerMetrics`], kept by an event loop (it derefs to
/// the [`MetricsShard`]).
#[derive(Debug, Clone)]
pub struct ShardHandle {
    metrics: Arc<ServerMetrics>,
    index: usize,
}

impl Deref for ShardHandle {
    type Target = MetricsShard;

    fn deref(&self) -> &MetricsShard {
        &self.metrics.shards[self.index]
    }
}

/// The server's counters at one moment, summed over shards. Per-label
/// arrays are in the order of [`ModeLabel::ALL`], [`FrameCounts::TYPES`],
/// [`ProxyOutcome::ALL`] and [`MetricsSnapshot::error_code`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// TCP connections handed to the protocol (after their PROXY header,
    /// with the PROXY protocol on): always open plus closed.
    pub connections_accepted: u64,
    /// Connections open now, by mode.
    pub connections_open: [i64; 3],
    /// Connections closed, by mode.
    pub connections_closed: [u64; 3],
    /// Connections refused over the connection limit, by mode.
    pub connections_refused: [u64; 3],
    /// Connections evicted to make room, by mode.
    pub connections_evicted: [u64; 3],
    /// Frames received, by type.
    pub frames_in: [u64; FrameCounts::TYPES.len()],
    /// Frames sent, by type.
    pub frames_out: [u64; FrameCounts::TYPES.len()],
    /// ERRORs sent, by code slot (see [`error_code`](Self::error_code)).
    pub errors: [u64; ERROR_SLOTS],
    /// TCP bytes received (PROXY headers not included).
    pub bytes_in: u64,
    /// TCP bytes sent.
    pub bytes_out: u64,
    /// PROXY headers, by outcome.
    pub proxy_headers: [u64; ProxyOutcome::ALL.len()],
    /// Requests by reply delay, per bucket of [`REPLY_DELAY_BUCKETS_MICROS`]
    /// (not cumulative; the last is over the largest bound).
    pub reply_delay_buckets: [u64; REPLY_DELAY_BUCKETS_MICROS.len() + 1],
    /// The reply delays summed, in nanoseconds.
    pub reply_delay_nanos: u64,
    /// What the server counts itself (zero before a server is attached).
    pub gauges: ServerGauges,
    /// Log lines dropped (see [`ServerMetrics::count_log_lines_dropped`];
    /// zero without a counter).
    pub log_lines_dropped: u64,
}

impl MetricsSnapshot {
    /// The ERROR code counted at `slot` of [`errors`](Self::errors):
    /// `None` for slot 0, every code SPEC.md does not define.
    pub fn error_code(slot: usize) -> Option<ErrorCode> {
        (slot > 0).then(|| ErrorCode(u16::try_from(slot).expect("ten slots")))
    }
}

/// One connection's reporter: adds to its loop's shard what the
/// connection's core counted since the last report.
#[derive(Debug)]
pub struct ConnectionMeter {
    shard: ShardHandle,
    reported: ConnectionStats,
    mode: ModeLabel,
    refused: bool,
    evicted: bool,
    last_read: Option<Instant>,
}

impl ConnectionMeter {
    /// A connection was accepted (`refused`: over the connection limit);
    /// counts it, and it is open (mode undetected) until
    /// [`closed`](Self::closed).
    pub fn accepted(shard: &ShardHandle, refused: bool) -> ConnectionMeter {
        bump(&shard.accepted, 1);
        shift(&shard.open[ModeLabel::Undetected.index()], 1);
        ConnectionMeter {
            shard: shard.clone(),
            reported: ConnectionStats::default(),
            mode: ModeLabel::Undetected,
            refused,
            evicted: false,
            last_read: None,
        }
    }

    /// Input noticed at `at` is about to be fed: requests answered from now
    /// on are timed from here.
    pub fn read_at(&mut self, at: Instant) {
        self.last_read = Some(at);
    }

    /// The server sent an ERROR with this code.
    pub fn error_sent(&self, code: ErrorCode) {
        bump(&self.shard.errors[error_slot(code)], 1);
    }

    /// Add what `conn` did since the last report.
    pub fn report(&mut self, conn: &ServerConnection) {
        let shard = &*self.shard;
        let stats = conn.stats();
        let was = &self.reported;
        if stats.frames_in != was.frames_in {
            add_counts(
                &shard.frames_in,
                &stats.frames_in_by_type,
                &was.frames_in_by_type,
            );
            if let Some(read) = self.last_read {
                shard.reply_delay(read.elapsed(), stats.frames_in - was.frames_in);
            }
        }
        if stats.frames_out != was.frames_out {
            add_counts(
                &shard.frames_out,
                &stats.frames_out_by_type,
                &was.frames_out_by_type,
            );
        }
        if stats.bytes_in != was.bytes_in {
            bump(&shard.bytes_in, stats.bytes_in - was.bytes_in);
        }
        if stats.bytes_out != was.bytes_out {
            bump(&shard.bytes_out, stats.bytes_out - was.bytes_out);
        }
        self.reported = stats;
        let mode = ModeLabel::from(conn.mode());
        if mode != self.mode {
            shift(&shard.open[self.mode.index()], -1);
            shift(&shard.open[mode.index()], 1);
            self.mode = mode;
        }
    }

    /// The server evicts the connection to make room for another: it
    /// counts as evicted when it closes.
    pub fn evicted(&mut self) {
        self.evicted = true;
    }

    /// The connection is over: a last report, then it counts as closed
    /// (and refused, when it was over the limit; evicted, when it was).
    pub fn closed(mut self, conn: &ServerConnection) {
        self.report(conn);
        let mode = self.mode.index();
        shift(&self.shard.open[mode], -1);
        bump(&self.shard.closed[mode], 1);
        if self.refused {
            bump(&self.shard.refused[mode], 1);
        }
        if self.evicted {
            bump(&self.shard.evicted[mode], 1);
        }
    }
}

fn add_counts(shard: &[AtomicU64; FrameCounts::TYPES.len()], now: &FrameCounts, was: &FrameCounts) {
    for ((counter, now), was) in shard.iter().zip(now.counts()).zip(was.counts()) {
        if now != was {
            bump(counter, now - was);
        }
    }
}

#[cfg(test)]
mod tests;
