//! The streaming upper case equals the std oracle however the input is cut;
//! lossless mode keeps every invalid byte in place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upcase::properties::{
    lossless_keeps_invalid_bytes_in_place, transform_matches_oracle_for_any_split,
};
use upcase::transform::CaseMode;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    mode: CaseMode,
    cuts: Vec<u16>,
    bytes: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    transform_matches_oracle_for_any_split(input.mode, input.bytes, &cuts);
    if input.mode == CaseMode::UnicodeLossless {
        lossless_keeps_invalid_bytes_in_place(input.bytes, &cuts);
    }
});
