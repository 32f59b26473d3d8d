//! The meter against a server connection driven in memory.

use std::net::SocketAddr;
use std::time::Instant;

use super::*;
use crate::conn::{ServerConfig, ServerConnection};
use crate::wire::{FrameRepr, FrameType, PREFACE};

fn connection() -> ServerConnection {
    let local: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    ServerConnection::new(ServerConfig::default(), local, peer, Instant::now())
}

fn frames(frames: &[(FrameType, &[u8])]) -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    for (frame_type, data) in frames {
        bytes.extend_from_slice(&FrameRepr::new(*frame_type, data.to_vec()).to_bytes());
    }
    bytes
}

const FRAMED: usize = 2;
const UNDETECTED: usize = 0;

#[test]
fn a_framed_connection_is_counted_from_accept_to_close() {
    let metrics = ServerMetrics::new(2);
    let shard = metrics.shard(0);
    let mut conn = connection();
    let mut meter = ConnectionMeter::accepted(shard, false);
    assert_eq!(metrics.snapshot().connections_open[UNDETECTED], 1);

    let input = frames(&[(FrameType::Text, b"abc"), (FrameType::Ping, b"p")]);
    let now = Instant::now();
    meter.read_at(now);
    conn.handle_input(now, &input).unwrap();
    meter.report(shard, &conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_accepted, 1);
    assert_eq!(snapshot.connections_open, [0, 0, 1]);
    assert_eq!(snapshot.bytes_in, input.len() as u64);
    assert_eq!(snapshot.frames_in[0], 1, "TEXT in");
    assert_eq!(snapshot.frames_in[2], 1, "PING in");
    assert_eq!(snapshot.frames_out[0], 1, "TEXT out");
    assert_eq!(snapshot.frames_out[3], 1, "PONG out");
    // Nothing was written yet: everything queued is buffered.
    assert_eq!(snapshot.bytes_out, 0);
    assert_eq!(snapshot.buffered_bytes, conn.pending_output().len() as i64);
    assert_eq!(snapshot.reply_delay_buckets.iter().sum::<u64>(), 2);

    let pending = conn.pending_output().len();
    conn.mark_sent(Instant::now(), pending).unwrap();
    meter.report(shard, &conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.bytes_out, pending as u64);
    assert_eq!(snapshot.buffered_bytes, 0);

    conn.handle_eof(Instant::now());
    meter.closed(shard, &conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_open, [0, 0, 0]);
    assert_eq!(snapshot.connections_closed[FRAMED], 1);
    assert_eq!(snapshot.connections_refused, [0, 0, 0]);
}

#[test]
fn a_refused_connection_counts_as_refused_in_its_mode() {
    let metrics = ServerMetrics::new(1);
    let shard = metrics.next_shard();
    let local: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let mut conn =
        ServerConnection::new_busy(ServerConfig::default(), local, local, Instant::now(), 1);
    let meter = ConnectionMeter::accepted(shard, true);
    conn.handle_input(Instant::now(), &PREFACE).unwrap();
    conn.handle_eof(Instant::now());
    meter.closed(shard, &conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_refused, [0, 0, 1]);
    assert_eq!(snapshot.frames_out[5], 1, "the BUSY ERROR");
}

#[test]
fn a_connection_that_never_spoke_closes_undetected() {
    let metrics = ServerMetrics::new(1);
    let shard = metrics.shard(0);
    // A framed-only server does not take silence for raw mode.
    let config = ServerConfig {
        mode: crate::conn::ServerMode::Framed,
        ..ServerConfig::default()
    };
    let local: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let mut conn = ServerConnection::new(config, local, local, Instant::now());
    let meter = ConnectionMeter::accepted(shard, false);
    conn.handle_eof(Instant::now());
    meter.closed(shard, &conn);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.connections_closed, [1, 0, 0]);
    assert_eq!(snapshot.connections_open, [0, 0, 0]);
}

#[test]
fn shards_are_summed() {
    let metrics = ServerMetrics::new(3);
    for index in 0..6 {
        metrics.shard(index).udp_received();
        metrics.next_shard().udp_sent();
    }
    metrics.shard(1).udp_dropped();
    metrics.shard(2).udp_rate_limited();
    metrics.shard(0).connection_evicted(ModeLabel::Raw);
    metrics.shard(0).proxy_header(ProxyOutcome::Untrusted);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.udp_received, 6);
    assert_eq!(snapshot.udp_sent, 6);
    assert_eq!(snapshot.udp_dropped, 1);
    assert_eq!(snapshot.udp_rate_limited, 1);
    assert_eq!(snapshot.connections_evicted, [0, 1, 0]);
    assert_eq!(snapshot.proxy_headers, [0, 0, 0, 0, 0, 1]);
}

#[test]
fn errors_are_counted_by_code_and_unknown_codes_together() {
    let metrics = ServerMetrics::new(1);
    let shard = metrics.shard(0);
    shard.error_sent(ErrorCode::BUSY);
    shard.error_sent(ErrorCode::MALFORMED);
    shard.error_sent(ErrorCode(400));
    shard.error_sent(ErrorCode(0));
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.errors[9], 1);
    assert_eq!(snapshot.errors[1], 1);
    assert_eq!(snapshot.errors[0], 2);
    assert_eq!(MetricsSnapshot::error_code(9), Some(ErrorCode::BUSY));
    assert_eq!(MetricsSnapshot::error_code(0), None);
}

#[test]
fn reply_delays_fall_in_the_bucket_of_their_upper_bound() {
    let metrics = ServerMetrics::new(1);
    let shard = metrics.shard(0);
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
    assert_eq!(metrics.snapshot().memory_budget_bytes, 0);
    metrics.set_memory_budget(1 << 20);
    assert_eq!(metrics.snapshot().memory_budget_bytes, 1 << 20);
}

#[test]
fn shards_do_not_share_cache_lines() {
    assert!(std::mem::align_of::<MetricsShard>() >= 128);
}
