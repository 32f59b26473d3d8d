//! The pieces of the fast paths on their own: the block table in front of
//! the case pages (text in scripts without case skips the per-code-point
//! loop, the point of the fast path; that what it lets through is all that
//! can change is checked for every scalar value in exhaustive.rs), and the
//! eight-bytes-at-once ASCII upper case.

use super::upper::block_page;

#[test]
fn caseless_scripts_and_upper_case_letters_skip_the_case_pages() {
    for c in ['中', '한', 'ア', 'ꀀ', 'ก', 'क', '😀', 'Ａ', '1', '€'] {
        assert_eq!(
            block_page(u32::from(c)),
            0,
            "{c:?} has no case in its block"
        );
    }
    for c in ['é', 'ω', 'ß', 'ǅ', 'ΐ', 'ж', 'ա', 'ა'] {
        assert_ne!(block_page(u32::from(c)), 0, "{c:?} changes");
    }
}

#[test]
fn eight_bytes_at_once_upper_case_exactly_their_ascii_letters() {
    use super::upper::ascii_upper_word;
    for byte in 0..=255u8 {
        for lane in 0..8 {
            for filler in [b'a', b'Z', b'`', b'{', 0x80, 0xc3, 0xff] {
                let mut bytes = [filler; 8];
                bytes[lane] = byte;
                let upper = ascii_upper_word(u64::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(
                    upper.to_vec(),
                    bytes.to_ascii_uppercase(),
                    "{byte:#x} in lane {lane}"
                );
            }
        }
    }
}
