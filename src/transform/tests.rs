use super::*;
use crate::properties::{
    lossless_keeps_invalid_bytes_in_place, transform_chunks, transform_matches_oracle_for_any_split,
};
use proptest::prelude::*;

fn upcase(mode: CaseMode, chunks: &[&[u8]]) -> Result<Vec<u8>, InvalidUtf8> {
    transform_chunks(mode, chunks)
}

#[test]
fn no_char_expands_more_than_max_expansion() {
    let mut worst = (0, '\0');
    for c in (0..=0x10ffff).filter_map(char::from_u32) {
        let upper_len: usize = c.to_uppercase().map(char::len_utf8).sum();
        assert!(upper_len <= MAX_EXPANSION * c.len_utf8(), "{c:?}");
        if upper_len * 100 / c.len_utf8() > worst.0 {
            worst = (upper_len * 100 / c.len_utf8(), c);
        }
    }
    assert_eq!(worst, (300, '\u{390}'), "ΐ is the worst case");
}

#[test]
fn code_point_split_across_chunks_is_carried_not_emitted() {
    let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
    let mut out = BytesMut::new();
    upcaser.push(b"a\xc3", &mut out).unwrap();
    assert_eq!(&out[..], b"A");
    assert_eq!(upcaser.carried(), b"\xc3");
    upcaser.push(b"", &mut out).unwrap();
    upcaser.push(b"\xa9b", &mut out).unwrap();
    assert_eq!(&out[..], "AÉB".as_bytes());
    assert!(upcaser.carried().is_empty());
}

#[test]
fn expanding_characters() {
    let mode = CaseMode::UnicodeStrict;
    assert_eq!(upcase(mode, &["ß".as_bytes()]).unwrap(), b"SS");
    assert_eq!(
        upcase(mode, &[b"\xce", b"\x90"]).unwrap(),
        "\u{399}\u{308}\u{301}".as_bytes()
    );
    assert_eq!(upcase(mode, &["ﬃ".as_bytes()]).unwrap(), b"FFI");
}

#[test]
fn strict_fails_fast_at_the_byte_that_breaks_the_sequence() {
    // E2 82 is a valid prefix of "€"; 41 breaks it. The error names offset 1,
    // where the broken sequence starts, and comes with the chunk holding 41.
    let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
    let mut out = BytesMut::new();
    upcaser.push(b"x\xe2\x82", &mut out).unwrap();
    assert_eq!(upcaser.push(b"A", &mut out), Err(InvalidUtf8 { offset: 1 }));
    assert_eq!(&out[..], b"X", "nothing from the failing call");
    assert_eq!(
        upcaser.push(b"ok", &mut out),
        Err(InvalidUtf8 { offset: 1 })
    );
    assert_eq!(upcaser.finish(&mut out), Err(InvalidUtf8 { offset: 1 }));
}

#[test]
fn strict_rejects_a_message_ending_inside_a_code_point() {
    let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
    let mut out = BytesMut::new();
    upcaser.push(b"ab\xf0\x9f", &mut out).unwrap();
    assert_eq!(upcaser.finish(&mut out), Err(InvalidUtf8 { offset: 2 }));
}

#[test]
fn strict_rejects_impossible_bytes_immediately() {
    for bad in [0x80u8, 0xbf, 0xc0, 0xc1, 0xf5, 0xfe, 0xff] {
        let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
        let mut out = BytesMut::new();
        assert_eq!(
            upcaser.push(&[b'a', bad], &mut out),
            Err(InvalidUtf8 { offset: 1 }),
            "{bad:#x}"
        );
    }
    // A surrogate's second byte is already invalid after ED.
    let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
    let mut out = BytesMut::new();
    upcaser.push(b"\xed", &mut out).unwrap();
    assert_eq!(
        upcaser.push(b"\xa0", &mut out),
        Err(InvalidUtf8 { offset: 0 })
    );
}

#[test]
fn held_bytes_that_extend_into_the_next_chunk_break_as_one_subpart() {
    // F0 90 is a valid prefix; 41 breaks it. Utf8Chunks makes F0 90 one
    // invalid subpart, with one byte from each chunk.
    let out = upcase(CaseMode::UnicodeLossless, &[b"\xf0", b"\x90a"]).unwrap();
    assert_eq!(out, b"\xf0\x90A");
    let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
    let mut sink = BytesMut::new();
    upcaser.push(b"zz\xf0", &mut sink).unwrap();
    assert_eq!(
        upcaser.push(b"\x90a", &mut sink),
        Err(InvalidUtf8 { offset: 2 })
    );
}

#[test]
fn lossless_copies_invalid_bytes_and_the_tail_at_end() {
    let out = upcase(
        CaseMode::UnicodeLossless,
        &[b"h\xc3", b"\xa9\xff\n\xe2\x82"],
    )
    .unwrap();
    assert_eq!(out, b"H\xc3\x89\xff\n\xe2\x82");
}

#[test]
fn ascii_changes_only_a_to_z() {
    let input: Vec<u8> = (0..=255).collect();
    let out = upcase(CaseMode::Ascii, &[&input]).unwrap();
    for (byte, upper) in input.iter().zip(&out) {
        let expected = if byte.is_ascii_lowercase() {
            byte - 32
        } else {
            *byte
        };
        assert_eq!(*upper, expected);
    }
    assert_eq!(
        upcase(CaseMode::Ascii, &["é".as_bytes()]).unwrap(),
        "é".as_bytes()
    );
}

#[test]
fn finish_resets_for_the_next_message() {
    let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
    let mut out = BytesMut::new();
    upcaser.push(b"\xe2\x82", &mut out).unwrap();
    assert!(!upcaser.is_at_message_start());
    upcaser.push(b"\xac", &mut out).unwrap();
    upcaser.finish(&mut out).unwrap();
    assert!(upcaser.is_at_message_start());
    upcaser.push(b"\xff", &mut out).unwrap_err();
    assert_eq!(upcaser.push(b"", &mut out), Err(InvalidUtf8 { offset: 0 }));
}

#[test]
fn unchanged_runs_and_changed_code_points_interleave() {
    let mut out = BytesMut::new();
    upper::push_upper_str("中a文ß!ΐ字ßß", &mut out);
    assert_eq!(&out[..], "中A文SS!\u{399}\u{308}\u{301}字SSSS".as_bytes());
}

#[test]
fn lossless_upcaser_needs_no_result_and_writes_into_a_vec() {
    let mut upcaser = LosslessUpcaser::new(LosslessMode::Unicode);
    let mut out = Vec::new();
    upcaser.push(b"h\xc3", &mut out);
    assert_eq!(upcaser.carried(), b"\xc3");
    upcaser.push(b"\xa9\xff", &mut out);
    upcaser.push(b"\xe2\x82", &mut out);
    upcaser.finish(&mut out);
    assert_eq!(out, b"H\xc3\x89\xff\xe2\x82");
    assert!(upcaser.carried().is_empty(), "finish resets");
    assert_eq!(
        upcase_lossless(LosslessMode::Ascii, "aé".as_bytes()),
        "Aé".as_bytes()
    );
}

#[test]
fn max_output_len_is_none_when_it_overflows() {
    let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
    assert_eq!(
        upcaser.max_output_len(usize::MAX / 3),
        Some(usize::MAX / 3 * 3)
    );
    assert_eq!(upcaser.max_output_len(usize::MAX / 3 + 1), None);
    upcaser.push(b"\xce", &mut Vec::new()).unwrap();
    assert_eq!(
        upcaser.max_output_len(0),
        Some(3),
        "the carried byte counts"
    );
    assert_eq!(upcaser.max_output_len(usize::MAX), None);
}

#[test]
fn upcase_str_equals_std() {
    for text in ["", "hello", "straße ΐ 中文 ﬃ", "ǅ ǆ ɐ ⱥ"] {
        assert_eq!(upcase_str(text), text.to_uppercase());
    }
}

/// Strings weighted toward code points whose upper case is longer or shorter
/// than themselves, or multi-byte, so carries and expansions are common.
fn interesting_text() -> impl Strategy<Value = String> {
    let interesting = prop_oneof![
        Just('ß'),
        Just('\u{390}'),
        Just('\u{3b0}'),
        Just('ŉ'),
        Just('ﬃ'),
        Just('ı'),
        Just('ſ'),
        Just('ǅ'),
        Just('ⱥ'),
        Just('ɐ'),
        Just('é'),
        Just('中'),
        Just('😀'),
        Just('𐐨'),
        Just('a'),
        Just('z'),
    ];
    proptest::collection::vec(prop_oneof![3 => interesting, 1 => any::<char>()], 0..64)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Valid text with some bytes replaced or inserted, so invalid sequences sit
/// next to valid multi-byte ones.
fn text_with_damage() -> impl Strategy<Value = Vec<u8>> {
    (
        interesting_text(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    )
        .prop_map(|(text, damage)| {
            let mut bytes = text.into_bytes();
            for (index, byte) in damage {
                let at = index.index(bytes.len() + 1);
                bytes.insert(at, byte);
            }
            bytes
        })
}

fn any_mode() -> impl Strategy<Value = CaseMode> {
    prop_oneof![
        Just(CaseMode::UnicodeStrict),
        Just(CaseMode::UnicodeLossless),
        Just(CaseMode::Ascii)
    ]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..8)
}

proptest! {
    #[test]
    fn valid_text_equals_to_uppercase_for_any_split(text in interesting_text(), cuts in cuts()) {
        transform_matches_oracle_for_any_split(CaseMode::UnicodeStrict, text.as_bytes(), &cuts);
        transform_matches_oracle_for_any_split(CaseMode::UnicodeLossless, text.as_bytes(), &cuts);
    }

    #[test]
    fn damaged_text_matches_the_oracle_for_any_split(
        mode in any_mode(), bytes in text_with_damage(), cuts in cuts()
    ) {
        transform_matches_oracle_for_any_split(mode, &bytes, &cuts);
    }

    #[test]
    fn arbitrary_bytes_match_the_oracle_for_any_split(
        mode in any_mode(),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in cuts(),
    ) {
        transform_matches_oracle_for_any_split(mode, &bytes, &cuts);
    }

    #[test]
    fn lossless_keeps_every_invalid_byte(bytes in text_with_damage(), cuts in cuts()) {
        lossless_keeps_invalid_bytes_in_place(&bytes, &cuts);
    }

    #[test]
    fn every_single_byte_split_matches(bytes in text_with_damage()) {
        let cuts: Vec<usize> = (0..=bytes.len()).collect();
        for mode in [CaseMode::UnicodeStrict, CaseMode::UnicodeLossless, CaseMode::Ascii] {
            transform_matches_oracle_for_any_split(mode, &bytes, &cuts);
        }
    }
}

#[test]
fn overlong_two_byte_forms_among_letters_stay_invalid() {
    // C0 80 and C1 BF look like 2-byte letters to a mask: they are overlong
    // forms of NUL and DEL, invalid, both as the first and the second of a
    // pair of 2-byte sequences.
    for (input, expected) in [
        (
            &b"\xc3\xa9\xc1\xbf\xc3\xa9"[..],
            &b"\xc3\x89\xc1\xbf\xc3\x89"[..],
        ),
        (b"\xc0\x80\xc3\xa9\xc3\xa9", b"\xc0\x80\xc3\x89\xc3\x89"),
        (b"\xc3\xa9\xc3\xa9\xc0\x80", b"\xc3\x89\xc3\x89\xc0\x80"),
    ] {
        assert_eq!(
            upcase(CaseMode::UnicodeLossless, &[input]).unwrap(),
            expected
        );
        let first_invalid = input.iter().position(|&b| b == 0xc0 || b == 0xc1).unwrap();
        assert_eq!(
            upcase(CaseMode::UnicodeStrict, &[input]),
            Err(InvalidUtf8 {
                offset: first_invalid as u64
            })
        );
    }
}
