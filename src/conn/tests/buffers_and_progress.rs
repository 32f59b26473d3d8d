//! Where a connection's buffers and timers stand after the edge cases of
//! its input and output: input of exactly the read capacity, an input
//! buffer emptied by a large frame (kept for the next one until the shell
//! says the connection is idle), compaction thresholds that are strict,
//! and which calls count as progress for the send and reply timers.

use std::time::Duration;

use super::harness::*;
use crate::conn::{ServerConfig, ServerUsageError};
use crate::wire::{FrameRepr, FrameType, HEADER_LEN, PREFACE};

/// A framed connection whose preface exchange is done and written.
fn framed_pair() -> Pair {
    let mut pair = Pair::new(ServerConfig::default());
    pair.feed(&framed_input(&[]));
    pair
}

/// The encoded PING frame carrying `len` bytes of data.
fn ping_of(len: usize) -> Vec<u8> {
    framed_input(&[frame(FrameType::Ping, false, &vec![b'p'; len])])[PREFACE.len()..].to_vec()
}

#[test]
fn input_of_exactly_the_read_capacity_is_taken_and_one_byte_more_is_refused() {
    let mut pair = Pair::new(ServerConfig::default());
    let capacity = pair.server.read_capacity();
    let too_much = vec![b'a'; capacity + 1];
    assert_eq!(
        pair.server.handle_input(pair.now, &too_much),
        Err(ServerUsageError::OverCapacity {
            offered: capacity + 1,
            capacity
        })
    );
    assert_eq!(pair.server.buffered_len(), 0, "nothing is consumed");
    assert_eq!(
        pair.server.handle_input(pair.now, &too_much[..capacity]),
        Ok(())
    );
    assert_eq!(pair.server.stats().bytes_in, capacity as u64);
}

#[test]
fn an_input_buffer_emptied_by_a_large_frame_is_kept_until_the_connection_is_idle() {
    let mut pair = framed_pair();
    let ping = ping_of(200_000);
    // Delivered in pieces, as reads come: the buffer grows past the frame.
    for piece in ping.chunks(50_000) {
        pair.server.handle_input(pair.now, piece).unwrap();
    }
    pair.flush();
    assert_eq!(pair.frames().len(), 1, "the PONG");
    assert_eq!(
        pair.server.buffered_len(),
        0,
        "everything answered and written"
    );
    assert!(
        pair.server.buffered_capacity() > 0,
        "the empty input buffer is kept for the next frame"
    );
    pair.server.release_idle_buffers();
    assert_eq!(
        pair.server.buffered_capacity(),
        0,
        "an idle connection gives its empty buffers back"
    );
    pair.feed(&ping_of(3));
    assert_eq!(pair.frames().len(), 2, "the next frame allocates again");
}

/// The capacity of a framed connection's input buffer after a first read
/// of `first` bytes into an empty buffer and a short second read, both
/// within one unfinished frame: how far the buffer grows is the bytes
/// crate's choice, so it is measured.
fn grown_capacity(first: usize) -> usize {
    let mut probe = framed_pair();
    let unfinished = ping_of(3 * first);
    probe
        .server
        .handle_input(probe.now, &unfinished[..first])
        .unwrap();
    probe
        .server
        .handle_input(probe.now, &unfinished[first..=first])
        .unwrap();
    probe.server.buffered_capacity()
}

/// A framed connection that has answered (and written) one PING taken out
/// of an input buffer left with `left` bytes (the start of the next frame)
/// and a capacity of `capacity` bytes, before compaction. The bytes come
/// in two reads, the first of `first` bytes.
fn after_a_frame_leaving(first: usize, capacity: usize, left: usize) -> Pair {
    let grown = grown_capacity(first);
    let ping = ping_of(grown - capacity - HEADER_LEN);
    let mut bytes = ping.clone();
    bytes.extend_from_slice(&ping_of(left)[..left]);
    assert!(
        first < ping.len() && bytes.len() <= grown,
        "precondition: the buffer grows once, then the frame is complete"
    );
    let mut pair = framed_pair();
    pair.server.handle_input(pair.now, &bytes[..first]).unwrap();
    pair.server.handle_input(pair.now, &bytes[first..]).unwrap();
    pair.flush();
    assert_eq!(pair.frames().len(), 1, "the PONG");
    assert_eq!(pair.server.buffered_len(), left);
    pair
}

#[test]
fn input_left_in_a_buffer_of_exactly_the_raw_read_limit_is_not_copied() {
    // Strict: 64 KiB is what any connection may be asked to read at once,
    // not the leftover of a large frame.
    const LIMIT: usize = 64 * 1024;
    let pair = after_a_frame_leaving(70_000, LIMIT, 10);
    assert_eq!(
        pair.server.buffered_capacity(),
        LIMIT,
        "the buffer, less the frame taken out of it, is kept as it is"
    );
}

#[test]
fn input_left_in_a_buffer_of_exactly_four_times_its_length_is_not_copied() {
    // Strict: a buffer at most four times what it holds is worth keeping.
    let left = 20_000;
    let pair = after_a_frame_leaving(100_000, 4 * left, left);
    assert_eq!(pair.server.buffered_capacity(), 4 * left);
}

#[test]
fn input_left_in_a_large_buffer_is_copied_into_one_of_its_size() {
    let left = 20_000;
    let pair = after_a_frame_leaving(100_000, 4 * left + 1, left);
    assert_eq!(pair.server.buffered_capacity(), left);
}

#[test]
fn marking_nothing_sent_does_not_restart_the_send_timer() {
    let config = ServerConfig {
        send_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(config);
    let start = pair.now;
    pair.deliver(&framed_input(&[]));
    assert!(
        !pair.server.pending_output().is_empty(),
        "the preface is pending"
    );
    assert_eq!(
        pair.server.poll_timeout(),
        Some(start + Duration::from_secs(2))
    );
    let later = start + Duration::from_secs(1);
    pair.server.mark_sent(later, 0).unwrap();
    assert_eq!(
        pair.server.poll_timeout(),
        Some(start + Duration::from_secs(2)),
        "a write of nothing is no progress"
    );
    pair.server.mark_sent(later, 1).unwrap();
    assert_eq!(
        pair.server.poll_timeout(),
        Some(later + Duration::from_secs(2)),
        "a byte written is"
    );
}

#[test]
fn the_servers_preface_restarts_the_reply_timer_and_an_empty_read_does_not() {
    let start = std::time::Instant::now();
    let timeout = Duration::from_secs(5);
    let mut client = super::client_with_one_request(start, timeout);
    let len = client.pending_output().len();
    client.mark_sent(start, len).unwrap();
    assert_eq!(client.poll_timeout(), Some(start + timeout));

    let preface_at = start + Duration::from_secs(1);
    client.handle_input(preface_at, &PREFACE);
    assert_eq!(
        client.poll_timeout(),
        Some(preface_at + timeout),
        "the server's preface is progress; the reply is still due"
    );
    client.handle_input(start + Duration::from_secs(2), &[]);
    assert_eq!(
        client.poll_timeout(),
        Some(preface_at + timeout),
        "an empty read is not"
    );
}

#[test]
fn a_reply_trickled_byte_by_byte_keeps_its_deadline() {
    let start = std::time::Instant::now();
    let timeout = Duration::from_secs(5);
    let mut client = super::client_with_one_request(start, timeout);
    let len = client.pending_output().len();
    client.mark_sent(start, len).unwrap();
    client.handle_input(start, &PREFACE);
    let reply = FrameRepr::new(FrameType::Text, &b"X"[..]).to_bytes();
    for (second, byte) in (1..).zip(&reply[..reply.len() - 1]) {
        client.handle_input(start + Duration::from_millis(second * 100), &[*byte]);
    }
    assert_eq!(
        client.poll_timeout(),
        Some(start + timeout),
        "bytes of an incomplete frame are not progress"
    );
    let done_at = start + Duration::from_secs(4);
    client.handle_input(done_at, &reply[reply.len() - 1..]);
    assert_eq!(client.poll_timeout(), None, "answered: nothing is due");
}
