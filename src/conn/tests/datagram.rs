//! The stateless datagram responder.

use super::harness::*;
use crate::conn::{DatagramConfig, DatagramReply, RawCase, respond_to_datagram};
use crate::wire::MAX_UDP_PAYLOAD;
use crate::wire::{ErrorCode, Flags, FrameType, PREFACE};

fn respond(datagram: &[u8]) -> DatagramReply {
    respond_to_datagram(datagram, local(), peer(), &DatagramConfig::default())
}

fn framed_reply(datagram: &[u8]) -> crate::wire::FrameRepr {
    let reply = respond(datagram);
    let bytes = reply.bytes().expect("framed datagrams are always answered");
    assert_eq!(&bytes[..8], &PREFACE);
    let mut frames = decode_all(&bytes[8..]);
    assert_eq!(frames.len(), 1, "exactly one frame per reply datagram");
    frames.remove(0)
}

fn datagram_of(frame: &crate::wire::FrameRepr) -> Vec<u8> {
    let mut datagram = PREFACE.to_vec();
    datagram.extend_from_slice(&frame.to_bytes());
    datagram
}

#[test]
fn raw_datagram_is_upper_cased_losslessly() {
    assert_eq!(
        respond(b"h\xc3\xa9\xff\xe2\x82").bytes().unwrap(),
        b"H\xc3\x89\xff\xe2\x82"
    );
    let ascii = DatagramConfig {
        raw_case: RawCase::Ascii,
        ..DatagramConfig::default()
    };
    let reply = respond_to_datagram("é a".as_bytes(), local(), peer(), &ascii);
    assert_eq!(reply.bytes().unwrap(), "é A".as_bytes());
}

#[test]
fn framed_datagram_gets_preface_and_reply_with_filled_addresses() {
    let reply = framed_reply(&datagram_of(&frame(FrameType::Text, false, b"hi")));
    assert_eq!(&reply.data[..], b"HI");
    assert_eq!(reply.src, local_address());
    assert_eq!(reply.dst, peer_address());
}

#[test]
fn more_over_udp_is_malformed() {
    let reply = framed_reply(&datagram_of(&frame(FrameType::Text, true, b"hi")));
    assert_eq!(error_code(&reply), ErrorCode::MALFORMED);
}

#[test]
fn length_must_match_the_datagram() {
    let mut datagram = datagram_of(&frame(FrameType::Text, false, b"hi"));
    datagram.push(b'!');
    assert_eq!(error_code(&framed_reply(&datagram)), ErrorCode::MALFORMED);
    datagram.truncate(datagram.len() - 2);
    assert_eq!(error_code(&framed_reply(&datagram)), ErrorCode::MALFORMED);
    assert_eq!(
        error_code(&framed_reply(&PREFACE)),
        ErrorCode::MALFORMED,
        "no header"
    );
}

#[test]
fn other_errors_follow_the_stream_rules() {
    let mut reserved = frame(FrameType::Text, false, b"a");
    reserved.flags = Flags(0x80);
    assert_eq!(
        error_code(&framed_reply(&datagram_of(&reserved))),
        ErrorCode::MALFORMED
    );
    let invalid = frame(FrameType::Text, false, b"\xe2\x82");
    assert_eq!(
        error_code(&framed_reply(&datagram_of(&invalid))),
        ErrorCode::INVALID_UTF8
    );
    let unknown = frame(FrameType::Unknown(0x10), false, b"");
    assert_eq!(
        error_code(&framed_reply(&datagram_of(&unknown))),
        ErrorCode::UNKNOWN_TYPE
    );
    let mut v9 = PREFACE.to_vec();
    v9[7] = 9;
    assert_eq!(
        error_code(&framed_reply(&v9)),
        ErrorCode::UNSUPPORTED_VERSION
    );
}

#[test]
fn a_reply_too_large_for_udp_becomes_frame_too_large() {
    // 30,000 × "ΐ" (2 bytes) = 60,000 bytes in, 180,000 bytes out.
    let text = "\u{390}".repeat(30_000);
    let reply = framed_reply(&datagram_of(&frame(
        FrameType::Text,
        false,
        text.as_bytes(),
    )));
    assert_eq!(error_code(&reply), ErrorCode::FRAME_TOO_LARGE);
    assert_eq!(
        error_message(&reply),
        "the upper case of this 60000-byte TEXT is 180000 bytes, over the 65457 a reply datagram can carry",
        "the message names what the client sent (SPEC.md §8.4)"
    );
}

#[test]
fn a_raw_reply_too_large_for_udp_is_dropped() {
    let text = "\u{390}".repeat(30_000);
    assert_eq!(
        respond(text.as_bytes()),
        DatagramReply::Drop { reply_len: 180_000 }
    );
    let fits = "a".repeat(MAX_UDP_PAYLOAD);
    assert_eq!(
        respond(fits.as_bytes()).bytes().unwrap().len(),
        MAX_UDP_PAYLOAD
    );
}

#[test]
fn bye_over_udp_is_answered_with_bye() {
    let reply = framed_reply(&datagram_of(&frame(FrameType::Bye, false, b"")));
    assert_eq!(reply.frame_type, FrameType::Bye);
}
