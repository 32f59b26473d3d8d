//! The block table in front of the case pages: text in scripts without
//! case skips the per-code-point loop (the point of the fast path), and
//! what it lets through is all that can change (checked for every scalar
//! value in exhaustive.rs).

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
