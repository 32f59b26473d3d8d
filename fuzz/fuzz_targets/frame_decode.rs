//! Decoding arbitrary bytes under an arbitrary limit never panics, and every
//! frame decoded re-encodes to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upcase::properties::decode_reencodes_consumed_bytes;

/// Input layout: 4 bytes of limit (little-endian), then the stream.
#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    limit: u32,
    bytes: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    decode_reencodes_consumed_bytes(input.bytes, input.limit);
});
