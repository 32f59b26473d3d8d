//! Every scalar value against std's `char::to_uppercase`, through the
//! transform: alone, and in each context its fast paths tell apart (SPEC.md
//! §5.1 pins std's mapping). The contexts are concatenated into one long
//! text per context, so that each is one transform and one `to_uppercase`.

use super::*;

/// What each scalar value is put after: nothing, ASCII (shorter and longer
/// than the 8-byte word the ASCII scan takes), a caseless 3-byte sequence
/// (first and second of the pairs the 3-byte scan takes), cased letters
/// that keep or change their length, and a 4-byte emoji.
const CONTEXTS: [&str; 10] = [
    "",
    "a",
    "abcdefgh",
    "abcdefghi",
    "中",
    "中中",
    "中中中",
    "é",
    "ΐ",
    "😀",
];

fn every_scalar_value() -> impl Iterator<Item = char> {
    (0..=0x10_ffff).filter_map(char::from_u32)
}

/// The first scalar value whose upper case the transform gets wrong when it
/// comes after `before`, in `mode` and pushed in `chunk`-byte pieces.
fn first_wrong(before: &str, mode: CaseMode, chunk: usize) -> Option<char> {
    let text: String = every_scalar_value()
        .flat_map(|c| before.chars().chain([c]))
        .collect();
    let mut upcaser = Upcaser::new(mode);
    let mut out = Vec::with_capacity(3 * text.len());
    for piece in text.as_bytes().chunks(chunk) {
        upcaser.push(piece, &mut out).expect("text is UTF-8");
    }
    upcaser.finish(&mut out).expect("text is UTF-8");
    if out == text.to_uppercase().into_bytes() {
        return None;
    }
    every_scalar_value().find(|&c| {
        let alone = format!("{before}{c}{before}");
        upcase_all(mode, alone.as_bytes()).as_deref() != Ok(alone.to_uppercase().as_bytes())
    })
}

#[test]
fn every_scalar_value_alone_is_upper_cased_as_std_does() {
    for c in every_scalar_value() {
        let text = c.to_string();
        let expected = text.to_uppercase();
        for mode in [CaseMode::UnicodeStrict, CaseMode::UnicodeLossless] {
            assert_eq!(
                upcase_all(mode, text.as_bytes()).as_deref(),
                Ok(expected.as_bytes()),
                "U+{:04X} in {mode:?}",
                u32::from(c)
            );
        }
    }
}

#[test]
fn every_scalar_value_split_across_pushes_is_upper_cased_as_std_does() {
    for c in every_scalar_value().filter(|c| !c.is_ascii()) {
        let text = c.to_string();
        let expected = text.to_uppercase();
        for cut in 1..text.len() {
            let (head, tail) = text.as_bytes().split_at(cut);
            let mut upcaser = Upcaser::new(CaseMode::UnicodeStrict);
            let mut out = Vec::new();
            upcaser.push(head, &mut out).unwrap();
            upcaser.push(tail, &mut out).unwrap();
            upcaser.finish(&mut out).unwrap();
            assert_eq!(
                out,
                expected.as_bytes(),
                "U+{:04X} cut at {cut}",
                u32::from(c)
            );
        }
    }
}

#[test]
fn every_scalar_value_in_every_context_is_upper_cased_as_std_does() {
    for before in CONTEXTS {
        // 1021 bytes: pieces that end at every offset of a code point.
        for (mode, chunk) in [
            (CaseMode::UnicodeStrict, usize::MAX),
            (CaseMode::UnicodeLossless, 1021),
        ] {
            assert_eq!(
                first_wrong(before, mode, chunk),
                None,
                "after {before:?}, {mode:?}, pieces of {chunk}"
            );
        }
    }
}

#[test]
fn every_3byte_scalar_value_at_each_place_of_a_five_sequence_block_is_upper_cased_as_std_does() {
    // The 3-byte scan takes five sequences at a time: put each 3-byte code
    // point at each of the five places, among code points it accepts.
    for c in (0x800..=0xffff).filter_map(char::from_u32) {
        for place in 0..5 {
            let text: String = (0..6)
                .map(|at| if at == place { c } else { '中' })
                .collect();
            assert_eq!(
                upcase_all(CaseMode::UnicodeLossless, text.as_bytes()).as_deref(),
                Ok(text.to_uppercase().as_bytes()),
                "U+{:04X} at place {place}",
                u32::from(c)
            );
        }
    }
}
