//! What a transform reports about itself between calls: the output bound a
//! caller reserves by, and whether a message is under way. Code outside
//! the transform acts on both, so both are checked in every mode.

use super::*;

#[test]
fn the_lossless_output_bound_is_three_bytes_per_byte_carried_or_new() {
    let mut upcaser = LosslessUpcaser::new(LosslessMode::Unicode);
    assert_eq!(upcaser.max_output_len(5), Some(15));
    let mut out = BytesMut::new();
    upcaser.push(b"\xe2\x82", &mut out);
    assert_eq!(upcaser.carried(), b"\xe2\x82");
    assert_eq!(
        upcaser.max_output_len(0),
        Some(6),
        "the carried bytes count"
    );
    assert_eq!(upcaser.max_output_len(usize::MAX), None, "overflow");
}

#[test]
fn an_ascii_message_is_under_way_once_it_has_a_byte() {
    let mut upcaser = Upcaser::new(CaseMode::Ascii);
    let mut out = BytesMut::new();
    upcaser.push(b"", &mut out).unwrap();
    assert!(
        upcaser.is_at_message_start(),
        "an empty push starts nothing"
    );
    upcaser.push(b"ab", &mut out).unwrap();
    assert!(!upcaser.is_at_message_start());
    upcaser.push(b"c", &mut out).unwrap();
    assert!(!upcaser.is_at_message_start());
    upcaser.finish(&mut out).unwrap();
    assert!(upcaser.is_at_message_start());
    assert_eq!(&out[..], b"ABC");
}
