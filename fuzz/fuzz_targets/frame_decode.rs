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

/// The decoder reserves a frame's announced length (up to the limit) as soon
/// as its header arrives, so limits near `u32::MAX` would make libFuzzer's
/// 2 GB malloc limit, not the decoder, the thing under test. 24 bits keep
/// every length class below 16 MiB; the proptest covers `u32::MAX` itself.
const LIMIT_MASK: u32 = 0x00ff_ffff;

fuzz_target!(|input: Input<'_>| {
    decode_reencodes_consumed_bytes(input.bytes, input.limit & LIMIT_MASK);
});
