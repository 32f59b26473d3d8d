//! Counters the server keeps for `upcase serve --metrics` (the Prometheus
//! exposition itself lives in the command, so the library needs no
//! metrics dependency: std atomics only).
//!
//! Why shards: every connection updates these on every read and write. One
//! set of atomics shared by the two cores would bounce its cache lines
//! between them on each update; instead each server loop (or connection
//! thread) updates a [`MetricsShard`] of its own, padded to its own cache
//! lines, with relaxed atomics, and a scrape sums the shards
//! ([`ServerMetrics::snapshot`]). A connection reports its core's
//! [`ConnectionStats`] as differences since its last report
//! ([`ConnectionMeter`]), so the protocol core counts and the shell only
//! adds.
//!
//! Without `--metrics` the server has no [`ServerMetrics`] and none of
//! this runs.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
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
}

impl ProxyOutcome {
    /// Every outcome, in the order of [`MetricsSnapshot::proxy_headers`].
    pub const ALL: [ProxyOutcome; 6] = [
        ProxyOutcome::Proxied,
        ProxyOutcome::Local,
        ProxyOutcome::Unknown,
        ProxyOutcome::Invalid,
        ProxyOutcome::Timeout,
        ProxyOutcome::Untrusted,
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
const ERROR_SLOTS: usize = 10;

fn error_slot(code: ErrorCode) -> usize {
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
    buffered: AtomicI64,
    udp_received: AtomicU64,
    udp_sent: AtomicU64,
    udp_dropped: AtomicU64,
    udp_rate_limited: AtomicU64,
    proxy_headers: [AtomicU64; ProxyOutcome::ALL.len()],
    reply_delay_buckets: [AtomicU64; REPLY_DELAY_BUCKETS_MICROS.len() + 1],
    reply_delay_nanos: AtomicU64,
}

impl MetricsShard {
    /// A connection over the limit was refused: told BUSY (framed) or
    /// closed (raw, or before it said which).
    pub fn connection_refused(&self, mode: ModeLabel) {
        self.refused[mode.index()].fetch_add(1, Relaxed);
    }

    /// A connection was closed by the server to make room for others.
    pub fn connection_evicted(&self, mode: ModeLabel) {
        self.evicted[mode.index()].fetch_add(1, Relaxed);
    }

    /// The server sent an ERROR with this code.
    pub fn error_sent(&self, code: ErrorCode) {
        self.errors[error_slot(code)].fetch_add(1, Relaxed);
    }

    /// A PROXY header was handled this way.
    pub fn proxy_header(&self, outcome: ProxyOutcome) {
        self.proxy_headers[outcome as usize].fetch_add(1, Relaxed);
    }

    /// A UDP datagram arrived.
    pub fn udp_received(&self) {
        self.udp_received.fetch_add(1, Relaxed);
    }

    /// A UDP reply was sent.
    pub fn udp_sent(&self) {
        self.udp_sent.fetch_add(1, Relaxed);
    }

    /// A UDP datagram got no reply (too large a reply, framed-only server,
    /// a send error).
    pub fn udp_dropped(&self) {
        self.udp_dropped.fetch_add(1, Relaxed);
    }

    /// A UDP datagram got no reply because its source was over its rate.
    pub fn udp_rate_limited(&self) {
        self.udp_rate_limited.fetch_add(1, Relaxed);
    }

    /// `count` requests were answered `delay` after the read that brought them.
    fn reply_delay(&self, delay: Duration, count: u64) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        let bucket = REPLY_DELAY_BUCKETS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(REPLY_DELAY_BUCKETS_MICROS.len());
        self.reply_delay_buckets[bucket].fetch_add(count, Relaxed);
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.reply_delay_nanos
            .fetch_add(nanos.saturating_mul(count), Relaxed);
    }
}

/// Every counter of one server, in shards (see the module docs).
#[derive(Debug)]
pub struct ServerMetrics {
    shards: Box<[MetricsShard]>,
    next_shard: AtomicUsize,
    memory_budget: AtomicU64,
}

impl ServerMetrics {
    /// Counters in `shards` shards (at least one): one per server loop.
    pub fn new(shards: usize) -> ServerMetrics {
        ServerMetrics {
            shards: (0..shards.max(1))
                .map(|_| MetricsShard::default())
                .collect(),
            next_shard: AtomicUsize::new(0),
            memory_budget: AtomicU64::new(0),
        }
    }

    /// Shard `index` (modulo the number of shards): a loop's own.
    pub fn shard(&self, index: usize) -> &MetricsShard {
        &self.shards[index % self.shards.len()]
    }

    /// The next shard in turn, for a thread without a loop index.
    pub fn next_shard(&self) -> &MetricsShard {
        self.shard(self.next_shard.fetch_add(1, Relaxed))
    }

    /// The bytes the server may buffer for all connections together, shown
    /// beside [`MetricsSnapshot::buffered_bytes`]; 0 means no budget.
    pub fn set_memory_budget(&self, bytes: u64) {
        self.memory_budget.store(bytes, Relaxed);
    }

    /// The shards summed: what a scrape shows. Counters read at slightly
    /// different moments may be off by the updates made meanwhile, never
    /// more.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut snapshot = MetricsSnapshot {
            memory_budget_bytes: self.memory_budget.load(Relaxed),
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
            s.buffered_bytes += shard.buffered.load(Relaxed);
            s.udp_received += shard.udp_received.load(Relaxed);
            s.udp_sent += shard.udp_sent.load(Relaxed);
            s.udp_dropped += shard.udp_dropped.load(Relaxed);
            s.udp_rate_limited += shard.udp_rate_limited.load(Relaxed);
            add(&mut s.proxy_headers, &shard.proxy_headers);
            add(&mut s.reply_delay_buckets, &shard.reply_delay_buckets);
            s.reply_delay_nanos += shard.reply_delay_nanos.load(Relaxed);
        }
        snapshot.connections_open = snapshot.connections_open.map(|open| open.max(0));
        snapshot.buffered_bytes = snapshot.buffered_bytes.max(0);
        snapshot
    }
}

/// The server's counters at one moment, summed over shards. Per-label
/// arrays are in the order of [`ModeLabel::ALL`], [`FrameCounts::TYPES`],
/// [`ProxyOutcome::ALL`] and [`MetricsSnapshot::error_code`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// TCP connections accepted.
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
    /// Output bytes held for clients now.
    pub buffered_bytes: i64,
    /// The buffer budget for all connections; 0 when there is none.
    pub memory_budget_bytes: u64,
    /// UDP datagrams received.
    pub udp_received: u64,
    /// UDP replies sent.
    pub udp_sent: u64,
    /// UDP datagrams not answered.
    pub udp_dropped: u64,
    /// UDP datagrams not answered because their source was over its rate.
    pub udp_rate_limited: u64,
    /// PROXY headers, by outcome.
    pub proxy_headers: [u64; ProxyOutcome::ALL.len()],
    /// Requests by reply delay, per bucket of [`REPLY_DELAY_BUCKETS_MICROS`]
    /// (not cumulative; the last is over the largest bound).
    pub reply_delay_buckets: [u64; REPLY_DELAY_BUCKETS_MICROS.len() + 1],
    /// The reply delays summed, in nanoseconds.
    pub reply_delay_nanos: u64,
}

impl MetricsSnapshot {
    /// The ERROR code counted at `slot` of [`errors`](Self::errors):
    /// `None` for slot 0, every code SPEC.md does not define.
    pub fn error_code(slot: usize) -> Option<ErrorCode> {
        (slot > 0).then(|| ErrorCode(u16::try_from(slot).expect("ten slots")))
    }
}

/// One connection's reporter: remembers what it already added to its
/// shard, and adds the differences.
#[derive(Debug)]
pub struct ConnectionMeter {
    reported: ConnectionStats,
    mode: ModeLabel,
    buffered: usize,
    refused: bool,
    last_read: Option<Instant>,
}

impl ConnectionMeter {
    /// A connection was accepted (`refused`: over the connection limit);
    /// counts it, and it is open (mode undetected) until
    /// [`closed`](Self::closed).
    pub fn accepted(shard: &MetricsShard, refused: bool) -> ConnectionMeter {
        shard.accepted.fetch_add(1, Relaxed);
        shard.open[ModeLabel::Undetected.index()].fetch_add(1, Relaxed);
        ConnectionMeter {
            reported: ConnectionStats::default(),
            mode: ModeLabel::Undetected,
            buffered: 0,
            refused,
            last_read: None,
        }
    }

    /// Input read at `at` is about to be fed: requests answered from now on
    /// are timed from here.
    pub fn read_at(&mut self, at: Instant) {
        self.last_read = Some(at);
    }

    /// Add what `conn` did since the last report.
    pub fn report(&mut self, shard: &MetricsShard, conn: &ServerConnection) {
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
            shard
                .bytes_in
                .fetch_add(stats.bytes_in - was.bytes_in, Relaxed);
        }
        if stats.bytes_out != was.bytes_out {
            shard
                .bytes_out
                .fetch_add(stats.bytes_out - was.bytes_out, Relaxed);
        }
        self.reported = stats;
        let buffered = conn.pending_output().len();
        if buffered != self.buffered {
            shard
                .buffered
                .fetch_add(buffered as i64 - self.buffered as i64, Relaxed);
            self.buffered = buffered;
        }
        let mode = ModeLabel::from(conn.mode());
        if mode != self.mode {
            shard.open[self.mode.index()].fetch_sub(1, Relaxed);
            shard.open[mode.index()].fetch_add(1, Relaxed);
            self.mode = mode;
        }
    }

    /// The connection is over: a last report, then it counts as closed
    /// (and refused, when it was over the limit).
    pub fn closed(mut self, shard: &MetricsShard, conn: &ServerConnection) {
        self.report(shard, conn);
        shard.buffered.fetch_sub(self.buffered as i64, Relaxed);
        shard.open[self.mode.index()].fetch_sub(1, Relaxed);
        shard.closed[self.mode.index()].fetch_add(1, Relaxed);
        if self.refused {
            shard.connection_refused(self.mode);
        }
    }
}

fn add_counts(shard: &[AtomicU64; FrameCounts::TYPES.len()], now: &FrameCounts, was: &FrameCounts) {
    for ((counter, now), was) in shard.iter().zip(now.counts()).zip(was.counts()) {
        if now != was {
            counter.fetch_add(now - was, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;
