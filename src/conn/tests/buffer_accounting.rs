//! What a server connection holds and reads, as the server's memory budget
//! (SPEC.md §11) and its event loop see it: `buffered_len` counts the held
//! input and the unsent output together, `buffered_capacity` is never less
//! than that, and a connection that has ended keeps reading (and
//! discarding) input while its last output waits for the client.

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
