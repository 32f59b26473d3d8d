//! Any frame survives emit-then-parse, and stream decoding however the
//! encoded bytes are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upcase::properties::frame_survives_emit_then_parse;
use upcase::wire::{Address, Flags, FrameRepr, FrameType};

/// The frame's fields; the type is a raw code so that `Unknown(1)` (which
/// would decode as TEXT) cannot be built.
#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    src: Address,
    dst: Address,
    frame_type: u8,
    flags: u8,
    cuts: Vec<u16>,
    data: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let frame = FrameRepr {
        src: input.src,
        dst: input.dst,
        frame_type: FrameType::from(input.frame_type),
        flags: Flags(input.flags),
        data: input.data.to_vec().into(),
    };
    let cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    frame_survives_emit_then_parse(&frame, &cuts);
});
