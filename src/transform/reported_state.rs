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

#[test]
fn an_error_offset_counts_a_code_point_completed_across_pushes() {
    // "a", "é" split after its first byte, "b", then ff at message byte 4.
    let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
    let mut out = BytesMut::new();
    upcaser.push(b"a\xc3", &mut out).unwrap();
    assert_eq!(
        upcaser.push(b"\xa9b\xff", &mut out),
        Err(InvalidUtf8 { offset: 4 })
    );
    assert_eq!(&out[..], b"A", "nothing of the failing push is written");
}

#[test]
fn a_whole_input_is_upper_cased_in_one_call() {
    assert_eq!(
        &upcase_all(CaseMode::UnicodeStrict, "straße".as_bytes()).unwrap()[..],
        b"STRASSE"
    );
    assert_eq!(
        upcase_all(CaseMode::UnicodeStrict, b"ok\xe2\x82"),
        Err(InvalidUtf8 { offset: 2 }),
        "an incomplete end is an error at its first byte"
    );
}

#[test]
fn a_carried_sequence_broken_by_the_next_push_is_copied_whole() {
    // f0 90 80 is the start of a 4-byte sequence; "b" breaks it after two
    // more bytes came in the second push: more bytes of the second push
    // belong to the broken sequence than the message had before it.
    let mut upcaser = LosslessUpcaser::new(LosslessMode::Unicode);
    let mut out = BytesMut::new();
    upcaser.push(b"\xf0", &mut out);
    upcaser.push(b"\x90\x80b", &mut out);
    upcaser.finish(&mut out);
    assert_eq!(&out[..], b"\xf0\x90\x80B");
}
