//! The stateless datagram responder.

use super::harness::*;
use crate::conn::datagram::shorten;
use crate::conn::{
    AMPLIFICATION_LIMIT, DatagramConfig, DatagramReply, RawCase, SHORTEST_ERROR_REPLY,
    respond_to_datagram,
};
use crate::wire::MAX_UDP_PAYLOAD;
use crate::wire::{ErrorCode, ErrorPayload, Flags, FrameType, PREFACE};

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
    crate::wire::encode_framed_datagram(frame).to_vec()
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
    let mut short_header = PREFACE.to_vec();
    short_header.resize(PREFACE.len() + 41, 0);
    assert_eq!(
        error_code(&framed_reply(&short_header)),
        ErrorCode::MALFORMED,
        "a header one byte short"
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
    let mut v9 = datagram_of(&frame(FrameType::Text, false, b"a"));
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

/// The ERROR's message in a reply to `datagram`, checking the reply's size
/// against the amplification limit on the way.
fn error_reply_to(datagram: &[u8]) -> (ErrorCode, String, usize) {
    let reply = respond(datagram);
    let len = reply.bytes().expect("answered").len();
    assert!(len <= AMPLIFICATION_LIMIT * datagram.len(), "{len} bytes");
    let frame = framed_reply(datagram);
    let payload = ErrorPayload::parse(&frame.data).unwrap();
    (payload.code, payload.message, len)
}

#[test]
fn a_datagram_too_short_for_any_error_within_three_times_gets_none() {
    // The 8 bytes: version ff. The whole ERROR would be 105 bytes.
    let version_ff = [0xc0, 0x55, 0x50, 0x43, 0x41, 0x53, 0x45, 0xff];
    assert_eq!(
        respond(&version_ff),
        DatagramReply::OverAmplificationLimit { reply_len: 105 }
    );
    // A bare preface: "datagram ends inside the frame header" (37 bytes).
    assert_eq!(
        respond(&PREFACE),
        DatagramReply::OverAmplificationLimit { reply_len: 89 }
    );
    // 17 bytes allow 51, one short of the 52 of a message-less ERROR.
    let mut seventeen = PREFACE.to_vec();
    seventeen.resize(17, 0);
    assert_eq!(SHORTEST_ERROR_REPLY, 52);
    assert_eq!(
        respond(&seventeen),
        DatagramReply::OverAmplificationLimit { reply_len: 89 }
    );
}

#[test]
fn an_error_over_three_times_its_datagram_is_shortened_to_fit_exactly() {
    // 18 bytes allow 54: the code and two bytes of message.
    let mut v2 = PREFACE.to_vec();
    v2[7] = 2;
    v2.resize(18, 0);
    let (code, message, len) = error_reply_to(&v2);
    assert_eq!(code, ErrorCode::UNSUPPORTED_VERSION);
    assert_eq!((message.as_str(), len), ("un", 54));
    // 29 bytes allow 87: the header message's first 35 of 37 bytes.
    let mut short = PREFACE.to_vec();
    short.resize(29, 0);
    let (code, message, len) = error_reply_to(&short);
    assert_eq!(code, ErrorCode::MALFORMED);
    assert_eq!(
        (message.as_str(), len),
        ("datagram ends inside the frame head", 87)
    );
}

#[test]
fn an_error_within_three_times_its_datagram_keeps_its_whole_message() {
    // 30 bytes allow 90, one more than the 89 the whole ERROR needs.
    let mut short = PREFACE.to_vec();
    short.resize(30, 0);
    let (_, message, len) = error_reply_to(&short);
    assert_eq!(
        (message.as_str(), len),
        ("datagram ends inside the frame header", 89)
    );
    let (_, message, _) = error_reply_to(&datagram_of(&frame(FrameType::Pong, false, b"")));
    assert_eq!(message, "a client may not send PONG frames");
}

#[test]
fn upper_case_replies_stay_within_three_times_their_datagram() {
    // "ΐ" triples: 2 bytes in, 6 out, the most upper case can grow.
    for count in [0, 1, 1000, 10_000] {
        let text = "\u{390}".repeat(count);
        let datagram = datagram_of(&frame(FrameType::Text, false, text.as_bytes()));
        let reply = respond(&datagram);
        let bytes = reply.bytes().expect("a TEXT reply is never dropped");
        assert_eq!(bytes.len(), 50 + 6 * count);
        assert!(bytes.len() <= AMPLIFICATION_LIMIT * datagram.len());
        let raw = respond(text.as_bytes());
        assert_eq!(raw.bytes().unwrap().len(), AMPLIFICATION_LIMIT * text.len());
    }
    let bye = datagram_of(&frame(FrameType::Bye, false, b""));
    assert_eq!(respond(&bye).bytes().unwrap().len(), bye.len());
}

#[test]
fn shortening_cuts_at_a_character_boundary() {
    let cut = |text: &str, max_len| {
        let mut message = text.to_string();
        shorten(&mut message, max_len);
        message
    };
    assert_eq!(cut("a€b", 3), "a", "€ is 3 bytes: 2 would split it");
    assert_eq!(cut("a€b", 4), "a€");
    assert_eq!(cut("a€b", 5), "a€b");
    assert_eq!(cut("a€b", 99), "a€b");
    assert_eq!(cut("a€b", 0), "");
}
