//! The wire format at the exact edges of its lengths and limits: a frame
//! with no data, data exactly at the receive limit, one byte over. Written
//! for mutants that moved a `<` to `<=` and survived the other tests.

use super::*;

fn text(data: &'static [u8]) -> FrameRepr {
    FrameRepr::new(FrameType::Text, data)
}

#[test]
fn a_datagram_of_just_a_header_is_a_frame_with_no_data() {
    let mut datagram = PREFACE.to_vec();
    datagram.extend_from_slice(&text(b"").to_bytes());
    assert_eq!(datagram.len(), PREFACE_LEN + HEADER_LEN);
    let frame = framed_datagram(&datagram).expect("42 bytes after the preface are a header");
    assert_eq!(frame.data(), b"");
}

#[test]
fn a_decoder_reports_the_limit_it_was_given() {
    assert_eq!(FrameDecoder::new(7).max_data_len(), 7);
    assert_eq!(FrameDecoder::default().max_data_len(), DEFAULT_MAX_DATA_LEN);
}

#[test]
fn data_exactly_at_the_limit_is_awaited_and_one_more_byte_is_not() {
    let decoder = FrameDecoder::new(3);
    let at_limit = text(b"abc").to_bytes();
    assert_eq!(decoder.bytes_needed(&at_limit[..HEADER_LEN]), 3);
    let over = text(b"abcd").to_bytes();
    assert_eq!(decoder.bytes_needed(&over[..HEADER_LEN]), 0);
}

#[test]
fn error_data_of_exactly_the_code_is_an_error_with_no_message() {
    let parsed = ErrorPayload::parse(&[0, 9]).expect("two bytes hold the code");
    assert_eq!(parsed, ErrorPayload::new(ErrorCode::BUSY, ""));
}
