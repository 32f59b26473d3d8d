//! The meter against a server connection driven in memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::conn::{ServerConfig, ServerConnection, ServerMode};
use crate::wire::{FrameRepr, FrameType, PREFACE};

fn addr() -> SocketAddr {
    "127.0.0.1:9999".parse().unwrap()
}

fn connection() -> ServerConnection {
    ServerConnection::new(ServerConfig::default(), addr(), addr(), Instant::now())
}

fn frames(frames: &[(FrameType, &[u8])]) -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    for (frame_type, data) in frames {
        bytes.extend_from_slice(&FrameRepr::new(*frame_type, data.to_vec()).to_bytes());
    }
    bytes
}

const UNDETECTED: usize = 0;
const RAW: usize = 1;
const FRAMED: usize = 2;

#[test]
fn a_framed_connection_is_counted_from_accept_to_close() {
    let metrics = Arc::new(ServerMetrics::new(2));
    let shard = metrics.claim_shard().unwrap();
    let mut conn = connection();
    let mut meter = ConnectionMeter::accepted(&shard, false);
    assert_eq!(metrics.snapshot().connections_open[UNDETECTED], 1);

    let input = frames(&[(FrameType::Text, b"abc"), (FrameType::Ping, b"p")]);
    let now = Instant::now();
    meter.read_at(now);
    conn.handle_input(now, &input).unwrap();
    meter.report(&conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_accepted, 1);
    assert_eq!(snapshot.connections_open, [0, 0, 1]);
    assert_eq!(snapshot.bytes_in, input.len() as u64);
    assert_eq!(snapshot.frames_in[0], 1, "TEXT in");
    assert_eq!(snapshot.frames_in[2], 1, "PING in");
    assert_eq!(snapshot.frames_out[0], 1, "TEXT out");
    assert_eq!(snapshot.frames_out[3], 1, "PONG out");
    assert_eq!(snapshot.bytes_out, 0, "nothing was written yet");
    assert_eq!(snapshot.reply_delay_buckets.iter().sum::<u64>(), 2);

    let pending = conn.pending_output().len();
    conn.mark_sent(Instant::now(), pending).unwrap();
    meter.report(&conn);
    assert_eq!(metrics.snapshot().bytes_out, pending as u64);

    conn.handle_eof(Instant::now());
    meter.closed(&conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_open, [0, 0, 0]);
    assert_eq!(snapshot.connections_closed[FRAMED], 1);
    assert_eq!(snapshot.connections_refused, [0, 0, 0]);
    assert_eq!(snapshot.connections_evicted, [0, 0, 0]);
}

#[test]
fn each_report_adds_only_what_happened_since_the_last() {
    let metrics = Arc::new(ServerMetrics::new(1));
    let shard = metrics.claim_shard().unwrap();
    let mut conn = connection();
    let mut meter = ConnectionMeter::accepted(&shard, false);
    let mut bytes_in = 0;
    let mut bytes_out = 0;
    for input in [
        frames(&[(FrameType::Text, b"abc")]),
        FrameRepr::new(FrameType::Text, b"de".to_vec())
            .to_bytes()
            .to_vec(),
        FrameRepr::new(FrameType::Text, b"f".to_vec())
            .to_bytes()
            .to_vec(),
    ] {
        let now = Instant::now();
        meter.read_at(now);
        conn.handle_input(now, &input).unwrap();
        bytes_in += input.len();
        meter.report(&conn);
        let pending = conn.pending_output().len();
        conn.mark_sent(Instant::now(), pending).unwrap();
        bytes_out += pending;
        meter.report(&conn);
    }
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.frames_in[0], 3, "TEXT in");
    assert_eq!(snapshot.frames_out[0], 3, "TEXT out");
    assert_eq!(snapshot.bytes_in, bytes_in as u64);
    assert_eq!(snapshot.bytes_out, bytes_out as u64);
    assert_eq!(snapshot.reply_delay_buckets.iter().sum::<u64>(), 3);
}

#[test]
fn label_values_are_the_names_the_readme_documents() {
    assert_eq!(
        ModeLabel::ALL.map(ModeLabel::name),
        ["undetected", "raw", "framed"]
    );
    assert_eq!(
        ProxyOutcome::ALL.map(ProxyOutcome::name),
        [
            "proxied",
            "local",
            "unknown",
            "invalid",
            "timeout",
            "untrusted",
            "overflow"
        ]
    );
}

#[test]
fn a_refused_connection_counts_as_refused_in_its_mode() {
    let metrics = Arc::new(ServerMetrics::new(1));
    let shard = metrics.claim_shard().unwrap();
    let mut conn =
        ServerConnection::new_busy(ServerConfig::default(), addr(), addr(), Instant::now(), 1);
    let meter = ConnectionMeter::accepted(&shard, true);
    conn.handle_input(Instant::now(), &PREFACE).unwrap();
    conn.handle_eof(Instant::now());
    meter.error_sent(ErrorCode::BUSY);
    meter.closed(&conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_refused, [0, 0, 1]);
    assert_eq!(snapshot.frames_out[5], 1, "the BUSY ERROR");
    assert_eq!(snapshot.errors[9], 1);
}

#[test]
fn a_dropped_connection_is_accepted_refused_and_closed_never_open() {
    let metrics = Arc::new(ServerMetrics::new(1));
    metrics.claim_shard().unwrap().connection_dropped();
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_accepted, 1);
    assert_eq!(snapshot.connections_refused, [1, 0, 0]);
    assert_eq!(snapshot.connections_closed, [1, 0, 0]);
    assert_eq!(snapshot.connections_open, [0, 0, 0]);
}

#[test]
fn an_evicted_connection_counts_as_evicted_in_its_mode() {
    let metrics = Arc::new(ServerMetrics::new(1));
    let shard = metrics.claim_shard().unwrap();
    let mut conn = connection();
    let mut meter = ConnectionMeter::accepted(&shard, false);
    conn.handle_input(Instant::now(), b"raw bytes").unwrap();
    meter.report(&conn);
    meter.evicted();
    meter.closed(&conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_evicted, [0, 1, 0]);
    assert_eq!(snapshot.connections_closed[RAW], 1);
}

#[test]
fn a_connection_that_never_spoke_closes_undetected() {
    let metrics = Arc::new(ServerMetrics::new(1));
    let shard = metrics.claim_shard().unwrap();
    // A framed-only server does not take silence for raw mode.
    let config = ServerConfig {
        mode: ServerMode::Framed,
        ..ServerConfig::default()
    };
    let mut conn = ServerConnection::new(config, addr(), addr(), Instant::now());
    let meter = ConnectionMeter::accepted(&shard, false);
    conn.handle_eof(Instant::now());
    meter.closed(&conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_closed, [1, 0, 0]);
    assert_eq!(snapshot.connections_open, [0, 0, 0]);
}

#[test]
fn each_shard_is_claimed_once_and_all_are_summed() {
    let metrics = Arc::new(ServerMetrics::new(3));
    let handles: Vec<_> = (0..3).map(|_| metrics.claim_shard().unwrap()).collect();
    assert_eq!(
        handles.iter().map(|h| h.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(metrics.claim_shard().is_none(), "one writer per shard");
    for handle in &handles {
        handle.proxy_header(ProxyOutcome::Untrusted);
    }
    handles[1].proxy_header(ProxyOutcome::Proxied);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.proxy_headers, [1, 0, 0, 0, 0, 3, 0]);
}

#[test]
fn errors_are_counted_by_code_and_unknown_codes_together() {
    let metrics = Arc::new(ServerMetrics::new(1));
    let meter = ConnectionMeter::accepted(&metrics.claim_shard().unwrap(), false);
    meter.error_sent(ErrorCode::BUSY);
    meter.error_sent(ErrorCode::MALFORMED);
    meter.error_sent(ErrorCode(400));
    meter.error_sent(ErrorCode(0));
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.errors[9], 1);
    assert_eq!(snapshot.errors[1], 1);
    assert_eq!(snapshot.errors[0], 2);
    assert_eq!(MetricsSnapshot::error_code(9), Some(ErrorCode::BUSY));
    assert_eq!(MetricsSnapshot::error_code(0), None);
}

#[test]
fn reply_delays_fall_in_the_bucket_of_their_upper_bound() {
    let metrics = Arc::new(ServerMetrics::new(1));
    let shard = metrics.claim_shard().unwrap();
    shard.reply_delay(Duration::from_micros(10), 1);
    shard.reply_delay(Duration::from_micros(11), 2);
    shard.reply_delay(Duration::from_secs(5), 1);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.reply_delay_buckets[0], 1);
    assert_eq!(snapshot.reply_delay_buckets[1], 2);
    assert_eq!(*snapshot.reply_delay_buckets.last().unwrap(), 1);
    assert_eq!(
        snapshot.reply_delay_nanos,
        10_000 + 2 * 11_000 + 5_000_000_000
    );
}

#[derive(Debug)]
struct FixedGauges(ServerGauges);

impl GaugeSource for FixedGauges {
    fn gauges(&self) -> ServerGauges {
        self.0
    }
}

#[test]
fn gauges_come_from_the_attached_source_at_each_scrape() {
    let metrics = ServerMetrics::new(1);
    assert_eq!(metrics.snapshot().gauges, ServerGauges::default());
    let gauges = ServerGauges {
        memory_budget_used: 10,
        memory_budget: 1000,
        pending_output: 7,
        udp_received: 3,
        udp_sent: 2,
        udp_dropped: 1,
        udp_rate_limited: 4,
    };
    metrics.attach(Arc::new(FixedGauges(gauges)));
    assert_eq!(metrics.snapshot().gauges, gauges);
}

#[test]
fn shards_do_not_share_cache_lines() {
    assert!(std::mem::align_of::<MetricsShard>() >= 128);
}

#[test]
fn a_scrape_shows_the_log_writers_dropped_lines_as_they_grow() {
    let metrics = Arc::new(ServerMetrics::new(1));
    assert_eq!(
        metrics.snapshot().log_lines_dropped,
        0,
        "no log writer attached"
    );
    let dropped = Arc::new(AtomicU64::new(3));
    metrics.count_log_lines_dropped(Arc::clone(&dropped));
    assert_eq!(metrics.snapshot().log_lines_dropped, 3);
    dropped.fetch_add(2, Relaxed);
    assert_eq!(
        metrics.snapshot().log_lines_dropped,
        5,
        "read at each scrape"
    );
}
