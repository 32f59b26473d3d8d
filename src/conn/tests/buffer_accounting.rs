//! What a server connection holds and reads, as the server's memory budget
//! (SPEC.md §11) and its event loop see it: `buffered_len` counts the held
//! input and the unsent output together, `buffered_capacity` is never less
//! than that, a connection stops answering the frames it has read once
//! its output is over its bound (backpressure) until the client reads, and
//! a connection that has ended keeps reading (and discarding) input while
//! its last output waits for the client.

use super::harness::*;
use crate::conn::ServerConfig;
use crate::wire::{FrameType, PREFACE};

/// A framed connection that has read the preface and the first `held`
/// bytes of a PING's header in one read, the client having read nothing.
fn holding_input_and_output(held: usize) -> Pair {
    let mut pair = Pair::new(ServerConfig::default());
    let input = framed_input(&[frame(FrameType::Ping, false, b"ping")]);
    let read = &input[..PREFACE.len() + held];
    pair.server.handle_input(pair.now, read).unwrap();
    assert_eq!(
        pair.server.pending_output(),
        &PREFACE,
        "precondition: the server's preface is unsent"
    );
    pair
}

#[test]
fn buffered_len_counts_held_input_and_unsent_output() {
    let pair = holding_input_and_output(3);
    assert_eq!(pair.server.buffered_len(), 3 + PREFACE.len());
}

#[test]
fn buffered_capacity_is_at_least_what_the_buffers_hold() {
    let mut pair = holding_input_and_output(3);
    assert!(pair.server.buffered_capacity() >= pair.server.buffered_len());

    // Ended, the connection drops its input buffer; its output stays.
    pair.server.begin_shutdown(pair.now);
    assert!(pair.server.has_ended());
    let unsent = pair.server.pending_output().len();
    assert!(unsent > PREFACE.len(), "the preface and the BYE are unsent");
    assert_eq!(pair.server.buffered_len(), unsent);
    assert!(pair.server.buffered_capacity() >= unsent);
}

#[test]
fn an_ended_connection_reads_and_discards_input_while_its_last_output_waits() {
    // SPEC.md §5.4 and §9.2: after the last frame, bytes that arrive are read
    // and discarded, over the output bound or not.
    let config = ServerConfig {
        max_pending_output: 16,
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(config);
    pair.server
        .handle_input(pair.now, &framed_input(&[]))
        .unwrap();
    pair.server.begin_shutdown(pair.now);
    assert!(pair.server.has_ended());
    let unsent = pair.server.pending_output().len();
    assert!(unsent >= 16, "precondition: the output is over its bound");

    let capacity = pair.server.read_capacity();
    assert!(capacity > 0, "the ended connection keeps reading");
    let bytes_in = pair.server.stats().bytes_in;
    let late = vec![b'x'; capacity];
    assert_eq!(pair.server.handle_input(pair.now, &late), Ok(()));
    assert_eq!(pair.server.stats().bytes_in, bytes_in + capacity as u64);
    assert_eq!(pair.server.buffered_len(), unsent, "and keeps none of it");
}

#[test]
fn frames_read_behind_the_output_bound_wait_until_the_client_reads() {
    // A PONG to a 4-byte PING is 46 bytes: after the preface and one PONG
    // (54 bytes) the output is under the bound of 60, after two it is over.
    let config = ServerConfig {
        max_pending_output: 60,
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(config);
    let ping = frame(FrameType::Ping, false, b"ping");
    let input = framed_input(&[ping.clone(), ping.clone(), ping.clone(), ping]);
    pair.server.handle_input(pair.now, &input).unwrap();
    let pending = pair.server.pending_output().len();
    assert_eq!(pending, PREFACE.len() + 2 * 46, "two PONGs, then it stops");
    assert_eq!(
        pair.server.buffered_len(),
        pending + 2 * 46,
        "two PINGs held"
    );
    assert_eq!(pair.server.read_capacity(), 0);

    pair.flush();
    let frames = pair.frames();
    assert_eq!(frames.len(), 4, "the held PINGs are answered once it reads");
    assert!(
        frames
            .iter()
            .all(|reply| reply.frame_type == FrameType::Pong)
    );
}
