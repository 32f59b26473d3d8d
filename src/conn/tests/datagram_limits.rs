//! The datagram responder's limits at exactly their value: a frame whose
//! data is exactly the receive limit (SPEC.md §8.2, check 3) and a reply
//! whose data exactly fills a datagram (§8.4) are served; one byte more is
//! an ERROR.

use super::harness::*;
use crate::conn::{DatagramConfig, respond_to_datagram};
use crate::wire::{
    ErrorCode, FrameRepr, FrameType, MAX_REPLY_DATA, MAX_UDP_PAYLOAD, PREFACE,
    encode_framed_datagram,
};

/// The one frame answering a TEXT datagram carrying `text`, and the size
/// of the reply datagram.
fn reply_to_text(text: &[u8], config: &DatagramConfig) -> (FrameRepr, usize) {
    let datagram = encode_framed_datagram(&frame(FrameType::Text, false, text));
    let reply = respond_to_datagram(&datagram, local(), peer(), config);
    let bytes = reply.bytes().expect("a framed datagram is answered");
    assert_eq!(&bytes[..PREFACE.len()], &PREFACE);
    let mut frames = decode_all(&bytes[PREFACE.len()..]);
    assert_eq!(frames.len(), 1, "exactly one frame per reply datagram");
    (frames.remove(0), bytes.len())
}

#[test]
fn a_datagram_frame_of_exactly_the_receive_limit_is_answered() {
    let config = DatagramConfig {
        max_data_len: 5,
        ..DatagramConfig::default()
    };
    let (reply, _) = reply_to_text(b"hello", &config);
    assert_eq!(reply.frame_type, FrameType::Text);
    assert_eq!(&reply.data[..], b"HELLO");

    let (reply, _) = reply_to_text(b"hello!", &config);
    assert_eq!(error_code(&reply), ErrorCode::FRAME_TOO_LARGE);
}

#[test]
fn a_reply_that_exactly_fills_a_datagram_is_sent() {
    let text = vec![b'a'; MAX_REPLY_DATA];
    let (reply, size) = reply_to_text(&text, &DatagramConfig::default());
    assert_eq!(reply.frame_type, FrameType::Text);
    assert_eq!(reply.data.len(), MAX_REPLY_DATA);
    assert!(reply.data.iter().all(|&byte| byte == b'A'));
    assert_eq!(
        size, MAX_UDP_PAYLOAD,
        "65,507 bytes: the largest UDP payload"
    );

    // "ŉ" (2 bytes) upper-cases to "ʼN" (3 bytes): a reply one byte over.
    let mut one_over = vec![b'a'; MAX_REPLY_DATA - 2];
    one_over.extend_from_slice("\u{149}".as_bytes());
    let (reply, _) = reply_to_text(&one_over, &DatagramConfig::default());
    assert_eq!(error_code(&reply), ErrorCode::FRAME_TOO_LARGE);
}
