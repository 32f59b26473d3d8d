//! Where a connection's buffers and timers stand after the edge cases of
//! its input and output: input of exactly the read capacity, an input
//! buffer emptied by a large frame (kept for the next one until the shell
//! says the connection is idle), a compaction threshold that is strict,
//! and which calls count as progress for the send and reply timers.

use std::time::Duration;

use super::harness::*;
use crate::conn::{ClientConfig, ClientConnection, ServerConfig, ServerUsageError};
use crate::wire::{FrameType, HEADER_LEN, PREFACE};

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

#[test]
fn input_left_in_a_buffer_of_exactly_the_raw_read_limit_is_not_copied() {
    // The threshold is strict: 64 KiB is what any connection may be asked
    // to read at once, not the leftover of a large frame. Build an input
    // buffer whose capacity is exactly 64 KiB once a frame is taken out of
    // it, with 10 bytes (a partial header) left. How far a second read
    // grows the buffer is the bytes crate's choice: a probe measures it.
    const LIMIT: usize = 64 * 1024;
    const FIRST: usize = 70_000;
    let mut probe = framed_pair();
    let unfinished = ping_of(2 * FIRST);
    probe
        .server
        .handle_input(probe.now, &unfinished[..FIRST])
        .unwrap();
    probe
        .server
        .handle_input(probe.now, &unfinished[FIRST..FIRST + 1])
        .unwrap();
    let grown = probe.server.buffered_capacity();

    let mut pair = framed_pair();
    let ping = ping_of(grown - LIMIT - HEADER_LEN);
    let mut bytes = ping.clone();
    bytes.extend_from_slice(&ping_of(0)[..10]);
    assert!(
        FIRST < ping.len() && bytes.len() <= grown,
        "one growth, then the frame"
    );
    pair.server.handle_input(pair.now, &bytes[..FIRST]).unwrap();
    pair.server.handle_input(pair.now, &bytes[FIRST..]).unwrap();
    pair.flush();
    assert_eq!(pair.frames().len(), 1, "the PONG");
    assert_eq!(pair.server.buffered_len(), 10);
    assert_eq!(
        pair.server.buffered_capacity(),
        LIMIT,
        "the buffer, less the frame taken out of it, is kept as it is"
    );
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
fn bytes_from_the_server_restart_the_reply_timer_and_an_empty_read_does_not() {
    let start = std::time::Instant::now();
    let timeout = Duration::from_secs(5);
    let config = ClientConfig {
        reply_timeout: timeout,
        ..ClientConfig::default()
    };
    let mut client = ClientConnection::new(start, config);
    client.send_text("x").unwrap();
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
